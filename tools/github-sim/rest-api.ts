/**
 * The REST endpoints Flint calls, with GitHub's auth rules, status codes and
 * bodies. Each handler gets a parsed request and returns a Reply; the server
 * adds rate-limit headers, request ids, faults and the request log.
 */
import type { KeyObject } from 'node:crypto';
import * as render from './render.ts';
import type { GroupRec, RenderCtx, RepoRec, RunnerRec } from './render.ts';
import { encodeJitConfig, type RsaParamsFile } from './jit-config.ts';
import { error, isPage, notFound, paginate, type Reply } from './http-util.ts';
import { isoSeconds, type World } from './world.ts';
import type { WebhookSender } from './webhook-sender.ts';
import { looksLikeJwt, verifyAppJwt } from './jwt.ts';

export type Auth = { readonly kind: 'app' } | { readonly kind: 'installation'; readonly token: string };

export interface ApiDeps {
  readonly world: World;
  readonly webhooks: WebhookSender;
  readonly ctx: () => RenderCtx;
  readonly publicKey: KeyObject;
  readonly installed: () => boolean;
  readonly tokenTtlSeconds: number;
  readonly now: () => number;
  /** The RSA key put into JIT configs (see index.ts for why it is shared). */
  readonly runnerKey: () => Promise<RsaParamsFile>;
}

export interface ApiRequest {
  readonly method: string;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
  readonly auth: Auth;
}

type AuthNeed = 'app' | 'installation';
interface Route { readonly method: string; readonly pattern: RegExp; readonly auth: AuthNeed; readonly handle: (d: ApiDeps, r: ApiRequest) => Reply | Promise<Reply> }

const ok = (body: unknown, headers?: Record<string, string>): Reply => ({ status: 200, body, ...(headers === undefined ? {} : { headers }) });
const linkHeader = (link: string | undefined): Record<string, string> | undefined => (link === undefined ? undefined : { link });

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Repository under the simulated org (owner and name are case-insensitive, as on GitHub). */
function repoOf(d: ApiDeps, r: ApiRequest): RepoRec | undefined {
  const owner = r.params.owner ?? '';
  if (!sameName(owner, d.ctx().org)) return undefined;
  return d.world.repo(r.params.repo ?? '');
}

function orgMatches(d: ApiDeps, r: ApiRequest): boolean {
  return sameName(r.params.org ?? '', d.ctx().org);
}

function listRunners(d: ApiDeps, r: ApiRequest, scope: RepoRec | undefined): Reply {
  const name = r.url.searchParams.get('name');
  const all = [...d.world.runners.values()]
    .filter((x) => (scope === undefined ? x.repo === undefined : x.repo?.id === scope.id))
    .filter((x) => name === null || x.name === name)
    .sort((a, b) => a.id - b.id);
  const p = paginate(all, r.url, d.ctx().api);
  if (!isPage(p)) return p;
  return ok({ total_count: all.length, runners: p.items.map(render.runner) }, linkHeader(p.link));
}

function findRunner(d: ApiDeps, r: ApiRequest, scope: RepoRec | undefined): RunnerRec | undefined {
  const found = d.world.runners.get(Number(r.params.runner_id));
  if (found === undefined) return undefined;
  return (scope === undefined ? found.repo === undefined : found.repo?.id === scope.id) ? found : undefined;
}

function deleteRunner(d: ApiDeps, found: RunnerRec | undefined): Reply {
  if (found === undefined) return notFound();
  if (found.busy) {
    return error(422, `Bad request - Runner "${found.name}" is still running a job"`, 'https://docs.github.com/rest/actions/self-hosted-runners#delete-a-self-hosted-runner-from-an-organization');
  }
  d.world.removeRunner(found);
  return { status: 204 };
}

async function generateJitConfig(d: ApiDeps, r: ApiRequest, scope: RepoRec | undefined): Promise<Reply> {
  const doc = 'https://docs.github.com/rest/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-an-organization';
  const { name, runner_group_id: groupId, labels, work_folder: workFolder } = r.body;
  const missing = (f: string): Reply => error(422, `Invalid request.\n\n"${f}" wasn't supplied.`, doc);
  if (name === undefined) return missing('name');
  if (groupId === undefined) return missing('runner_group_id');
  if (labels === undefined) return missing('labels');
  if (typeof name !== 'string' || name.trim() === '' || name.length > 64) return error(422, 'Invalid request.\n\nFor \'properties/name\', is not a valid runner name.', doc);
  if (typeof groupId !== 'number' || !Number.isInteger(groupId)) return error(422, `Invalid request.\n\nFor 'properties/runner_group_id', ${JSON.stringify(groupId)} is not an integer.`, doc);
  if (!Array.isArray(labels) || labels.length < 1 || labels.length > 100 || !labels.every((l) => typeof l === 'string' && l.trim() !== '')) {
    return error(422, 'Invalid request.\n\nFor \'properties/labels\', expected 1 to 100 non-empty strings.', doc);
  }
  if (workFolder !== undefined && typeof workFolder !== 'string') return error(422, 'Invalid request.\n\nFor \'properties/work_folder\', is not a string.', doc);
  const allowed = Object.keys(r.body).filter((k) => !['name', 'runner_group_id', 'labels', 'work_folder'].includes(k));
  if (allowed.length > 0) return error(422, `Invalid request.\n\n${allowed.map((k) => `"${k}"`).join(', ')} is not a permitted key.`, doc);
  const group = d.world.groups.find((g) => g.id === groupId);
  if (group === undefined || (scope !== undefined && !group.isDefault)) return notFound();
  const clash = [...d.world.runners.values()].some((x) => x.name === name && (x.repo?.id ?? null) === (scope?.id ?? null));
  if (clash) return error(409, `Already exists - A runner with the name ${name} already exists.`, doc);
  // Register first (GitHub shows the runner offline right away), then build its config.
  const runner = d.world.registerRunner({ name, labels: labels as string[], group, repo: scope, workFolder: workFolder ?? '_work' }); // every element checked to be a string above
  const encoded = await runnerJitConfig(d, runner, group, scope);
  return { status: 201, body: { runner: render.runner(runner), encoded_jit_config: encoded } };
}

/**
 * The encoded JIT config of a just-registered runner, and its runner-side
 * session (the stub runner's `/_sim/runner/*` calls name it). Shared by the
 * REST JIT endpoint and the Actions service's scale-set endpoint, so a guest
 * runs either kind the same way.
 */
export async function runnerJitConfig(d: Pick<ApiDeps, 'world' | 'ctx' | 'runnerKey'>, runner: RunnerRec, group: GroupRec, scope: RepoRec | undefined): Promise<string> {
  const c = d.ctx();
  d.world.sessions.set(runner.session, runner.id);
  const encoded = await encodeJitConfig({
    runner: {
      agentId: runner.id, agentName: runner.name, poolId: group.id, poolName: group.name,
      serverUrl: `${c.api}/_sim/pipelines/`, serverUrlV2: `${c.api}/_sim/broker/`,
      gitHubUrl: scope === undefined ? `${c.web}/${c.org}` : `${c.web}/${c.org}/${scope.name}`,
      workFolder: runner.workFolder, ephemeral: true, disableUpdate: true, useV2Flow: true,
    },
    credentials: { scheme: 'OAuth', data: { clientId: runner.session, authorizationUrl: `${c.api}/_sim/oauth2/token`, requireFipsCryptography: 'False' } },
    rsaParams: await d.runnerKey(),
  });
  d.world.jitConfigs.push(encoded);
  return encoded;
}

function deliveryItem(r: ReturnType<WebhookSender['records']>[number], installationId: number): Record<string, unknown> {
  return {
    id: r.id, guid: r.guid, delivered_at: r.deliveredAt, redelivery: r.redelivery, duration: Math.round(r.durationMs) / 1000,
    status: r.status, status_code: r.statusCode, event: r.event, action: r.action, installation_id: installationId,
    repository_id: r.repositoryId, throttled_at: null,
  };
}

const routes: Route[] = [
  { method: 'GET', pattern: /^\/app$/, auth: 'app', handle: (d) => ok(render.app(d.ctx())) },
  {
    method: 'GET', pattern: /^\/app\/installations$/, auth: 'app', handle: (d, r) => {
      const all = d.installed() ? [render.installation(d.ctx())] : [];
      const p = paginate(all, r.url, d.ctx().api);
      return isPage(p) ? ok(p.items, linkHeader(p.link)) : p;
    },
  },
  {
    method: 'GET', pattern: /^\/app\/installations\/(?<installation_id>\d+)$/, auth: 'app', handle: (d, r) =>
      d.installed() && Number(r.params.installation_id) === d.ctx().installationId ? ok(render.installation(d.ctx())) : notFound(),
  },
  {
    method: 'GET', pattern: /^\/orgs\/(?<org>[^/]+)\/installation$/, auth: 'app', handle: (d, r) =>
      d.installed() && orgMatches(d, r) ? ok(render.installation(d.ctx())) : notFound(),
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/installation$/, auth: 'app', handle: (d, r) =>
      d.installed() && repoOf(d, r) !== undefined ? ok(render.installation(d.ctx())) : notFound(),
  },
  {
    method: 'POST', pattern: /^\/app\/installations\/(?<installation_id>\d+)\/access_tokens$/, auth: 'app', handle: (d, r) => {
      if (!d.installed() || Number(r.params.installation_id) !== d.ctx().installationId) return notFound();
      const t = d.world.issueToken(d.now(), d.tokenTtlSeconds);
      return { status: 201, body: { token: t.token, expires_at: isoSeconds(t.expiresAt), permissions: render.APP_PERMISSIONS, repository_selection: 'all' } };
    },
  },
  {
    // GitHub masks the secret in this answer; for an App without a webhook the URL is left out (the schema wants a URI when present).
    method: 'GET', pattern: /^\/app\/hook\/config$/, auth: 'app', handle: (d) => {
      const target = d.webhooks.target;
      return ok(target === undefined ? { content_type: 'json', insecure_ssl: '0' } : { url: target.url, content_type: 'json', secret: '********', insecure_ssl: '0' });
    },
  },
  {
    method: 'GET', pattern: /^\/app\/hook\/deliveries$/, auth: 'app', handle: (d, r) => {
      const perPageRaw = r.url.searchParams.get('per_page');
      const perPage = perPageRaw === null ? 30 : Number(perPageRaw);
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > 100) return error(422, 'Invalid request.\n\nper_page must be between 1 and 100.');
      const status = r.url.searchParams.get('status');
      if (status !== null && status !== 'success' && status !== 'failure') return error(400, 'Bad request: status must be success or failure.');
      const cursor = r.url.searchParams.get('cursor');
      let below = Number.POSITIVE_INFINITY;
      if (cursor !== null && cursor !== '') {
        const m = /^v1_(\d+)$/.exec(cursor);
        if (m === null) return error(400, 'Bad request: invalid cursor.');
        below = Number(m[1]) + 1;
      }
      // Newest first, as GitHub lists them; the cursor names the first item of the next page.
      const all = [...d.webhooks.records()]
        // As the description says: success is a status_code of 200–399, failure
        // 400–599; an attempt that got no answer (status_code 0) is in neither.
        .filter((x) => status === null || (status === 'success' ? x.statusCode >= 200 && x.statusCode < 400 : x.statusCode >= 400 && x.statusCode < 600))
        .sort((a, b) => b.id - a.id)
        .filter((x) => x.id < below);
      const items = all.slice(0, perPage);
      const next = all[perPage];
      const headers = next === undefined ? undefined : { link: `<${d.ctx().api}/app/hook/deliveries?per_page=${perPage}&cursor=v1_${next.id}${status === null ? '' : `&status=${status}`}>; rel="next"` };
      return ok(items.map((x) => deliveryItem(x, d.ctx().installationId)), headers);
    },
  },
  {
    method: 'GET', pattern: /^\/app\/hook\/deliveries\/(?<delivery_id>\d+)$/, auth: 'app', handle: (d, r) => {
      const x = d.webhooks.find(Number(r.params.delivery_id));
      if (x === undefined) return notFound();
      return ok({
        ...deliveryItem(x, d.ctx().installationId), url: d.webhooks.target?.url ?? '',
        request: { headers: x.requestHeaders, payload: x.payload },
        response: { headers: { 'Content-Type': 'text/plain' }, payload: x.responseBody },
      });
    },
  },
  {
    method: 'POST', pattern: /^\/app\/hook\/deliveries\/(?<delivery_id>\d+)\/attempts$/, auth: 'app', handle: (d, r) =>
      d.webhooks.redeliver(Number(r.params.delivery_id)) ? { status: 202, body: {} } : notFound(),
  },
  {
    method: 'GET', pattern: /^\/installation\/repositories$/, auth: 'installation', handle: (d, r) => {
      const p = paginate(d.world.repos, r.url, d.ctx().api);
      if (!isPage(p)) return p;
      return ok({ total_count: d.world.repos.length, repository_selection: 'all', repositories: p.items.map((x) => render.repository(d.ctx(), x)) }, linkHeader(p.link));
    },
  },
  {
    method: 'GET', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runner-groups$/, auth: 'installation', handle: (d, r) => {
      if (!orgMatches(d, r)) return notFound();
      const p = paginate(d.world.groups, r.url, d.ctx().api);
      if (!isPage(p)) return p;
      return ok({ total_count: d.world.groups.length, runner_groups: p.items.map((g) => render.runnerGroup(d.ctx(), g)) }, linkHeader(p.link));
    },
  },
  {
    // What a scale-set listener trades for the Actions service's address and admin token (actions-service.ts).
    method: 'POST', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runners\/registration-token$/, auth: 'installation', handle: (d, r) => {
      if (!orgMatches(d, r)) return notFound();
      const t = d.world.issueRegistrationToken(d.now());
      return { status: 201, body: { token: t.token, expires_at: isoSeconds(t.expiresAt) } };
    },
  },
  {
    method: 'POST', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runners\/generate-jitconfig$/, auth: 'installation', handle: (d, r) =>
      orgMatches(d, r) ? generateJitConfig(d, r, undefined) : notFound(),
  },
  {
    method: 'POST', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runners\/generate-jitconfig$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      return repo === undefined ? notFound() : generateJitConfig(d, r, repo);
    },
  },
  {
    method: 'GET', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runners$/, auth: 'installation', handle: (d, r) =>
      orgMatches(d, r) ? listRunners(d, r, undefined) : notFound(),
  },
  {
    method: 'GET', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runners\/(?<runner_id>\d+)$/, auth: 'installation', handle: (d, r) => {
      const x = orgMatches(d, r) ? findRunner(d, r, undefined) : undefined;
      return x === undefined ? notFound() : ok(render.runner(x));
    },
  },
  {
    method: 'DELETE', pattern: /^\/orgs\/(?<org>[^/]+)\/actions\/runners\/(?<runner_id>\d+)$/, auth: 'installation', handle: (d, r) =>
      deleteRunner(d, orgMatches(d, r) ? findRunner(d, r, undefined) : undefined),
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runners$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      return repo === undefined ? notFound() : listRunners(d, r, repo);
    },
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runners\/(?<runner_id>\d+)$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      const x = repo === undefined ? undefined : findRunner(d, r, repo);
      return x === undefined ? notFound() : ok(render.runner(x));
    },
  },
  {
    method: 'DELETE', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runners\/(?<runner_id>\d+)$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      return deleteRunner(d, repo === undefined ? undefined : findRunner(d, r, repo));
    },
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/jobs\/(?<job_id>\d+)$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      const j = d.world.jobs.get(Number(r.params.job_id));
      return repo === undefined || j === undefined || j.run.repo.id !== repo.id ? notFound() : ok(render.job(d.ctx(), j));
    },
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runs$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      if (repo === undefined) return notFound();
      const status = r.url.searchParams.get('status');
      // Newest first, as GitHub lists runs.
      const all = [...d.world.runs.values()].filter((x) => x.repo.id === repo.id).sort((a, b) => b.id - a.id)
        .map((run) => ({ run, ...d.world.runStatus(run) }))
        .filter((x) => status === null || x.status === status || x.conclusion === status);
      const p = paginate(all, r.url, d.ctx().api);
      if (!isPage(p)) return p;
      return ok({ total_count: all.length, workflow_runs: p.items.map((x) => render.workflowRun(d.ctx(), x.run, x.status, x.conclusion)) }, linkHeader(p.link));
    },
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runs\/(?<run_id>\d+)$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      const run = d.world.runs.get(Number(r.params.run_id));
      if (repo === undefined || run === undefined || run.repo.id !== repo.id) return notFound();
      const s = d.world.runStatus(run);
      return ok(render.workflowRun(d.ctx(), run, s.status, s.conclusion));
    },
  },
  {
    method: 'GET', pattern: /^\/repos\/(?<owner>[^/]+)\/(?<repo>[^/]+)\/actions\/runs\/(?<run_id>\d+)\/jobs$/, auth: 'installation', handle: (d, r) => {
      const repo = repoOf(d, r);
      const run = d.world.runs.get(Number(r.params.run_id));
      if (repo === undefined || run === undefined || run.repo.id !== repo.id) return notFound();
      const filter = r.url.searchParams.get('filter');
      if (filter !== null && filter !== 'latest' && filter !== 'all') return error(422, 'Invalid request.\n\nfilter must be latest or all.');
      const all = [...d.world.jobs.values()].filter((j) => j.run.id === run.id).sort((a, b) => a.id - b.id);
      const p = paginate(all, r.url, d.ctx().api);
      if (!isPage(p)) return p;
      return ok({ total_count: all.length, jobs: p.items.map((j) => render.job(d.ctx(), j)) }, linkHeader(p.link));
    },
  },
];

export type Resolved =
  | { readonly kind: 'route'; readonly route: Route; readonly params: Record<string, string> }
  | { readonly kind: 'none' };

export function resolveRoute(method: string, path: string): Resolved {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m === null) continue;
    if (route.method !== method) continue;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v);
    return { kind: 'route', route, params };
  }
  return { kind: 'none' };
}

/** Authenticates a request for a route; a Reply when it must be refused. */
export function authenticate(d: ApiDeps, need: AuthNeed, authorization: string | undefined): Auth | Reply {
  if (authorization === undefined || authorization.trim() === '') return error(401, 'Requires authentication');
  const m = /^(bearer|token)\s+(\S+)$/i.exec(authorization.trim());
  if (m === null) return error(401, 'Bad credentials');
  const credential = m[2] ?? '';
  if (looksLikeJwt(credential)) {
    const check = verifyAppJwt(credential, d.publicKey, d.ctx().appId, Math.floor(d.now() / 1000));
    if (!check.ok) return error(401, check.message);
    if (need !== 'app') return error(403, 'Resource not accessible by integration', 'https://docs.github.com/rest/apps/apps');
    return { kind: 'app' };
  }
  const t = d.world.tokens.get(credential);
  if (t === undefined || t.expiresAt <= d.now()) return error(401, 'Bad credentials');
  if (need !== 'installation') {
    return error(401, 'A JSON web token could not be decoded', 'https://docs.github.com/rest/apps/apps#get-the-authenticated-app');
  }
  return { kind: 'installation', token: credential };
}

export async function handleApi(d: ApiDeps, route: Route, r: ApiRequest): Promise<Reply> {
  return route.handle(d, r);
}
