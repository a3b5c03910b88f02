/**
 * Flint's GitHub client: the GitHubPort (src/daemon/ports/github.ts) over
 * GitHub's REST API, as a GitHub App installed on one organization.
 *
 * Two Octokit instances share the plumbing in octokit.ts (timeouts, retries,
 * rate limits, logging) and differ in identity: `app` signs JWTs for the
 * App-level endpoints, `inst` carries installation tokens for the rest.
 * Installation tokens are fetched through `app`, so that call gets the same
 * retries and rate-limit handling as any other.
 *
 * Every operation maps failures to a FlintError with a FLINT_ERR_GITHUB_…
 * code whose message names the operation. Nothing here logs a token, a JWT,
 * the private key or a JIT config.
 */
import type { components } from '@octokit/openapi-types';
import type { GitHubConfig } from '../../config/types.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import type {
  Conditional, GitHubPort, JitRunner, JitRunnerRequest, RepositoryRef, RunnerGroup, RunnerScope, SelfHostedRunner, WebhookDelivery, WorkflowJob,
} from '../../daemon/ports/github.ts';
import { createAppJwtAuth, createInstallationAuth } from './auth.ts';
import { messageOf, statusOf, toFlintError } from './errors.ts';
import { createInstallationTokenSource } from './installation-token.ts';
import { silentLog, type GitHubLog } from './log.ts';
import type { GitHubObserver } from '../../daemon/ports/observer.ts';
import { ClientLifecycle, createOctokit, realTimers, type GitHubTimers } from './octokit.ts';

type Schemas = components['schemas'];

export interface GitHubClientOptions {
  readonly github: Pick<GitHubConfig, 'appId' | 'organization' | 'privateKey' | 'apiUrl'>;
  readonly log?: GitHubLog;
  /** Milliseconds since the epoch; decides when a cached installation token is refreshed. */
  readonly now?: () => number;
  /** Refresh installation tokens this long before they expire (capped at half their lifetime). Default 5 min. */
  readonly tokenRefreshMarginMs?: number;
  /** The timers every wait (back-off, rate limit, write spacing, attempt timeout) runs on. Default: the global timers. */
  readonly timers?: GitHubTimers;
  /** For back-off jitter. Default Math.random. */
  readonly random?: () => number;
  /** Retries of 5xx/network errors (default 3), the back-off unit (retry n waits ½–1 × unit × 2ⁿ; default 1000 ms) and the longest back-off (default 30 s). */
  readonly retries?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Longest rate-limit wait sat through inside a call (default 60 s) and how many per call (default 2). */
  readonly maxRateLimitWaitSeconds?: number;
  readonly maxRateLimitRetries?: number;
  /** Spacing of writes per identity (default 1000 ms, GitHub's advice against secondary limits). */
  readonly writeSpacingMs?: number;
  /** Timeout of one HTTP attempt. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Parallel repositories scanned by listQueuedJobs. Default 4. */
  readonly scanConcurrency?: number;
  /** The HTTP layer (global fetch unless a test injects one). */
  readonly fetch?: typeof fetch;
  /** `per_page` of list calls: GitHub's maximum (100) unless a test wants many pages cheaply. */
  readonly pageSize?: number;
  /**
   * Most pages of webhook deliveries one listFailedDeliveries reads (GitHub
   * keeps three days of them; a busy App has thousands). Default 30.
   */
  readonly maxDeliveryPages?: number;
  /**
   * Most list pages whose ETag and answer are remembered for conditional
   * requests (least recently used dropped first). Default 4096: two run
   * listings per repository of a 1,000-repository organisation, and room.
   */
  readonly etagCacheEntries?: number;
  /** Told how every request attempt ended, with GitHub's rate-limit headers (metrics, readiness). */
  readonly observer?: GitHubObserver;
}

/** Runner group id of "Default"; the only group a repository-level runner can join. */
export const DEFAULT_RUNNER_GROUP_ID = 1;

/** The GitHubPort plus what only the composition root and status surfaces need. */
export interface GitHubClient extends GitHubPort {
  /**
   * Ends every wait in progress (those calls fail with
   * FLINT_ERR_GITHUB_UNAVAILABLE), aborts requests in flight and refuses
   * further calls; no timer stays armed. Idempotent.
   */
  close(): void;
  /** Epoch ms until which a rate limit blocks calls (the later of the App's and the installation's), if one does. */
  blockedUntil(): number | undefined;
  /** Where GitHub sends the App's webhooks (`flint doctor`); the secret itself GitHub never returns. */
  webhookConfig(): Promise<AppWebhookConfig>;
  /** A valid installation token, from the client's one cache (the scale-set client registers with it). Never log it. */
  installationToken(): Promise<string>;
}

export interface AppWebhookConfig {
  /** The webhook URL set on the App; "" when none is. */
  readonly url: string;
  /** GitHub skips TLS certificate checks for this URL (insecure_ssl "1"). */
  readonly insecureSsl: boolean;
  /** GitHub reports a secret set (it answers with a mask, never the secret). */
  readonly hasSecret: boolean;
}

export function createGitHubClient(opts: GitHubClientOptions): GitHubClient {
  const PER_PAGE = opts.pageSize ?? 100;
  const { appId, organization: org, privateKey, apiUrl } = opts.github;
  const log = opts.log ?? silentLog;
  const now = opts.now ?? Date.now;
  const lifecycle = new ClientLifecycle({ now, timers: opts.timers ?? realTimers });
  const plumbing = {
    baseUrl: apiUrl,
    log,
    lifecycle,
    ...(opts.random === undefined ? {} : { random: opts.random }),
    ...(opts.retryMaxMs === undefined ? {} : { retryMaxMs: opts.retryMaxMs }),
    ...(opts.writeSpacingMs === undefined ? {} : { writeSpacingMs: opts.writeSpacingMs }),
    ...(opts.retries === undefined ? {} : { retries: opts.retries }),
    ...(opts.retryBaseMs === undefined ? {} : { retryBaseMs: opts.retryBaseMs }),
    ...(opts.maxRateLimitWaitSeconds === undefined ? {} : { maxRateLimitWaitSeconds: opts.maxRateLimitWaitSeconds }),
    ...(opts.maxRateLimitRetries === undefined ? {} : { maxRateLimitRetries: opts.maxRateLimitRetries }),
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
    ...(opts.observer === undefined ? {} : { observer: opts.observer }),
  };
  // A request policy (rate-limit block, concurrency bound, write spacing)
  // per identity: GitHub budgets the App and its installation separately.
  // They must not share the concurrency bound either: an installation
  // request holds its slot while its auth hook waits for the token, and the
  // token comes through `app` — with a shared bound, enough concurrent
  // installation requests could starve the very request they wait for.
  const app = createOctokit({ ...plumbing, auth: createAppJwtAuth({ appId, privateKey, log }) });

  // --- installation discovery -------------------------------------------------
  let installation: Promise<number> | undefined;

  async function discoverInstallation(): Promise<number> {
    const what = `find the installation of GitHub App ${appId} on organization ${org}`;
    let data: Schemas['installation'];
    try {
      ({ data } = await app.rest.apps.getOrgInstallation({ org }));
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new FlintError('FLINT_ERR_GITHUB_APP_NOT_INSTALLED', `GitHub App ${appId} is not installed on organization "${org}"`, {
          hint: `Install the App on organization ${org} (GitHub: the App's settings page → Install App → ${org}; or Organization settings → GitHub Apps); a running Flint picks the installation up on its next attempt. Check that \`github.organization\` is spelled as on GitHub.`,
          details: { appId, org },
          cause: err,
        });
      }
      throw toFlintError(err, what);
    }
    if (data.suspended_at !== null && data.suspended_at !== undefined) {
      throw new FlintError('FLINT_ERR_GITHUB_INSTALLATION_SUSPENDED', `the installation ${data.id} of GitHub App ${appId} on organization "${org}" is suspended since ${data.suspended_at}`, {
        details: { appId, org, installationId: data.id },
      });
    }
    // GitHub always sends both; older Enterprise servers or proxies might not, and then Flint does not guess.
    const missing = data.permissions === undefined ? [] : missingPermissions(data.permissions);
    if (missing.length > 0) {
      throw new FlintError('FLINT_ERR_GITHUB_PERMISSION_DENIED',
        `GitHub App ${appId} lacks permissions on organization "${org}": ${missing.join('; ')}`, {
          details: { appId, org, installationId: data.id, missing },
        });
    }
    if (Array.isArray(data.events) && !data.events.includes('workflow_job')) {
      log.warn({ appId, org, events: data.events },
        'the GitHub App is not subscribed to "Workflow job" events: jobs are found only by the missed-webhooks scan (subscribe in the App settings)');
    }
    log.info({ appId, org, installationId: data.id }, 'found the GitHub App installation');
    return data.id;
  }

  function installationId(): Promise<number> {
    if (installation === undefined) {
      const p = discoverInstallation();
      installation = p;
      // A failed discovery is not cached: the next call asks again (the
      // operator may have installed the App in the meantime).
      p.catch(() => {
        if (installation === p) installation = undefined;
      });
    }
    return installation;
  }

  // --- installation tokens ------------------------------------------------------
  async function fetchToken(rediscovered = false): Promise<{ token: string; expiresAt: string; serverDate: string | undefined }> {
    const id = await installationId();
    try {
      const res = await app.rest.apps.createInstallationAccessToken({ installation_id: id });
      return { token: res.data.token, expiresAt: res.data.expires_at, serverDate: res.headers.date };
    } catch (err) {
      if (statusOf(err) === 404 && !rediscovered) {
        // The App was uninstalled and perhaps installed again under a new id.
        log.warn({ appId, org, installationId: id }, 'the GitHub App installation is gone; looking it up again');
        installation = undefined;
        return fetchToken(true);
      }
      throw toFlintError(err, `create an installation access token for GitHub App ${appId} on organization ${org}`);
    }
  }

  const tokens = createInstallationTokenSource({
    fetch: () => fetchToken(),
    now,
    ...(opts.tokenRefreshMarginMs === undefined ? {} : { refreshMarginMs: opts.tokenRefreshMarginMs }),
    onRefresh: (info) => log.info({ expiresAt: info.expiresAt, lifetimeSeconds: Math.round(info.lifetimeMs / 1000), reason: info.reason },
      'fetched a GitHub installation access token'),
    // Only an outage or a rate limit: a definite answer (uninstalled, suspended, bad key) must surface now.
    transient: (err) => isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE') || isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'),
    onStale: (info) => log.warn({ validForSeconds: Math.round(info.validForMs / 1000), error: messageOf(info.error) },
      'could not refresh the GitHub installation token; using the current one until it expires'),
  });
  const inst = createOctokit({ ...plumbing, auth: createInstallationAuth({ tokens, log }) });

  async function call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toFlintError(err, operation);
    }
  }

  // --- runner groups ----------------------------------------------------------------
  function listRunnerGroups(): Promise<readonly RunnerGroup[]> {
    return call(`list the runner groups of organization ${org}`, async () => {
      const groups = await inst.paginate('GET /orgs/{org}/actions/runner-groups', { org, per_page: PER_PAGE });
      return groups.map((g) => ({ id: Number(g.id), name: g.name, isDefault: g.default }));
    });
  }

  async function runnerGroupId(name: string): Promise<number> {
    const groups = await listRunnerGroups();
    const found = groups.find((g) => g.name === name) ?? groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
    if (found !== undefined) return found.id;
    const names = groups.map((g) => `"${g.name}"`).join(', ');
    throw new FlintError('FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND',
      `runner group "${name}" does not exist in organization ${org}; the groups there are: ${names === '' ? '(none visible to the App)' : names}`, {
        details: { org, group: name, available: groups.map((g) => g.name) },
      });
  }

  // --- runners ------------------------------------------------------------------------
  function scopeText(scope: RunnerScope): string {
    return scope.kind === 'organization' ? `organization ${org}` : `repository ${scope.owner}/${scope.repo}`;
  }

  async function generateJit(req: JitRunnerRequest): Promise<JitRunner> {
    const body = {
      name: req.name,
      runner_group_id: req.runnerGroupId,
      labels: [...req.labels],
      ...(req.workFolder === undefined ? {} : { work_folder: req.workFolder }),
    };
    const res = req.scope.kind === 'organization'
      ? await inst.rest.actions.generateRunnerJitconfigForOrg({ org, ...body })
      : await inst.rest.actions.generateRunnerJitconfigForRepo({ owner: req.scope.owner, repo: req.scope.repo, ...body });
    return { runnerId: res.data.runner.id, runnerName: res.data.runner.name, encodedJitConfig: res.data.encoded_jit_config };
  }

  async function createJitRunner(req: JitRunnerRequest): Promise<JitRunner> {
    const what = `register JIT runner "${req.name}" in ${scopeText(req.scope)}`;
    let jit: JitRunner;
    try {
      jit = await generateJit(req);
    } catch (err) {
      if (statusOf(err) !== 409) throw toFlintError(err, what);
      // The name is taken. Flint's runner names carry the VM id, so the
      // usual cause is our own earlier attempt whose answer was lost (a
      // retried 5xx after GitHub had registered it): that runner never got
      // its config, so it is offline and idle. Remove it and try once more.
      const stale = await call(what, async () => (await listRunnersImpl(req.scope, req.name)).find((r) => r.name === req.name));
      if (stale === undefined || stale.busy || stale.status === 'online') {
        throw new FlintError('FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN', `${what}: a runner with this name already exists${stale === undefined ? '' : ` (id ${stale.id}, ${stale.status}${stale.busy ? ', busy' : ''})`}`, {
          details: { scope: scopeText(req.scope), name: req.name }, cause: err,
        });
      }
      log.warn({ runnerId: stale.id, runnerName: stale.name, scope: scopeText(req.scope) },
        'a runner with this name is already registered but offline and idle (an earlier attempt whose answer was lost); removing it and registering again');
      await deleteRunner(req.scope, stale.id);
      jit = await call(what, () => generateJit(req));
    }
    log.info({ runnerId: jit.runnerId, runnerName: jit.runnerName, scope: scopeText(req.scope), labels: req.labels }, 'registered a JIT runner');
    return jit;
  }

  async function listRunnersImpl(scope: RunnerScope, name?: string): Promise<SelfHostedRunner[]> {
    const filter = name === undefined ? {} : { name };
    const runners = scope.kind === 'organization'
      ? await inst.paginate(inst.rest.actions.listSelfHostedRunnersForOrg, { org, per_page: PER_PAGE, ...filter })
      : await inst.paginate(inst.rest.actions.listSelfHostedRunnersForRepo, { owner: scope.owner, repo: scope.repo, per_page: PER_PAGE, ...filter });
    return runners.map(toRunner);
  }

  function listRunners(scope: RunnerScope): Promise<readonly SelfHostedRunner[]> {
    return call(`list the self-hosted runners of ${scopeText(scope)}`, () => listRunnersImpl(scope));
  }

  async function getRunner(scope: RunnerScope, runnerId: number): Promise<SelfHostedRunner | undefined> {
    try {
      const res = scope.kind === 'organization'
        ? await inst.rest.actions.getSelfHostedRunnerForOrg({ org, runner_id: runnerId })
        : await inst.rest.actions.getSelfHostedRunnerForRepo({ owner: scope.owner, repo: scope.repo, runner_id: runnerId });
      return toRunner(res.data);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw toFlintError(err, `get runner ${runnerId} of ${scopeText(scope)}`);
    }
  }

  async function deleteRunner(scope: RunnerScope, runnerId: number): Promise<void> {
    const what = `remove runner ${runnerId} from ${scopeText(scope)}`;
    try {
      if (scope.kind === 'organization') await inst.rest.actions.deleteSelfHostedRunnerFromOrg({ org, runner_id: runnerId });
      else await inst.rest.actions.deleteSelfHostedRunnerFromRepo({ owner: scope.owner, repo: scope.repo, runner_id: runnerId });
      log.info({ runnerId, scope: scopeText(scope) }, 'removed a self-hosted runner');
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) {
        log.debug({ runnerId, scope: scopeText(scope) }, 'runner already gone');
        return;
      }
      if (status === 422) {
        throw new FlintError('FLINT_ERR_GITHUB_RUNNER_BUSY', `${what}: GitHub says the runner is still running a job`, {
          details: { runnerId, scope: scopeText(scope) }, cause: err,
        });
      }
      throw toFlintError(err, what);
    }
  }

  // --- jobs ---------------------------------------------------------------------------
  async function getJob(owner: string, repo: string, jobId: number): Promise<WorkflowJob | undefined> {
    try {
      const res = await inst.rest.actions.getJobForWorkflowRun({ owner, repo, job_id: jobId });
      return toJob(owner, repo, res.data);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw toFlintError(err, `get job ${jobId} of ${owner}/${repo}`);
    }
  }

  /** Queued jobs of one repository; a repository that vanished mid-scan has none. */
  async function queuedJobsOf(owner: string, repo: string): Promise<WorkflowJob[]> {
    const out: WorkflowJob[] = [];
    try {
      for (const status of ['queued', 'in_progress'] as const) {
        const runs = await inst.paginate(inst.rest.actions.listWorkflowRunsForRepo, { owner, repo, status, per_page: PER_PAGE });
        for (const run of runs) {
          const jobs = await inst.paginate(inst.rest.actions.listJobsForWorkflowRun, { owner, repo, run_id: run.id, filter: 'latest', per_page: PER_PAGE });
          for (const job of jobs) if (job.status === 'queued') out.push(toJob(owner, repo, job));
        }
      }
    } catch (err) {
      if (statusOf(err) === 404) return [];
      throw err;
    }
    return out;
  }

  function listQueuedJobs(): Promise<readonly WorkflowJob[]> {
    return call(`list queued jobs in the repositories of organization ${org}`, async () => {
      const repos = await inst.paginate(inst.rest.apps.listReposAccessibleToInstallation, { per_page: PER_PAGE });
      const perRepo = await mapLimit(repos, opts.scanConcurrency ?? 4, (r) => queuedJobsOf(r.owner.login, r.name));
      // A run can move from "queued" to "in_progress" between the two
      // listings, showing the same job twice: keep one per id.
      const byId = new Map<number, WorkflowJob>();
      for (const job of perRepo.flat()) byId.set(job.id, job);
      const jobs = [...byId.values()].sort((a, b) => a.id - b.id);
      log.debug({ repositories: repos.length, queuedJobs: jobs.length }, 'scanned repositories for queued jobs');
      return jobs;
    });
  }

  // --- conditional reads (ETag / If-None-Match) ----------------------------------------
  // GitHub answers a request whose If-None-Match carries the current ETag
  // with 304 and no body, and a 304 does not count against the rate limit.
  // The cache keeps, per page URL, the ETag and the answer it stood for, so
  // a 304 still yields the full answer. Octokit surfaces a 304 as a thrown
  // RequestError (status 304); it is handled here and nowhere else.
  const etags = new Map<string, { readonly etag: string; readonly data: unknown; readonly link: string | undefined }>();
  const etagLimit = Math.max(1, opts.etagCacheEntries ?? 4096);

  async function conditionalPage(url: string): Promise<{ data: unknown; link: string | undefined; notModified: boolean }> {
    const cached = etags.get(url);
    if (cached !== undefined) {
      // Least recently used last out: a hit moves to the back of the Map's order.
      etags.delete(url);
      etags.set(url, cached);
    }
    try {
      const res = await inst.request(`GET ${url}`, cached === undefined ? {} : { headers: { 'if-none-match': cached.etag } });
      const etag = res.headers.etag;
      if (etag !== undefined) {
        etags.delete(url);
        etags.set(url, { etag, data: res.data, link: res.headers.link });
        for (const key of etags.keys()) {
          if (etags.size <= etagLimit) break;
          etags.delete(key);
        }
      }
      return { data: res.data, link: res.headers.link, notModified: false };
    } catch (err) {
      if (statusOf(err) === 304 && cached !== undefined) return { data: cached.data, link: cached.link, notModified: true };
      throw err;
    }
  }

  /** Every page of a list, each page conditional; `pick` takes the items out of one page's body. */
  async function conditionalList<T>(firstUrl: string, pick: (data: unknown) => readonly T[]): Promise<Conditional<T[]>> {
    const items: T[] = [];
    let requests = 0;
    let charged = 0;
    let url: string | undefined = firstUrl;
    while (url !== undefined) {
      const page = await conditionalPage(url);
      requests++;
      if (!page.notModified) charged++;
      items.push(...pick(page.data));
      url = nextLink(page.link);
    }
    return { value: items, unchanged: charged === 0, requests, charged };
  }

  function listRepositories(): Promise<Conditional<readonly RepositoryRef[]>> {
    return call(`list the repositories of organization ${org}`, async () => {
      // The installation's listing has no sort; GitHub's answer carries pushed_at, so sort here.
      const r = await conditionalList(`/installation/repositories?per_page=${PER_PAGE}`,
        // The body is GitHub's documented answer of list repositories accessible to the installation.
        (d) => (d as { repositories: Schemas['repository'][] }).repositories);
      const repos = r.value
        .map((x): RepositoryRef => ({ owner: x.owner.login, name: x.name, pushedAt: x.pushed_at ?? null }))
        .sort((a, b) => (b.pushedAt ?? '').localeCompare(a.pushedAt ?? ''));
      return { ...r, value: repos };
    });
  }

  function listQueuedJobsIn(owner: string, repo: string): Promise<Conditional<readonly WorkflowJob[]>> {
    return call(`list queued jobs of ${owner}/${repo}`, async () => {
      const base = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions`;
      const out = new Map<number, WorkflowJob>();
      let requests = 0;
      let charged = 0;
      const add = (c: Conditional<unknown>): void => {
        requests += c.requests;
        charged += c.charged;
      };
      try {
        for (const status of ['queued', 'in_progress'] as const) {
          // The body is GitHub's documented answer of this endpoint (list workflow runs for a repository).
          const runs = await conditionalList(`${base}/runs?status=${status}&per_page=${PER_PAGE}`, (d) => (d as { workflow_runs: Schemas['workflow-run'][] }).workflow_runs);
          add(runs);
          for (const run of runs.value) {
            // The body is GitHub's documented answer of list jobs for a workflow run.
            const jobs = await conditionalList(`${base}/runs/${run.id}/jobs?filter=latest&per_page=${PER_PAGE}`, (d) => (d as { jobs: Schemas['job'][] }).jobs);
            add(jobs);
            // A run can move from queued to in_progress between the two listings: one entry per job id.
            for (const job of jobs.value) if (job.status === 'queued') out.set(Number(job.id), toJob(owner, repo, job));
          }
        }
      } catch (err) {
        if (statusOf(err) === 404) return { value: [], unchanged: false, requests: requests + 1, charged: charged + 1 };
        throw err;
      }
      return { value: [...out.values()].sort((a, b) => a.id - b.id), unchanged: charged === 0, requests, charged };
    });
  }

  // --- webhook deliveries -------------------------------------------------------------
  function listFailedDeliveries(o: { readonly since?: Date } = {}): Promise<readonly WebhookDelivery[]> {
    const since = o.since?.getTime();
    return call(`list the webhook deliveries of GitHub App ${appId}`, async () => {
      const seen: WebhookDelivery[] = [];
      const maxPages = opts.maxDeliveryPages ?? 30;
      let pages = 0;
      // Newest first: stop at the first page that reaches past `since`.
      for await (const page of app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: PER_PAGE })) {
        let older = false;
        for (const d of page.data) {
          if (since !== undefined && Date.parse(d.delivered_at) < since) {
            older = true;
            continue;
          }
          seen.push(toDelivery(d));
        }
        if (older) break;
        if (++pages >= maxPages && /rel="next"/.test(page.headers.link ?? '')) {
          log.warn({ pages, deliveries: seen.length, oldest: seen.at(-1)?.deliveredAt },
            'webhook deliveries: stopped at the page limit; older failures are not looked at (pass a later `since`)');
          break;
        }
      }
      const succeeded = new Set(seen.filter((d) => isSuccess(d.statusCode)).map((d) => d.guid));
      const latest = new Map<string, WebhookDelivery>();
      for (const d of seen) {
        if (succeeded.has(d.guid)) continue;
        const have = latest.get(d.guid);
        if (have === undefined || d.id > have.id) latest.set(d.guid, d);
      }
      return [...latest.values()].sort((a, b) => a.id - b.id);
    });
  }

  function webhookConfig(): Promise<AppWebhookConfig> {
    return call(`read the webhook configuration of GitHub App ${appId}`, async () => {
      const { data } = await app.rest.apps.getWebhookConfigForApp();
      return { url: data.url ?? '', insecureSsl: String(data.insecure_ssl ?? '0') === '1', hasSecret: typeof data.secret === 'string' && data.secret !== '' };
    });
  }

  async function redeliver(deliveryId: number): Promise<void> {
    await call(`redeliver webhook delivery ${deliveryId}`, () => app.rest.apps.redeliverWebhookDelivery({ delivery_id: deliveryId }));
    log.info({ deliveryId }, 'asked GitHub to redeliver a webhook delivery');
  }

  return {
    installationId: () => call(`find the installation of GitHub App ${appId} on organization ${org}`, installationId),
    listRunnerGroups,
    runnerGroupId,
    createJitRunner,
    listRunners,
    getRunner,
    deleteRunner,
    getJob,
    listQueuedJobs,
    listRepositories,
    listQueuedJobsIn,
    listFailedDeliveries,
    redeliver,
    webhookConfig,
    installationToken: () => tokens.get(),
    close: () => lifecycle.close(),
    blockedUntil: () => {
      const until = [app.policy.blockedUntil(), inst.policy.blockedUntil()].filter((t): t is number => t !== undefined);
      return until.length === 0 ? undefined : Math.max(...until);
    },
  };
}

/**
 * Permissions Flint cannot work without (docs/github-app.md). Administration
 * (repository runners) is not required: it is only needed when a runner is
 * registered at repository level, and a 403 then says so.
 */
const REQUIRED_PERMISSIONS: readonly { readonly name: string; readonly level: 'read' | 'write'; readonly label: string }[] = [
  { name: 'organization_self_hosted_runners', level: 'write', label: 'Organization → Self-hosted runners: Read and write' },
  { name: 'actions', level: 'read', label: 'Repository → Actions: Read' },
];

function missingPermissions(granted: Schemas['installation']['permissions']): string[] {
  // Indexing by name: the schema lists each permission as an optional property.
  const have: Readonly<Record<string, string | undefined>> = granted;
  return REQUIRED_PERMISSIONS
    .filter((p) => {
      const level = have[p.name];
      return level === undefined || (p.level === 'write' && level !== 'write' && level !== 'admin');
    })
    .map((p) => `${p.label} (has ${have[p.name] ?? 'none'})`);
}

/** GitHub counts 200–399 as a successful delivery (the `status=success` filter of the deliveries API). */
function isSuccess(statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 400;
}

function toRunner(r: Schemas['runner']): SelfHostedRunner {
  return {
    id: r.id,
    name: r.name,
    os: r.os,
    status: r.status,
    busy: r.busy,
    ephemeral: r.ephemeral ?? false,
    runnerGroupId: r.runner_group_id,
    labels: r.labels.map((l) => l.name),
  };
}

function toJob(owner: string, repo: string, j: Schemas['job']): WorkflowJob {
  return {
    id: Number(j.id),
    runId: Number(j.run_id),
    owner,
    repo,
    name: j.name,
    status: j.status,
    conclusion: j.conclusion,
    labels: j.labels,
    runnerId: j.runner_id,
    runnerName: j.runner_name,
    runnerGroupId: j.runner_group_id,
    createdAt: j.created_at,
    startedAt: j.started_at,
    completedAt: j.completed_at,
    htmlUrl: j.html_url,
    runAttempt: j.run_attempt ?? 1,
    workflowName: j.workflow_name,
    headBranch: j.head_branch,
  };
}

function toDelivery(d: Schemas['hook-delivery-item']): WebhookDelivery {
  return {
    id: Number(d.id),
    guid: d.guid,
    deliveredAt: d.delivered_at,
    redelivery: d.redelivery,
    statusCode: d.status_code,
    status: d.status,
    event: d.event,
    action: d.action,
    installationId: d.installation_id === null ? null : Number(d.installation_id),
    repositoryId: d.repository_id === null ? null : Number(d.repository_id),
  };
}

/** The `rel="next"` URL of a Link header. */
function nextLink(link: string | undefined): string | undefined {
  return link === undefined ? undefined : /<([^>]+)>;\s*rel="next"/.exec(link)?.[1];
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      // `i < items.length` was checked just above and nothing shrinks `items`.
      out[i] = await fn(items[i] as T);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker()));
  return out;
}

