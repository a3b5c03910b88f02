/**
 * The Actions service side of the scale-set protocol (what GitHub's
 * `actions/scaleset` library and ARC's listener talk to): the runner
 * registration exchange on the REST side, then runner groups, scale sets,
 * message sessions, a long-polled message queue, job acquisition, scale-set
 * JIT configs and runner removal under `{simBase}/_services/pipelines/{tenant}/`.
 * Requests are validated as the service does (auth scheme, `api-version`,
 * body shapes); errors come back as `{typeName, message}`. Fault switches
 * reproduce the failure modes listeners meet (docs/github-simulator.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { BadBody, readBody } from './http-util.ts';
import type { GroupRec, JobRec, RenderCtx } from './render.ts';
import { runnerJitConfig, type ApiDeps } from './rest-api.ts';
import { labelsMatch, type World } from './world.ts';
import type { JobConclusion } from './types.ts';

export const SERVICE_PREFIX = '/_services/pipelines/';
const API_VERSION = '6.0-preview';
const WEB_API = 'GitHub.Actions.Runtime.WebApi';

export interface ScaleSetStatistics {
  readonly totalAvailableJobs: number;
  readonly totalAcquiredJobs: number;
  readonly totalAssignedJobs: number;
  readonly totalRunningJobs: number;
  readonly totalRegisteredRunners: number;
  readonly totalBusyRunners: number;
  readonly totalIdleRunners: number;
}

export interface SimScaleSet {
  readonly id: number;
  readonly name: string;
  readonly runnerGroupId: number;
  readonly labels: readonly string[];
  /** The active session's id and owner, if any (stale ones included until they expire). */
  readonly session: { readonly id: string; readonly ownerName: string } | null;
  readonly statistics: ScaleSetStatistics;
  /** The X-ScaleSetMaxCapacity of the latest message poll, null before the first. */
  readonly lastMaxCapacity: number | null;
}

export interface ActionsServiceOptions {
  /** How long a message poll waits for news before 202 (default 50 s, the service's). */
  readonly messagePollSeconds?: number;
  /** A session not polled nor refreshed for this long is stale and replaced by the next create (default 120 s). */
  readonly sessionExpirySeconds?: number;
  /** Lifetime of the admin token from `/actions/runner-registration` (default 3600 s). */
  readonly adminTokenTtlSeconds?: number;
}

/** Fault switches of the Actions service (also under `/_sim/actions/...`). */
export interface ActionsServiceControl {
  scaleSets(): readonly SimScaleSet[];
  /** A session left by a listener that crashed: creates answer 409 until it expires or is deleted. Returns its id. */
  staleSession(scaleSetId: number, ownerName: string): string;
  /** The service dropped the scale set (long inactivity): every call naming it answers 404. */
  removeScaleSet(scaleSetId: number): void;
  /** The service forgot the active session: its queue token answers 401, its refresh and delete 404/400. */
  forgetSession(scaleSetId: number): void;
  /** The active session's queue token expired: polls answer 401 until the session is refreshed. */
  expireQueueToken(scaleSetId: number): void;
  /** Every admin token issued so far stops working (401). */
  expireAdminTokens(): void;
  /**
   * The next `count` acquisitions are taken back: JobAssigned, then
   * JobCompleted `canceled`, and the job is offered again with a new
   * `runnerRequestId` — at most three times per job, as GitHub does.
   */
  reassignNext(count: number): void;
}

interface Item { readonly messageType: 'JobAvailable' | 'JobAssigned' | 'JobStarted' | 'JobCompleted'; readonly [k: string]: unknown }
interface Message { readonly messageId: number; readonly items: readonly Item[] }
interface Session {
  readonly id: string; readonly ownerName: string; queueToken: string; queueTokenValid: boolean; lastSeen: number; forgotten: boolean;
}
interface ScaleSetRec {
  readonly id: number; readonly name: string; readonly group: GroupRec; readonly labels: readonly { name: string; type: string }[];
  readonly createdOn: string; readonly disableUpdate: boolean;
  session: Session | null;
  nextMessageId: number;
  /** Formed and not acknowledged; redelivered until deleted. */
  messages: Message[];
  /** News not yet put into a message. */
  pending: Item[];
  /** Jobs whose JobAvailable (with the current request id) went out. */
  offered: Set<number>;
  /** The X-ScaleSetMaxCapacity of the latest poll. */
  lastMaxCapacity: number | null;
}
interface JobTrack { requestId: number; reassigned: number; startedSent: boolean; completedSent: boolean }

export interface ActionsServiceDeps {
  readonly world: World;
  readonly ctx: () => RenderCtx;
  readonly now: () => number;
  readonly runnerKey: ApiDeps['runnerKey'];
}

interface Reply { readonly status: number; readonly body?: unknown }

const fault = (status: number, typeName: string, message: string): Reply => ({
  status, body: { $id: '1', innerException: null, message, typeName: `${WEB_API}.${typeName}, ${WEB_API}`, typeKey: typeName, errorCode: 0, eventId: 3000 },
});

const RESULTS: Readonly<Record<JobConclusion, string>> = {
  success: 'succeeded', failure: 'failed', cancelled: 'canceled', skipped: 'skipped', timed_out: 'failed', neutral: 'succeeded',
};

function send(res: ServerResponse, r: Reply): void {
  if (r.body === undefined || r.status === 204 || r.status === 202) {
    res.writeHead(r.status);
    res.end();
    return;
  }
  res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', activityid: randomUUID() });
  res.end(JSON.stringify(r.body));
}

/** A JSON body of the given kind; the service refuses anything else with 400. */
async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new BadBody('Content-Type must be application/json');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadBody('the body is not JSON');
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bearer = (h: string | undefined): string | undefined => /^Bearer\s+(\S+)$/i.exec(h?.trim() ?? '')?.[1];

export function actionsService(d: ActionsServiceDeps, opts: ActionsServiceOptions = {}): {
  readonly control: ActionsServiceControl;
  handleRegistration(req: IncomingMessage, res: ServerResponse): Promise<void>;
  handleService(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  /** Told of every job change (queued, started, completed, cancelled). */
  jobChanged(j: JobRec): void;
  close(): void;
} {
  const pollMs = (opts.messagePollSeconds ?? 50) * 1000;
  const expiryMs = (opts.sessionExpirySeconds ?? 120) * 1000;
  const adminTtlMs = (opts.adminTokenTtlSeconds ?? 3600) * 1000;
  const tenant = randomBytes(9).toString('base64url');
  const adminTokens = new Map<string, number>(); // token → expiry (epoch ms)
  const scaleSets = new Map<number, ScaleSetRec>();
  const tracks = new Map<number, JobTrack>();
  const waiters = new Set<() => void>();
  let nextScaleSetId = 1;
  let nextRequestId = 1001;
  let reassignLeft = 0;
  let closed = false;

  const base = (): string => `${d.ctx().api}${SERVICE_PREFIX}${tenant}/`;
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  const track = (j: JobRec): JobTrack => {
    let t = tracks.get(j.id);
    if (t === undefined) {
      t = { requestId: nextRequestId++, reassigned: 0, startedSent: false, completedSent: false };
      tracks.set(j.id, t);
    }
    return t;
  };
  const matches = (s: ScaleSetRec, j: JobRec): boolean =>
    labelsMatch(j.labels, s.labels.map((l) => l.name)) && (j.group === undefined || j.group.toLowerCase() === s.group.name.toLowerCase());
  const available = (s: ScaleSetRec): JobRec[] =>
    [...d.world.jobs.values()].filter((j) => j.status === 'queued' && j.acquiredBy === null && matches(s, j)).sort((a, b) => a.id - b.id);
  const mine = (s: ScaleSetRec): JobRec[] => [...d.world.jobs.values()].filter((j) => j.acquiredBy === s.id);

  function statistics(s: ScaleSetRec): ScaleSetStatistics {
    const own = mine(s);
    const runners = [...d.world.runners.values()].filter((r) => r.scaleSetId === s.id);
    const busy = runners.filter((r) => r.busy).length;
    return {
      totalAvailableJobs: available(s).length,
      totalAcquiredJobs: own.filter((j) => j.status === 'queued').length,
      totalAssignedJobs: own.filter((j) => j.status !== 'completed').length,
      totalRunningJobs: own.filter((j) => j.status === 'in_progress').length,
      totalRegisteredRunners: runners.length, totalBusyRunners: busy, totalIdleRunners: runners.length - busy,
    };
  }

  function jobItem(type: Item['messageType'], j: JobRec, extra: Record<string, unknown> = {}): Item {
    const c = d.ctx();
    return {
      messageType: type, runnerRequestId: track(j).requestId, repositoryName: j.run.repo.name, ownerName: c.org,
      jobId: String(j.id), jobWorkflowRef: `${c.org}/${j.run.repo.name}/.github/workflows/ci.yml@refs/heads/main`,
      jobDisplayName: j.name, workflowRunId: j.run.id, eventName: 'push', requestLabels: [...j.labels],
      queueTime: j.createdAt, scaleSetAssignTime: j.createdAt, runnerAssignTime: j.runner === null ? '0001-01-01T00:00:00Z' : j.startedAt,
      finishTime: j.completedAt ?? '0001-01-01T00:00:00Z', ...extra,
    };
  }

  function renderScaleSet(s: ScaleSetRec): Record<string, unknown> {
    return {
      id: s.id, name: s.name, runnerGroupId: s.group.id, runnerGroupName: s.group.name, labels: s.labels,
      RunnerSetting: { disableUpdate: s.disableUpdate }, createdOn: s.createdOn,
      runnerJitConfigUrl: `${base()}_apis/runtime/runnerscalesets/${s.id}/generatejitconfig`, statistics: statistics(s),
    };
  }

  function renderSession(s: ScaleSetRec, x: Session): Record<string, unknown> {
    return {
      sessionId: x.id, ownerName: x.ownerName, runnerScaleSet: renderScaleSet(s),
      messageQueueUrl: `${base()}_apis/runtime/runnerscalesets/${s.id}/messages?sessionId=${x.id}`,
      messageQueueAccessToken: x.queueToken, statistics: statistics(s),
    };
  }

  const newSession = (ownerName: string): Session => ({
    id: randomUUID(), ownerName, queueToken: randomBytes(32).toString('base64url'), queueTokenValid: true, lastSeen: d.now(), forgotten: false,
  });
  const live = (x: Session | null): x is Session => x !== null && !x.forgotten && d.now() - x.lastSeen < expiryMs;

  /** The next message for a poll, formed from acknowledged-nothing, then news; undefined when there is none. */
  function nextMessage(s: ScaleSetRec, lastMessageId: number, capacity: number): Message | undefined {
    s.messages = s.messages.filter((m) => m.messageId > lastMessageId);
    const unacked = s.messages[0];
    if (unacked !== undefined) return unacked;
    const items = [...s.pending];
    // The service offers no more jobs than the listener says it can still run.
    let room = capacity - mine(s).filter((j) => j.status !== 'completed').length;
    for (const j of available(s)) {
      if (room <= 0) break;
      if (s.offered.has(j.id)) continue;
      s.offered.add(j.id);
      room--;
      items.push(jobItem('JobAvailable', j, { acquireJobUrl: `${base()}_apis/runtime/runnerscalesets/${s.id}/acquirejobs` }));
    }
    if (items.length === 0) return undefined;
    s.pending = [];
    const m = { messageId: s.nextMessageId++, items };
    s.messages.push(m);
    return m;
  }

  function waitForNews(res: ServerResponse, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      res.on('close', done);
    });
  }

  function acquire(s: ScaleSetRec, ids: readonly number[]): number[] {
    const got: number[] = [];
    for (const id of ids) {
      const j = [...d.world.jobs.values()].find((x) => tracks.get(x.id)?.requestId === id);
      if (j === undefined || j.status !== 'queued' || j.acquiredBy !== null || !matches(s, j)) continue;
      const t = track(j);
      j.acquiredBy = s.id;
      got.push(id);
      s.pending.push(jobItem('JobAssigned', j));
      if (reassignLeft > 0 && t.reassigned < 3) {
        // Taken back before any runner started it: the listener sees it completed
        // as canceled and the same job offered again under a new request id.
        reassignLeft--;
        t.reassigned++;
        s.pending.push(jobItem('JobCompleted', j, { result: 'canceled', runnerId: 0, runnerName: '' }));
        j.acquiredBy = null;
        t.requestId = nextRequestId++;
        for (const x of scaleSets.values()) x.offered.delete(j.id);
      }
    }
    wake();
    return got;
  }

  type Route = { method: string; pattern: RegExp; auth: 'admin' | 'queue' | 'either'; handle: (m: Record<string, string>, body: unknown, url: URL, req: IncomingMessage, res: ServerResponse) => Reply | Promise<Reply> };

  const gone = (id: string | undefined): Reply => fault(404, 'RunnerScaleSetNotFoundException', `The runner scale set ${id ?? ''} does not exist.`);
  const badRequest = (message: string): Reply => fault(400, 'ArgumentException', message);

  const routes: Route[] = [
    {
      method: 'GET', pattern: /^_apis\/runtime\/runnergroups\/?$/, auth: 'admin', handle: (_m, _b, url) => {
        const name = url.searchParams.get('groupName');
        const all = d.world.groups.filter((g) => name === null || g.name.toLowerCase() === name.toLowerCase());
        return { status: 200, body: { count: all.length, value: all.map((g) => ({ id: g.id, name: g.name, size: 0, isDefaultGroup: g.isDefault })) } };
      },
    },
    {
      method: 'GET', pattern: /^_apis\/runtime\/runnerscalesets$/, auth: 'admin', handle: (_m, _b, url) => {
        const name = url.searchParams.get('name');
        const group = url.searchParams.get('runnerGroupId');
        const all = [...scaleSets.values()].filter((s) => (name === null || s.name === name) && (group === null || String(s.group.id) === group));
        return { status: 200, body: { count: all.length, value: all.map(renderScaleSet) } };
      },
    },
    {
      method: 'POST', pattern: /^_apis\/runtime\/runnerscalesets$/, auth: 'admin', handle: (_m, body) => {
        if (!isObject(body)) return badRequest('the body must be a runner scale set object');
        const { name, runnerGroupId, labels, RunnerSetting: setting } = body;
        if (typeof name !== 'string' || name.trim() === '') return badRequest('runnerScaleSet.name is required');
        if (typeof runnerGroupId !== 'number' || !Number.isInteger(runnerGroupId)) return badRequest('runnerScaleSet.runnerGroupId must be an integer');
        if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => isObject(l) && typeof l.name === 'string' && l.name !== '' && (l.type === 'System' || l.type === 'User'))) {
          return badRequest('runnerScaleSet.labels must be a non-empty array of {name, type: "System" | "User"}');
        }
        if (setting !== undefined && !isObject(setting)) return badRequest('runnerScaleSet.RunnerSetting must be an object');
        const group = d.world.groups.find((g) => g.id === runnerGroupId);
        if (group === undefined) return fault(404, 'RunnerGroupNotFoundException', `The runner group ${runnerGroupId} does not exist.`);
        if ([...scaleSets.values()].some((s) => s.name === name && s.group.id === group.id)) {
          return fault(409, 'RunnerScaleSetExistsException', `A runner scale set named ${name} already exists in the runner group.`);
        }
        const s: ScaleSetRec = {
          id: nextScaleSetId++, name, group, labels: (labels as Record<string, unknown>[]).map((l) => ({ name: String(l.name), type: String(l.type) })),
          createdOn: new Date(d.now()).toISOString(), disableUpdate: isObject(setting) && setting.disableUpdate === true,
          session: null, nextMessageId: 1, messages: [], pending: [], offered: new Set(), lastMaxCapacity: null,
        };
        scaleSets.set(s.id, s);
        wake();
        return { status: 200, body: renderScaleSet(s) };
      },
    },
    {
      method: 'GET', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)$/, auth: 'admin', handle: (m) => {
        const s = scaleSets.get(Number(m.id));
        return s === undefined ? gone(m.id) : { status: 200, body: renderScaleSet(s) };
      },
    },
    {
      method: 'DELETE', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)$/, auth: 'admin', handle: (m) => {
        if (!scaleSets.delete(Number(m.id))) return gone(m.id);
        wake();
        return { status: 204 };
      },
    },
    {
      method: 'POST', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/sessions$/, auth: 'admin', handle: (m, body) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        if (!isObject(body) || typeof body.ownerName !== 'string' || body.ownerName === '') return badRequest('session.ownerName is required');
        if (live(s.session)) return fault(409, 'RunnerScaleSetSessionConflictException', `The actions runner scaleset ${s.name} already has an active session.`);
        s.session = newSession(body.ownerName);
        // A new listener learns again of every job still waiting for a scale set.
        s.offered.clear();
        return { status: 200, body: renderSession(s, s.session) };
      },
    },
    {
      method: 'PATCH', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/sessions\/(?<sid>[^/]+)$/, auth: 'admin', handle: (m) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        const x = s.session;
        if (x === null || x.id !== m.sid || x.forgotten || !live(x)) {
          return fault(404, 'RunnerAdminException', `runner referenced a session ID that doesn't exist: ${m.sid ?? ''}`);
        }
        x.queueToken = randomBytes(32).toString('base64url');
        x.queueTokenValid = true;
        x.lastSeen = d.now();
        return { status: 200, body: renderSession(s, x) };
      },
    },
    {
      method: 'DELETE', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/sessions\/(?<sid>[^/]+)$/, auth: 'admin', handle: (m) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        if (s.session === null || s.session.id !== m.sid || s.session.forgotten) {
          return fault(400, 'RunnerScaleSetSessionExpiredException', `The session identifier ${m.sid ?? ''} is not valid.`);
        }
        s.session = null;
        wake();
        return { status: 204 };
      },
    },
    {
      method: 'GET', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/messages$/, auth: 'queue', handle: async (m, _b, url, req, res) => {
        const capRaw = req.headers['x-scalesetmaxcapacity'];
        const capacity = Number(capRaw);
        if (typeof capRaw !== 'string' || !/^\d+$/.test(capRaw.trim())) return badRequest('X-ScaleSetMaxCapacity must be a whole number');
        const lastRaw = url.searchParams.get('lastMessageId') ?? '0';
        if (!/^\d+$/.test(lastRaw)) return badRequest('lastMessageId must be a whole number');
        const deadline = Date.now() + pollMs;
        for (;;) {
          const s = scaleSets.get(Number(m.id));
          if (s === undefined) return gone(m.id);
          const x = s.session;
          if (x === null || x.id !== url.searchParams.get('sessionId') || x.forgotten || !x.queueTokenValid) return { status: 401 };
          x.lastSeen = d.now();
          s.lastMaxCapacity = capacity;
          const msg = nextMessage(s, Number(lastRaw), capacity);
          if (msg !== undefined) {
            return { status: 200, body: { messageId: msg.messageId, messageType: 'RunnerScaleSetJobMessages', body: JSON.stringify(msg.items), statistics: statistics(s) } };
          }
          const left = deadline - Date.now();
          if (left <= 0 || closed || res.destroyed) return { status: 202 };
          await waitForNews(res, left);
        }
      },
    },
    {
      method: 'DELETE', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/messages\/(?<mid>\d+)$/, auth: 'queue', handle: (m) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        s.messages = s.messages.filter((x) => x.messageId !== Number(m.mid));
        return { status: 204 };
      },
    },
    {
      method: 'POST', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/acquirejobs$/, auth: 'either', handle: (m, body) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        if (!Array.isArray(body) || !body.every((v) => Number.isInteger(v))) return badRequest('the body must be a JSON array of runner request ids');
        const got = acquire(s, body as number[]);
        return { status: 200, body: { count: got.length, value: got } };
      },
    },
    {
      method: 'POST', pattern: /^_apis\/runtime\/runnerscalesets\/(?<id>\d+)\/generatejitconfig$/, auth: 'admin', handle: async (m, body) => {
        const s = scaleSets.get(Number(m.id));
        if (s === undefined) return gone(m.id);
        if (!isObject(body) || typeof body.name !== 'string' || body.name.trim() === '' || body.name.length > 64) return badRequest('runnerSetting.name is required (at most 64 characters)');
        if (body.workFolder !== undefined && typeof body.workFolder !== 'string') return badRequest('runnerSetting.workFolder must be a string');
        const name = body.name;
        if ([...d.world.runners.values()].some((r) => r.name === name && r.repo === undefined)) {
          return fault(409, 'AgentExistsException', `A runner with the name ${name} already exists.`);
        }
        const runner = d.world.registerRunner({
          name, labels: s.labels.map((l) => l.name), group: s.group, repo: undefined, workFolder: typeof body.workFolder === 'string' ? body.workFolder : '_work', scaleSetId: s.id,
        });
        const encoded = await runnerJitConfig(d, runner, s.group, undefined);
        wake();
        return { status: 200, body: { runner: { id: runner.id, name: runner.name, runnerScaleSetId: s.id }, encodedJITConfig: encoded } };
      },
    },
    {
      method: 'GET', pattern: /^_apis\/distributedtask\/pools\/0\/agents\/(?<aid>\d+)$/, auth: 'admin', handle: (m) => {
        const r = d.world.runners.get(Number(m.aid));
        if (r === undefined) return fault(404, 'AgentNotFoundException', `No runner with id ${m.aid ?? ''}.`);
        return { status: 200, body: { id: r.id, name: r.name, runnerScaleSetId: r.scaleSetId ?? 0 } };
      },
    },
    {
      method: 'DELETE', pattern: /^_apis\/distributedtask\/pools\/0\/agents\/(?<aid>\d+)$/, auth: 'admin', handle: (m) => {
        const r = d.world.runners.get(Number(m.aid));
        if (r === undefined) return fault(404, 'AgentNotFoundException', `No runner with id ${m.aid ?? ''}.`);
        if (r.busy) return fault(400, 'JobStillRunningException', `The runner ${r.name} is running a job and cannot be removed.`);
        d.world.removeRunner(r);
        wake();
        return { status: 204 };
      },
    },
  ];

  function queueTokenOk(scaleSetId: string | undefined, token: string): boolean {
    const s = scaleSets.get(Number(scaleSetId));
    return s?.session !== null && s?.session !== undefined && s.session.queueToken === token;
  }

  async function handleService(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const rest = url.pathname.slice(SERVICE_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash === -1 || rest.slice(0, slash) !== tenant) return send(res, { status: 404 });
    const path = rest.slice(slash + 1);
    let route: Route | undefined;
    let params: Record<string, string> = {};
    for (const r of routes) {
      const m = r.pattern.exec(path);
      if (m === null || r.method !== method) continue;
      route = r;
      params = { ...(m.groups ?? {}) };
      break;
    }
    if (route === undefined) return send(res, fault(404, 'VssResourceNotFoundException', `No route for ${method} ${path}`));
    // api-version rides in the query; the message queue also takes it in Accept,
    // and the service does not ask for it on a message acknowledgement.
    const inQuery = url.searchParams.get('api-version');
    const inAccept = /api-version=([^;,\s]+)/.exec(req.headers.accept ?? '')?.[1];
    const version = inQuery ?? (route.auth === 'queue' ? inAccept : undefined);
    if (!(route.auth === 'queue' && method === 'DELETE') && version !== API_VERSION) {
      return send(res, fault(400, 'VssVersionNotSpecifiedException', `api-version ${API_VERSION} must be given (got ${version ?? 'none'})`));
    }
    // A scale set that is gone is gone for every credential (a listener's queue token included).
    if (params.id !== undefined && !scaleSets.has(Number(params.id))) return send(res, gone(params.id));
    const token = bearer(req.headers.authorization);
    const adminOk = token !== undefined && (adminTokens.get(token) ?? 0) > d.now();
    const queueOk = token !== undefined && queueTokenOk(params.id, token);
    const allowed = route.auth === 'admin' ? adminOk : route.auth === 'queue' ? queueOk : adminOk || queueOk;
    if (!allowed) {
      // A queue token the service no longer knows (forgotten session, expired token) is a plain 401 too.
      return send(res, route.auth === 'queue' ? { status: 401 } : fault(401, 'VssUnauthorizedException', 'The access token is missing, invalid or expired.'));
    }
    let body: unknown;
    if (method === 'POST' || method === 'PATCH') {
      try {
        body = method === 'PATCH' && req.headers['content-length'] === '0' ? undefined : await jsonBody(req);
      } catch (err) {
        if (err instanceof BadBody) return send(res, badRequest(err.message));
        throw err;
      }
    }
    send(res, await route.handle(params, body, url, req, res));
  }

  async function handleRegistration(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^RemoteAuth\s+(\S+)$/.exec(req.headers.authorization?.trim() ?? '');
    const t = m?.[1] === undefined ? undefined : d.world.registrationTokens.get(m[1]);
    if (t === undefined || t.expiresAt <= d.now()) return send(res, { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } });
    let body: unknown;
    try {
      body = await jsonBody(req);
    } catch (err) {
      if (err instanceof BadBody) return send(res, { status: 400, body: { message: err.message } });
      throw err;
    }
    const c = d.ctx();
    if (!isObject(body) || body.runner_event !== 'register' || typeof body.url !== 'string') {
      return send(res, { status: 400, body: { message: 'body must be {"url": "<organization URL>", "runner_event": "register"}' } });
    }
    if (body.url.replace(/\/+$/, '').toLowerCase() !== `${c.web}/${c.org}`.toLowerCase()) return send(res, { status: 404, body: { message: 'Not Found' } });
    const exp = d.now() + adminTtlMs;
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    // Shaped as the service's admin JWT; nothing checks the signature, the simulator looks tokens up.
    const token = `${b64({ typ: 'JWT', alg: 'RS256' })}.${b64({ sub: 'scaleset', exp: Math.floor(exp / 1000), nbf: Math.floor(d.now() / 1000) })}.${randomBytes(32).toString('base64url')}`;
    adminTokens.set(token, Math.floor(exp / 1000) * 1000);
    send(res, { status: 200, body: { url: base(), token, token_schema: 'OAuthAccessToken' } });
  }

  const control: ActionsServiceControl = {
    scaleSets: () => [...scaleSets.values()].map((s) => ({
      id: s.id, name: s.name, runnerGroupId: s.group.id, labels: s.labels.map((l) => l.name),
      session: s.session === null || s.session.forgotten ? null : { id: s.session.id, ownerName: s.session.ownerName }, statistics: statistics(s),
      lastMaxCapacity: s.lastMaxCapacity,
    })),
    staleSession: (id, ownerName) => {
      const s = scaleSets.get(id);
      if (s === undefined) throw new Error(`no scale set ${id}`);
      s.session = newSession(ownerName);
      return s.session.id;
    },
    removeScaleSet: (id) => {
      if (!scaleSets.delete(id)) throw new Error(`no scale set ${id}`);
      for (const j of d.world.jobs.values()) if (j.acquiredBy === id && j.status === 'queued') j.acquiredBy = null;
      wake();
    },
    forgetSession: (id) => {
      const x = scaleSets.get(id)?.session;
      if (x === null || x === undefined) throw new Error(`scale set ${id} has no session`);
      x.forgotten = true;
      wake();
    },
    expireQueueToken: (id) => {
      const x = scaleSets.get(id)?.session;
      if (x === null || x === undefined) throw new Error(`scale set ${id} has no session`);
      x.queueTokenValid = false;
      wake();
    },
    expireAdminTokens: () => adminTokens.clear(),
    reassignNext: (count) => {
      if (!Number.isInteger(count) || count < 0) throw new Error('count must be a whole number ≥ 0');
      reassignLeft = count;
    },
  };

  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const m = /^\/_sim\/actions\/scalesets(?:\/(\d+)(?:\/([a-z-]+))?)?$/.exec(url.pathname);
    const ok = (body?: unknown): void => send(res, body === undefined ? { status: 204 } : { status: 200, body });
    try {
      if (url.pathname === '/_sim/actions/reassign' && method === 'POST') {
        const body = await jsonBody(req);
        control.reassignNext(isObject(body) && typeof body.count === 'number' ? body.count : -1);
        return ok();
      }
      if (url.pathname === '/_sim/actions/expire-admin-tokens' && method === 'POST') return ok(void control.expireAdminTokens());
      if (m !== null) {
        const id = Number(m[1]);
        if (m[1] === undefined && method === 'GET') return ok(control.scaleSets());
        if (m[2] === undefined && method === 'DELETE') return ok(void control.removeScaleSet(id));
        if (m[2] === 'stale-session' && method === 'POST') {
          const body = await jsonBody(req);
          return ok({ sessionId: control.staleSession(id, isObject(body) && typeof body.ownerName === 'string' ? body.ownerName : 'crashed-listener') });
        }
        if (m[2] === 'forget-session' && method === 'POST') return ok(void control.forgetSession(id));
        if (m[2] === 'expire-queue-token' && method === 'POST') return ok(void control.expireQueueToken(id));
      }
    } catch (err) {
      return send(res, { status: err instanceof BadBody ? 400 : 422, body: { message: (err as Error).message } }); // control throws Error only
    }
    send(res, { status: 404, body: { message: `no control endpoint ${method} ${url.pathname}` } });
  }

  function jobChanged(j: JobRec): void {
    const s = j.acquiredBy === null ? undefined : scaleSets.get(j.acquiredBy);
    if (s !== undefined) {
      const t = track(j);
      if (j.status !== 'queued' && j.runner !== null && !t.startedSent) {
        t.startedSent = true;
        s.pending.push(jobItem('JobStarted', j, { runnerId: j.runner.id, runnerName: j.runner.name }));
      }
      if (j.status === 'completed' && !t.completedSent) {
        t.completedSent = true;
        s.pending.push(jobItem('JobCompleted', j, { result: RESULTS[j.conclusion ?? 'failure'], runnerId: j.runner?.id ?? 0, runnerName: j.runner?.name ?? '' }));
      }
    }
    wake();
  }

  return {
    control, handleRegistration, handleService, handleControl, jobChanged,
    close: () => {
      closed = true;
      wake();
    },
  };
}
