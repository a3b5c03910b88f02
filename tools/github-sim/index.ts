/**
 * The GitHub simulator: a real HTTP server on loopback that speaks the REST
 * endpoints Flint uses, sends signed `workflow_job` webhooks, hands out JIT
 * runner configs, and lets fake runners take and finish jobs. Test
 * infrastructure only — production code never imports it.
 *
 *   const sim = await startSimulator({ webhook: { url, secret } });
 *   new Octokit({ baseUrl: sim.apiUrl, authStrategy: createAppAuth,
 *                 auth: { appId: sim.appId, privateKey: sim.privateKeyPem, installationId: sim.installationId } });
 *
 * See docs/github-simulator.md for the HTTP control API (`/_sim/...`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultBurst, Faults, FaultStats, IssuedSecrets, RequestLogEntry, Simulator, SimulatorOptions } from './types.ts';
import { seededRandom } from './random.ts';
import { World, isoSeconds } from './world.ts';
import { WebhookSender } from './webhook-sender.ts';
import { publicKeyOf } from './jwt.ts';
import { newRsaParams, type RsaParamsFile } from './jit-config.ts';
import type { RenderCtx } from './render.ts';
import { BadBody, error, parseJsonObject, readBody, type Reply } from './http-util.ts';
import { authenticate, resolveRoute, type ApiDeps } from './rest-api.ts';
import { handleControl, type ControlDeps } from './control-api.ts';
import { webhookEvents } from './events.ts';
import { manifestFlow, type ConvertedApp } from './app-manifest.ts';
import { actionsService, SERVICE_PREFIX } from './actions-service.ts';

export type * from './types.ts';
export { signJwt } from './jwt.ts';
export { decodeJitConfig, type JitConfig } from './jit-config.ts';
export { labelsMatch, DEFAULT_RUNNER_LABELS } from './world.ts';
export type { ActionsServiceControl, ScaleSetStatistics, SimScaleSet } from './actions-service.ts';

const HOUR_MS = 3_600_000;
/** REST API versions GitHub accepts in `X-GitHub-Api-Version` (those the bundled description knows). */
const API_VERSIONS: readonly string[] = ['2022-11-28', '2026-03-10'];
const generateKeyPairAsync = promisify(generateKeyPair);

function requestId(): string {
  const h = (n: number): string => randomBytes(n).toString('hex').toUpperCase();
  return `${h(2)}:${h(2)}:${h(3)}:${h(4)}:${h(4)}`;
}

function sendReply(res: ServerResponse, reply: Reply, base: Record<string, string>): void {
  const headers: Record<string, string> = { ...base, ...(reply.headers ?? {}) };
  let payload = '';
  if (reply.body !== undefined && reply.status !== 204) {
    payload = JSON.stringify(reply.body);
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  res.writeHead(reply.status, headers);
  res.end(payload);
}

/** Whether an If-None-Match header names `etag` (weak comparison, as GitHub: W/ prefixes ignored; `*` matches any). */
function matchesEtag(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const bare = (t: string): string => t.trim().replace(/^W\//, '');
  return (Array.isArray(header) ? header.join(',') : header).split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

/** A REST fault as armed by `faults.set`: counts left, window end, compiled pattern. */
interface Armed { left: number; readonly until: number | undefined; readonly rate: number | undefined; readonly match: RegExp | undefined }

function arm(b: FaultBurst | undefined, now: number): Armed | undefined {
  if (b === undefined) return undefined;
  const { count = 0, forSeconds, rate, match } = b;
  if (!Number.isInteger(count) || count < 0) throw new Error('count must be a whole number ≥ 0');
  if (forSeconds !== undefined && !(forSeconds >= 0)) throw new Error('forSeconds must be ≥ 0');
  if (rate !== undefined && !(rate >= 0 && rate <= 1)) throw new Error('rate must be between 0 and 1');
  // Compiled now, so a bad pattern fails here and not inside a request.
  return { left: count, until: forSeconds === undefined ? undefined : now + forSeconds * 1000, rate, match: match === undefined ? undefined : new RegExp(match) };
}

/** Whether an armed fault hits this request (see FaultBurst); a hit spends a count, a rate draws. */
function fires(a: Armed | undefined, key: string, now: number, random: () => number): boolean {
  if (a === undefined || (a.match !== undefined && !a.match.test(key))) return false;
  if (a.left > 0) {
    a.left--;
    return true;
  }
  if (a.until !== undefined && now >= a.until) return false;
  if (a.rate !== undefined) return random() < a.rate;
  return a.until !== undefined;
}

interface FaultState {
  spec: Faults;
  setAt: number;
  server: Armed | undefined;
  primary: Armed | undefined;
  secondary: Armed | undefined;
  random: () => number;
}

/** What the simulator handed out that must stay secret (Simulator.issuedSecrets). */
function issuedSecrets(world: World, webhooks: WebhookSender): IssuedSecrets {
  return { installationTokens: [...world.tokens.keys()], jitConfigs: [...world.jitConfigs], webhookSecret: webhooks.target?.secret ?? null };
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const org = opts.org ?? 'acme';
  // The App the simulator answers as; an App registered through the manifest flow takes its place (app-manifest.ts).
  let appId = opts.appId ?? 4242;
  let appSlug = `flint-sim-${appId}`;
  const installationId = 31_337_000 + (appId % 1000);
  // PKCS#1, the format of the key GitHub lets an App owner download.
  let privateKeyPem = opts.privateKeyPem ?? (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  let publicKey = publicKeyOf(privateKeyPem);
  let installed = opts.installed ?? true;
  const world = new World(opts.repos ?? ['app', 'web'], opts.runnerGroups ?? ['Default']);
  const webhooks = new WebhookSender({
    hookId: 400_000_000 + appId, appId, target: opts.webhook,
    ...(opts.webhookTimeoutMs === undefined ? {} : { timeoutMs: opts.webhookTimeoutMs }),
  });
  const createdAt = isoSeconds(Date.now());
  let publicUrl = ''; // set once listening; ctx() is only called by request handlers, after that
  const ctx = (): RenderCtx => ({
    api: publicUrl, web: publicUrl, org, orgId: 9_100_001, appId, appSlug, installationId, createdAt,
  });
  const faults: FaultState = { spec: {}, setAt: 0, server: undefined, primary: undefined, secondary: undefined, random: seededRandom(1) };
  const fired = { serverErrors: 0, primaryRateLimits: 0, secondaryRateLimits: 0 };
  const setFaults = (f: Faults): void => {
    const at = Date.now();
    // Armed before anything changes: a bad spec leaves the current faults in place.
    const server = arm(f.serverErrors, at);
    const primary = arm(f.primaryRateLimit, at);
    const secondary = arm(f.secondaryRateLimit, at);
    for (const r of [f.webhooks?.dropRate, f.webhooks?.duplicateRate, f.webhooks?.reorderRate]) {
      if (r !== undefined && !(r >= 0 && r <= 1)) throw new Error('webhook rates must be between 0 and 1');
    }
    Object.assign(faults, { spec: f, setAt: at, server, primary, secondary, random: seededRandom(f.seed ?? 1) });
    webhooks.setFaults(f.webhooks, f.seed ?? 1);
  };
  const faultStats = (): FaultStats => {
    const w = webhooks.stats();
    return { ...fired, webhooksDropped: w.dropped, webhooksDuplicated: w.duplicated, webhooksReordered: w.reordered };
  };
  const log: RequestLogEntry[] = [];
  const buckets = new Map<string, { used: number; resetAt: number }>();
  const now = opts.now ?? ((): number => Date.now());
  const rateLimit = opts.rateLimit ?? 5000;
  let closing = false;

  // Every JIT config of this simulator carries the same runner RSA key: nothing here verifies it,
  // and a fresh 2048-bit key per runner cost ~0.6 s each on a loaded 2-core machine.
  let runnerKey: Promise<RsaParamsFile> | undefined;
  const apiDeps: ApiDeps = {
    world, webhooks, ctx, get publicKey() { return publicKey; }, installed: () => installed, tokenTtlSeconds: opts.tokenTtlSeconds ?? 3600, now,
    runnerKey: () => (runnerKey ??= newRsaParams()),
  };
  const service = actionsService({ world, ctx, now, runnerKey: apiDeps.runnerKey }, {
    ...(opts.messagePollSeconds === undefined ? {} : { messagePollSeconds: opts.messagePollSeconds }),
    ...(opts.sessionExpirySeconds === undefined ? {} : { sessionExpirySeconds: opts.sessionExpirySeconds }),
    ...(opts.adminTokenTtlSeconds === undefined ? {} : { adminTokenTtlSeconds: opts.adminTokenTtlSeconds }),
  });
  const hooks = webhookEvents({ world, webhooks, ctx });
  // Every job change is news for the Actions service's message queues too.
  const events: typeof hooks = {
    jobChanged: (j) => {
      service.jobChanged(j);
      return hooks.jobChanged(j);
    },
    ping: () => hooks.ping(),
  };
  const manifests = manifestFlow({
    ctx, now,
    converted: (app: ConvertedApp) => {
      ({ id: appId, slug: appSlug, privateKeyPem, publicKey } = app);
      webhooks.setAppId(appId);
      if (app.hook !== undefined && app.webhookSecret !== null) webhooks.setTarget(app.hook.active ? { url: app.hook.url, secret: app.webhookSecret } : undefined);
    },
  });
  const controlDeps: ControlDeps = {
    world, webhooks, ctx, events, now,
    setFaults, clearFaults: () => setFaults({}), faultStats,
    requests: () => log,
    issuedSecrets: () => issuedSecrets(world, webhooks),
    setInstalled: (v) => { installed = v; },
    closing: () => closing,
  };

  async function handleRest(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const key = `${method} ${url.pathname}`;
    const base: Record<string, string> = {
      'x-github-request-id': requestId(),
      'x-github-api-version-selected': '2022-11-28',
      'x-github-media-type': 'github.v3; format=json',
    };
    const finish = (reply: Reply, rate?: { limit: number; used: number; resetAt: number; remaining?: number }): void => {
      if (rate !== undefined) {
        base['x-ratelimit-limit'] = String(rate.limit);
        base['x-ratelimit-remaining'] = String(rate.remaining ?? Math.max(0, rate.limit - rate.used));
        base['x-ratelimit-reset'] = String(Math.ceil(rate.resetAt / 1000));
        base['x-ratelimit-used'] = String(rate.used);
        base['x-ratelimit-resource'] = 'core';
      }
      log.push({ method, path: url.pathname, query: url.search, status: reply.status });
      sendReply(res, reply, base);
    };
    const latency = faults.spec.latencyMs ?? 0;
    if (latency > 0) await sleep(latency);

    const asked = req.headers['x-github-api-version'];
    if (typeof asked === 'string') {
      if (!API_VERSIONS.includes(asked)) {
        return finish(error(400, `API version ${asked} is not supported.`, 'https://docs.github.com/rest/about-the-rest-api/api-versions'));
      }
      base['x-github-api-version-selected'] = asked;
    }
    const conversion = manifests.conversion(method, url.pathname);
    // Unauthenticated by GitHub's design: the code is the credential.
    if (conversion !== undefined) return finish(await conversion(), { limit: 60, used: 1, resetAt: now() + HOUR_MS });
    const resolved = resolveRoute(method, url.pathname);
    if (resolved.kind === 'none') return finish(error(404, 'Not Found'), { limit: 60, used: 1, resetAt: now() + HOUR_MS });
    const auth = authenticate(apiDeps, resolved.route.auth, req.headers.authorization);
    if ('status' in auth) {
      // Unauthenticated requests share GitHub's small anonymous budget.
      return finish(auth, { limit: 60, used: 1, resetAt: now() + HOUR_MS });
    }
    const bucketKey = auth.kind === 'app' ? 'app' : auth.token;
    let bucket = buckets.get(bucketKey);
    if (bucket === undefined || bucket.resetAt <= now()) {
      bucket = { used: 0, resetAt: now() + HOUR_MS };
      buckets.set(bucketKey, bucket);
    }
    const who = auth.kind === 'app' ? `app ID ${appId}` : `installation ID ${installationId}`;
    const limited = (status: number, resetAt: number): void => finish(
      error(status, `API rate limit exceeded for ${who}.`, 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api'),
      { limit: rateLimit, used: rateLimit, resetAt, remaining: 0 });
    if (bucket.used >= rateLimit) return limited(403, bucket.resetAt);
    bucket.used++;
    const rate = { limit: rateLimit, used: bucket.used, resetAt: bucket.resetAt };

    const t = now();
    const pr = faults.spec.primaryRateLimit;
    if (pr !== undefined && fires(faults.primary, key, t, faults.random)) {
      fired.primaryRateLimits++;
      // One window for the whole burst, as GitHub's reset is one time per window; a new one once it passed.
      const resetAfter = (pr.resetAfterSeconds ?? 60) * 1000;
      const reset = faults.setAt + resetAfter > t ? faults.setAt + resetAfter : t + resetAfter;
      return limited(pr.status ?? 403, reset);
    }
    const sr = faults.spec.secondaryRateLimit;
    if (sr !== undefined && fires(faults.secondary, key, t, faults.random)) {
      fired.secondaryRateLimits++;
      // GitHub's answer: its message with the request id, the rate headers of the (unspent) primary budget, and retry-after.
      const retryAfter = sr.retryAfterSeconds === undefined ? 1 : sr.retryAfterSeconds;
      return finish(error(sr.status ?? 403,
        `You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ${base['x-github-request-id'] ?? ''}.`,
        'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        retryAfter === null ? undefined : { 'retry-after': String(retryAfter) }), rate);
    }
    const se = faults.spec.serverErrors;
    if (se !== undefined && fires(faults.server, key, t, faults.random)) {
      fired.serverErrors++;
      const status = se.status ?? 502;
      const message = { 500: 'Server Error', 502: 'Server Error', 503: 'Service Unavailable', 504: 'We couldn\'t respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.' }[status];
      return finish({ status, body: { message } }, rate);
    }

    let body: Record<string, unknown> = {};
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      try {
        body = parseJsonObject(await readBody(req));
      } catch (err) {
        if (err instanceof BadBody) return finish(error(400, err.message), rate);
        throw err;
      }
    }
    const reply = await resolved.route.handle(apiDeps, { method, url, params: resolved.params, body, auth });
    if (method === 'GET' && reply.status === 200 && reply.body !== undefined) {
      // As GitHub: every 200 GET carries an ETag of its body; a request whose
      // If-None-Match names the current one is answered 304 with no body,
      // and a 304 does not count against the primary rate limit.
      const etag = `W/"${createHash('sha256').update(JSON.stringify(reply.body)).digest('hex')}"`;
      if (matchesEtag(req.headers['if-none-match'], etag)) {
        bucket.used--;
        return finish({ status: 304, headers: { etag } }, { ...rate, used: bucket.used });
      }
      return finish({ ...reply, headers: { ...(reply.headers ?? {}), etag } }, rate);
    }
    finish(reply, rate);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const work = url.pathname.startsWith('/_sim/actions/') ? service.handleControl(req, res, url)
      : url.pathname.startsWith('/_sim/') ? handleControl(controlDeps, req, res, url)
      : url.pathname.startsWith(SERVICE_PREFIX) ? service.handleService(req, res, url)
      : url.pathname === '/actions/runner-registration' && req.method === 'POST' ? service.handleRegistration(req, res)
      : manifests.isFormPath(url.pathname) ? manifests.handleForm(req, res, url)
        : handleRest(req, res, url);
    work.catch((err: unknown) => {
      if (!res.headersSent) sendReply(res, error(500, `simulator bug: ${String(err)}`), {});
      else res.destroy();
    });
  });
  // Keep-alive sockets from clients would hold close() open: drop them on close.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo; // listening on TCP, so address() is an AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const apiUrl = `http://${host}:${addr.port}`;
  publicUrl = (opts.publicUrl ?? apiUrl).replace(/\/+$/, '');

  return {
    apiUrl, org, installationId,
    get appId() { return appId; },
    get privateKeyPem() { return privateKeyPem; },
    setWebhook: (w) => webhooks.setTarget(w),
    queueJob: async (o) => {
      const j = world.queueJob(o, now());
      await events.jobChanged(j);
      return { jobId: j.id, runId: j.run.id };
    },
    cancelJob: async (jobId) => {
      const j = world.cancelJob(jobId, now());
      if (j === undefined) throw new Error(`job ${jobId} does not exist or is already completed`);
      await events.jobChanged(j);
    },
    loseRunner: async (runnerId) => {
      const lost = world.loseRunner(runnerId, now());
      if (lost === undefined) throw new Error(`runner ${runnerId} does not exist`);
      if (lost.job !== undefined) await events.jobChanged(lost.job);
    },
    ping: () => events.ping(),
    jobs: () => world.snapshotJobs(),
    runners: () => world.snapshotRunners(),
    deliveries: () => [...webhooks.records()],
    faults: { set: setFaults, clear: () => setFaults({}), stats: faultStats },
    requests: () => [...log],
    issuedSecrets: () => issuedSecrets(world, webhooks),
    settled: () => webhooks.settled(),
    actions: service.control,
    close: async () => {
      closing = true;
      service.close();
      await webhooks.settled();
      webhooks.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
