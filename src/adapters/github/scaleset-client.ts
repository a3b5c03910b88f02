/**
 * Flint's client of the scale-set protocol (docs/scale-sets.md): no public
 * webhook; a listener long-polls a message queue of the Actions service.
 *
 *   registration token (REST, installation token)
 *     → POST /actions/runner-registration (RemoteAuth) → service URL + admin JWT
 *     → runner group, scale set (get or create), message session
 *     → poll messages, acknowledge, acquire jobs, JIT configs, remove runners
 *
 * The admin JWT is renewed before its `exp` and once more on a 401. A
 * `MessageSession` heals itself where the service's failures allow: an
 * expired queue token is refreshed, a session the service forgot is
 * created again, a scale set it removed is created again (its id changes:
 * read `scaleSetId` after each call). A session conflict (409) is retried
 * with back-off and then — only when the caller names a session id it
 * recorded as its own — that stale session is deleted and created anew;
 * Flint never deletes a session it cannot prove it owns, since that would
 * cut off a live listener.
 *
 * Every answer is parsed here into typed values; errors are FlintErrors
 * with catalogue codes. Time, sleeping and timers are injected; no timer
 * is left armed when a call returns. Secrets (installation, registration,
 * admin and queue tokens) never appear in errors or details.
 */
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { setTimeout as wait } from 'node:timers/promises';
import { backoffMs } from './wait-policy.ts';
import { toFlintError } from './errors.ts';
import type {
  JitRunner, JobMessage, MessageSession, OpenSessionOptions, ScaleSet, ScaleSetClient, ScaleSetSpec, ScaleSetStatistics,
} from '../../daemon/ports/scaleset-service.ts';

const API_VERSION = '6.0-preview';
const SCALE_SETS = '_apis/runtime/runnerscalesets';

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface ScaleSetClientOptions {
  /** GitHub's REST base (`github.apiUrl`). */
  readonly apiUrl: string;
  /** GitHub's web base (`https://github.com`, or the GHES server): the registration names `{githubUrl}/{organization}`. */
  readonly githubUrl: string;
  readonly organization: string;
  /** A valid installation token (the installation token source's `get`). */
  readonly installationToken: () => Promise<string>;
  readonly now?: () => number;
  /** Waits `ms`; rejects when `signal` aborts. Default: timers/promises. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly timers?: Timers;
  readonly random?: () => number;
  readonly fetch?: typeof fetch;
  /** Renew the admin token this long before its exp (capped at half its lifetime). Default 5 minutes. */
  readonly adminRenewMarginMs?: number;
  /** Give up on a call that has not answered (default 30 s); a message poll gets `pollTimeoutMs` (default 70 s, the service holds it ~50 s). */
  readonly requestTimeoutMs?: number;
  readonly pollTimeoutMs?: number;
  /** Back-off on a session conflict: `retries` waits (default 4) from `baseMs` (5 s) doubling up to `maxMs` (60 s). */
  readonly sessionConflict?: { readonly retries?: number; readonly baseMs?: number; readonly maxMs?: number };
  /** Told what the client did to recover (no secrets). */
  readonly onEvent?: (e: ScaleSetClientEvent) => void;
}

export type ScaleSetClientEvent =
  | { readonly kind: 'admin-token-renewed'; readonly reason: 'none' | 'expiring' | 'rejected'; readonly expiresAt: string }
  | { readonly kind: 'session-conflict'; readonly scaleSetId: number; readonly attempt: number; readonly waitMs: number }
  | { readonly kind: 'stale-session-deleted'; readonly scaleSetId: number; readonly sessionId: string }
  | { readonly kind: 'session-refreshed'; readonly scaleSetId: number }
  | { readonly kind: 'session-recreated'; readonly scaleSetId: number }
  | { readonly kind: 'scale-set-recreated'; readonly oldId: number; readonly newId: number };

export type {
  ScaleSetSpec, ScaleSet, ScaleSetStatistics, JobMessage, PollResult, JitRunner, MessageSession, OpenSessionOptions, ScaleSetClient,
} from '../../daemon/ports/scaleset-service.ts';

interface Answer { readonly status: number; readonly json: unknown; readonly typeName: string; readonly headers: Readonly<Record<string, string>> }
interface Admin { readonly url: string; readonly token: string; readonly expiresAt: number; readonly renewAt: number }
interface RawSession { readonly sessionId: string; readonly queueUrl: string; readonly queueToken: string; readonly statistics: ScaleSetStatistics }

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function protocol(operation: string, what: string): FlintError {
  return new FlintError('FLINT_ERR_SCALESET_PROTOCOL', `${operation}: ${what}`, { details: { operation } });
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN);

function parseStatistics(v: unknown, operation: string): ScaleSetStatistics {
  if (!isObj(v)) throw protocol(operation, 'the answer has no statistics');
  const keys = ['totalAvailableJobs', 'totalAcquiredJobs', 'totalAssignedJobs', 'totalRunningJobs', 'totalRegisteredRunners', 'totalBusyRunners', 'totalIdleRunners'] as const;
  const out: Record<string, number> = {};
  for (const k of keys) {
    // The service leaves zero counts out in some answers.
    const n = v[k] === undefined ? 0 : num(v[k]);
    if (!Number.isInteger(n) || n < 0) throw protocol(operation, `statistics.${k} is not a count`);
    out[k] = n;
  }
  return out as unknown as ScaleSetStatistics; // every key of the type was set just above
}

function parseScaleSet(v: unknown, operation: string): ScaleSet {
  if (!isObj(v) || !Number.isInteger(v.id) || typeof v.name !== 'string' || !Number.isInteger(v.runnerGroupId)) throw protocol(operation, 'the answer is not a scale set');
  const labels = Array.isArray(v.labels) ? v.labels.flatMap((l) => (isObj(l) && typeof l.name === 'string' ? [l.name] : [])) : [];
  return { id: num(v.id), name: v.name, runnerGroupId: num(v.runnerGroupId), labels };
}

function parseSession(v: unknown, operation: string): RawSession {
  if (!isObj(v) || typeof v.sessionId !== 'string' || typeof v.messageQueueUrl !== 'string' || typeof v.messageQueueAccessToken !== 'string') {
    throw protocol(operation, 'the answer is not a message session');
  }
  return { sessionId: v.sessionId, queueUrl: v.messageQueueUrl, queueToken: v.messageQueueAccessToken, statistics: parseStatistics(v.statistics ?? {}, operation) };
}

const JOB_TYPES = new Set(['JobAvailable', 'JobAssigned', 'JobStarted', 'JobCompleted']);

/** One job message, or undefined for a type Flint does not know (newer services add some). */
function parseJob(v: unknown, operation: string): JobMessage | undefined {
  if (!isObj(v) || typeof v.messageType !== 'string') throw protocol(operation, 'a job message has no messageType');
  if (!JOB_TYPES.has(v.messageType)) return undefined;
  if (!Number.isInteger(v.runnerRequestId)) throw protocol(operation, `${v.messageType} has no runnerRequestId`);
  const base: Omit<JobMessage & { type: 'JobAvailable' }, 'type'> = {
    runnerRequestId: num(v.runnerRequestId), jobId: String(v.jobId ?? ''), repositoryName: String(v.repositoryName ?? ''),
    ownerName: String(v.ownerName ?? ''), workflowRunId: Number.isInteger(v.workflowRunId) ? num(v.workflowRunId) : 0,
    jobDisplayName: String(v.jobDisplayName ?? ''),
    requestLabels: Array.isArray(v.requestLabels) ? v.requestLabels.filter((l): l is string => typeof l === 'string') : [],
  };
  const runner = { runnerId: Number.isInteger(v.runnerId) ? num(v.runnerId) : 0, runnerName: String(v.runnerName ?? '') };
  switch (v.messageType) {
    case 'JobAvailable': return { type: 'JobAvailable', ...base };
    case 'JobAssigned': return { type: 'JobAssigned', ...base };
    case 'JobStarted': return { type: 'JobStarted', ...base, ...runner };
    default: return { type: 'JobCompleted', ...base, ...runner, result: String(v.result ?? '') };
  }
}

/** The FlintError for a service answer that is not the expected one. */
export function serviceError(a: { status: number; typeName: string; message: string }, operation: string): FlintError {
  const details = { operation, status: a.status, typeName: a.typeName || undefined };
  const said = a.message === '' ? `${a.status}` : `${a.status} ${a.typeName === '' ? '' : `${a.typeName.replace(/,.*$/, '').replace(/^.*\./, '')}: `}${a.message}`;
  const msg = `${operation}: the Actions service answered ${said}`;
  const t = a.typeName;
  if (t.includes('AgentExistsException')) return new FlintError('FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN', msg, { details });
  if (t.includes('JobStillRunningException')) return new FlintError('FLINT_ERR_GITHUB_RUNNER_BUSY', msg, { details });
  if (t.includes('RunnerScaleSetSessionConflictException')) return new FlintError('FLINT_ERR_SCALESET_SESSION_CONFLICT', msg, { details });
  if (t.includes('RunnerScaleSetNotFoundException')) return new FlintError('FLINT_ERR_SCALESET_NOT_FOUND', msg, { details });
  if (t.includes('RunnerScaleSetSessionExpiredException')) return new FlintError('FLINT_ERR_SCALESET_SESSION_GONE', msg, { details });
  if (a.status === 401) return new FlintError('FLINT_ERR_GITHUB_AUTH_FAILED', msg, { details });
  if (a.status === 403) return new FlintError('FLINT_ERR_GITHUB_PERMISSION_DENIED', msg, { details });
  if (a.status >= 500) return new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', msg, { details });
  return new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', msg, { details });
}

function errorOf(a: Answer, operation: string): FlintError {
  const message = isObj(a.json) && typeof a.json.message === 'string' ? a.json.message : '';
  return serviceError({ status: a.status, typeName: a.typeName, message }, operation);
}

/** The `exp` claim of a JWT (epoch ms); nothing here verifies it — the service does. */
function jwtExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isObj(claims) && typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const defaultTimers: Timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };

export function createScaleSetClient(o: ScaleSetClientOptions): ScaleSetClient {
  const now = o.now ?? Date.now;
  const timers = o.timers ?? defaultTimers;
  const sleep = o.sleep ?? (async (ms: number, signal?: AbortSignal) => {
    await wait(ms, undefined, signal === undefined ? {} : { signal });
  });
  const random = o.random ?? Math.random;
  const doFetch = o.fetch ?? fetch;
  const margin = o.adminRenewMarginMs ?? 5 * 60_000;
  const requestTimeout = o.requestTimeoutMs ?? 30_000;
  const pollTimeout = o.pollTimeoutMs ?? 70_000;
  const conflictRetries = o.sessionConflict?.retries ?? 4;
  const conflictBase = o.sessionConflict?.baseMs ?? 5000;
  const conflictMax = o.sessionConflict?.maxMs ?? 60_000;
  const emit = (e: ScaleSetClientEvent): void => o.onEvent?.(e);
  const apiBase = o.apiUrl.replace(/\/+$/, '');

  /** One HTTP exchange, bounded by a timer that is cleared before returning. */
  async function send(operation: string, url: string, init: { method: string; auth: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number }): Promise<Answer> {
    const ctl = new AbortController();
    const timer = timers.set(() => ctl.abort(), init.timeoutMs ?? requestTimeout);
    const onAbort = (): void => ctl.abort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (init.signal?.aborted === true) throw init.signal.reason;
      const res = await doFetch(url, {
        method: init.method, signal: ctl.signal,
        headers: { authorization: init.auth, accept: 'application/json', ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      const typeName = isObj(json) && typeof json.typeName === 'string' ? json.typeName : '';
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        headers[k] = v;
      });
      return { status: res.status, json, typeName, headers };
    } catch (err) {
      if (init.signal?.aborted === true) throw init.signal.reason;
      const why = ctl.signal.aborted ? `no answer within ${init.timeoutMs ?? requestTimeout} ms` : (err instanceof Error ? err.message : String(err));
      throw new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', `${operation}: could not reach the service: ${why}`, { details: { operation }, cause: err });
    } finally {
      timers.clear(timer);
      init.signal?.removeEventListener('abort', onAbort);
    }
  }

  // ---- registration: installation token → registration token → service URL + admin JWT
  let admin: Admin | undefined;
  let pending: Promise<Admin> | undefined;

  async function register(reason: 'none' | 'expiring' | 'rejected'): Promise<Admin> {
    const op = `register with the Actions service for organization ${o.organization}`;
    const installation = await o.installationToken();
    const reg = await send(op, `${apiBase}/orgs/${encodeURIComponent(o.organization)}/actions/runners/registration-token`, {
      method: 'POST', auth: `Bearer ${installation}`, headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
    });
    if (reg.status !== 201 || !isObj(reg.json) || typeof reg.json.token !== 'string') {
      if (reg.status === 401 || reg.status === 403 || reg.status === 429 || reg.status >= 500) {
        // A REST answer: read as the REST client reads it (rate limits by their headers).
        const message = isObj(reg.json) && typeof reg.json.message === 'string' ? reg.json.message : `HTTP ${reg.status}`;
        throw toFlintError({ status: reg.status, message, response: { headers: reg.headers } }, `${op} (registration token)`);
      }
      throw new FlintError('FLINT_ERR_SCALESET_REGISTRATION_FAILED', `${op}: GitHub answered ${reg.status} to the registration-token request`, { details: { operation: op, status: reg.status } });
    }
    const conn = await send(op, `${apiBase}/actions/runner-registration`, {
      method: 'POST', auth: `RemoteAuth ${reg.json.token}`, body: { url: `${o.githubUrl.replace(/\/+$/, '')}/${o.organization}`, runner_event: 'register' },
    });
    if (conn.status < 200 || conn.status > 299) {
      if (conn.status >= 500) throw errorOf(conn, op);
      throw new FlintError('FLINT_ERR_SCALESET_REGISTRATION_FAILED', `${op}: GitHub answered ${conn.status} to the runner registration`, { details: { operation: op, status: conn.status } });
    }
    if (!isObj(conn.json) || typeof conn.json.url !== 'string' || conn.json.url === '' || typeof conn.json.token !== 'string' || conn.json.token === '') {
      throw protocol(op, 'the registration answer lacks url or token');
    }
    const t = now();
    const exp = jwtExpiry(conn.json.token);
    if (exp === undefined) throw protocol(op, 'the admin token carries no exp');
    const lifetime = Math.max(0, exp - t);
    const url = conn.json.url.endsWith('/') ? conn.json.url : `${conn.json.url}/`;
    const a = { url, token: conn.json.token, expiresAt: exp, renewAt: exp - Math.min(margin, lifetime / 2) };
    emit({ kind: 'admin-token-renewed', reason, expiresAt: new Date(exp).toISOString() });
    return a;
  }

  async function adminConn(force: boolean): Promise<Admin> {
    if (!force && admin !== undefined && now() < admin.renewAt) return admin;
    const reason = force ? 'rejected' : admin === undefined ? 'none' : 'expiring';
    // One registration at a time: concurrent callers share it.
    pending ??= register(reason).finally(() => {
      pending = undefined;
    });
    admin = await pending;
    return admin;
  }

  /** An admin call (Bearer admin token, api-version in the query); renews the token once on a 401. */
  async function adminCall(operation: string, method: string, path: string, body?: unknown): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const a = await adminConn(attempt > 0);
      const u = new URL(path, a.url);
      u.searchParams.set('api-version', API_VERSION);
      const res = await send(operation, u.toString(), { method, auth: `Bearer ${a.token}`, body });
      if (res.status !== 401 || attempt > 0) return res;
    }
  }

  async function runnerGroupId(name: string): Promise<number> {
    const op = `find runner group ${name}`;
    const res = await adminCall(op, 'GET', `_apis/runtime/runnergroups/?groupName=${encodeURIComponent(name)}`);
    if (res.status !== 200) throw errorOf(res, op);
    const value = isObj(res.json) && Array.isArray(res.json.value) ? res.json.value : undefined;
    if (value === undefined) throw protocol(op, 'the answer is not a list of runner groups');
    const g = value.find((x) => isObj(x) && typeof x.name === 'string' && x.name.toLowerCase() === name.toLowerCase());
    if (!isObj(g) || !Number.isInteger(g.id)) {
      throw new FlintError('FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND', `${op}: the organization ${o.organization} has no runner group named ${name}`, { details: { operation: op, group: name } });
    }
    return num(g.id);
  }

  async function ensureScaleSet(spec: ScaleSetSpec, retried = false): Promise<ScaleSet> {
    const groupId = await runnerGroupId(spec.runnerGroup);
    const op = `find scale set ${spec.name}`;
    const found = await adminCall(op, 'GET', `${SCALE_SETS}?runnerGroupId=${groupId}&name=${encodeURIComponent(spec.name)}`);
    if (found.status !== 200) throw errorOf(found, op);
    const list = isObj(found.json) && Array.isArray(found.json.value) ? found.json.value : undefined;
    if (list === undefined) throw protocol(op, 'the answer is not a list of scale sets');
    if (list.length > 0) return parseScaleSet(list[0], op);
    const cop = `create scale set ${spec.name}`;
    const created = await adminCall(cop, 'POST', SCALE_SETS, {
      name: spec.name, runnerGroupId: groupId, labels: spec.labels.map((name) => ({ name, type: 'System' })), RunnerSetting: { disableUpdate: true },
    });
    if (created.status === 200 || created.status === 201) return parseScaleSet(created.json, cop);
    if (created.status === 409 && !retried) {
      // Another listener created it between the lookup and the create: take that one.
      return ensureScaleSet(spec, true);
    }
    throw errorOf(created, cop);
  }

  async function getScaleSet(id: number): Promise<ScaleSet | undefined> {
    const op = `read scale set ${id}`;
    const res = await adminCall(op, 'GET', `${SCALE_SETS}/${id}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw errorOf(res, op);
    return parseScaleSet(res.json, op);
  }

  async function deleteScaleSet(id: number): Promise<void> {
    const op = `delete scale set ${id}`;
    const res = await adminCall(op, 'DELETE', `${SCALE_SETS}/${id}`);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw errorOf(res, op);
  }

  async function deleteSession(scaleSetId: number, sessionId: string): Promise<void> {
    const op = `delete session of scale set ${scaleSetId}`;
    const res = await adminCall(op, 'DELETE', `${SCALE_SETS}/${scaleSetId}/sessions/${encodeURIComponent(sessionId)}`);
    if (res.status === 204 || res.status === 200) return;
    const e = errorOf(res, op);
    // Already gone (expired, forgotten): what deleting wanted.
    if (res.status === 404 || e.code === 'FLINT_ERR_SCALESET_SESSION_GONE') return;
    throw e;
  }

  /** Creates the session; on 409 backs off, then deletes `ownStale` (ours) and tries once more. */
  async function createSession(scaleSetId: number, ownerName: string, ownStale: string | undefined, signal: AbortSignal | undefined): Promise<RawSession> {
    const op = `open the message session of scale set ${scaleSetId}`;
    const attempt = async (): Promise<RawSession | FlintError> => {
      const res = await adminCall(op, 'POST', `${SCALE_SETS}/${scaleSetId}/sessions`, { ownerName });
      if (res.status === 200 || res.status === 201) return parseSession(res.json, op);
      const e = errorOf(res, op);
      if (e.code === 'FLINT_ERR_SCALESET_SESSION_CONFLICT') return e;
      throw e;
    };
    let last: FlintError | undefined;
    for (let n = 0; n <= conflictRetries; n++) {
      const r = await attempt();
      if (!isFlintError(r)) return r;
      last = r;
      if (n === conflictRetries) break;
      const waitMs = backoffMs(n, conflictBase, conflictMax, random);
      emit({ kind: 'session-conflict', scaleSetId, attempt: n + 1, waitMs });
      await sleep(waitMs, signal);
    }
    if (ownStale !== undefined) {
      await deleteSession(scaleSetId, ownStale);
      emit({ kind: 'stale-session-deleted', scaleSetId, sessionId: ownStale });
      const r = await attempt();
      if (!isFlintError(r)) return r;
      last = r;
    }
    throw new FlintError('FLINT_ERR_SCALESET_SESSION_CONFLICT', `${last?.message ?? op} (after ${conflictRetries} retries${ownStale === undefined ? '; no session of this Flint was on record, so none was deleted' : ''})`, {
      details: { operation: op, scaleSetId, retries: conflictRetries, deletedOwnStale: ownStale !== undefined }, cause: last,
    });
  }

  async function openSession(so: OpenSessionOptions): Promise<MessageSession> {
    let scaleSet = await ensureScaleSet(so.scaleSet);
    let raw: RawSession;
    try {
      raw = await createSession(scaleSet.id, so.ownerName, so.previousSessionId, so.signal);
    } catch (err) {
      if (!isFlintError(err, 'FLINT_ERR_SCALESET_NOT_FOUND')) throw err;
      // Removed between the lookup and the session: once more from the top.
      scaleSet = await ensureScaleSet(so.scaleSet);
      raw = await createSession(scaleSet.id, so.ownerName, so.previousSessionId, so.signal);
    }
    let statistics = raw.statistics;
    let lastMessageId = so.resumeAfter !== undefined && so.resumeAfter.scaleSetId === scaleSet.id ? so.resumeAfter.messageId : 0;

    /** The scale set is gone: create it again (a new id) and a session on it; message ids start over. */
    async function recreateScaleSet(): Promise<void> {
      const oldId = scaleSet.id;
      scaleSet = await ensureScaleSet(so.scaleSet);
      raw = await createSession(scaleSet.id, so.ownerName, undefined, so.signal);
      statistics = raw.statistics;
      lastMessageId = 0;
      emit({ kind: 'scale-set-recreated', oldId, newId: scaleSet.id });
    }

    async function refresh(): Promise<void> {
      const op = `refresh the message session of scale set ${scaleSet.id}`;
      const res = await adminCall(op, 'PATCH', `${SCALE_SETS}/${scaleSet.id}/sessions/${encodeURIComponent(raw.sessionId)}`);
      if (res.status === 200) {
        raw = parseSession(res.json, op);
        statistics = raw.statistics;
        emit({ kind: 'session-refreshed', scaleSetId: scaleSet.id });
        return;
      }
      const e = errorOf(res, op);
      if (e.code === 'FLINT_ERR_SCALESET_NOT_FOUND') return recreateScaleSet();
      if (res.status !== 404 && e.code !== 'FLINT_ERR_SCALESET_SESSION_GONE') throw e;
      // The service forgot the session: the old id is ours, so a conflict may delete it.
      raw = await createSession(scaleSet.id, so.ownerName, raw.sessionId, so.signal);
      statistics = raw.statistics;
      emit({ kind: 'session-recreated', scaleSetId: scaleSet.id });
    }

    /** A queue call: on 401 refresh (or recreate) and try once more; on a removed scale set recreate and try once more. */
    async function queueCall(operation: string, make: () => { url: string; method: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number }, signal?: AbortSignal): Promise<Answer> {
      for (let attempt = 0; ; attempt++) {
        const r = make();
        const res = await send(operation, r.url, { method: r.method, auth: `Bearer ${raw.queueToken}`, body: r.body, ...(r.headers === undefined ? {} : { headers: r.headers }), ...(signal === undefined ? {} : { signal }), ...(r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs }) });
        if (attempt > 0) return res;
        if (res.status === 401) await refresh();
        else if (res.status === 404 && res.typeName.includes('RunnerScaleSetNotFoundException')) await recreateScaleSet();
        else return res;
      }
    }

    const session: MessageSession = {
      get scaleSetId() { return scaleSet.id; },
      get sessionId() { return raw.sessionId; },
      get statistics() { return statistics; },
      async getMessage({ maxCapacity, signal }) {
        if (!Number.isInteger(maxCapacity) || maxCapacity < 0) throw new RangeError('maxCapacity must be a whole number ≥ 0');
        const op = `poll the message queue of scale set ${scaleSet.id}`;
        const res = await queueCall(op, () => {
          const u = new URL(raw.queueUrl);
          if (lastMessageId > 0) u.searchParams.set('lastMessageId', String(lastMessageId));
          return { url: u.toString(), method: 'GET', headers: { accept: `application/json; api-version=${API_VERSION}`, 'x-scalesetmaxcapacity': String(maxCapacity) }, timeoutMs: pollTimeout };
        }, signal);
        if (res.status === 202) return { kind: 'none' };
        if (res.status !== 200) throw errorOf(res, op);
        const m = res.json;
        if (!isObj(m) || !Number.isInteger(m.messageId)) throw protocol(op, 'the message has no messageId');
        if (m.messageType !== 'RunnerScaleSetJobMessages') throw protocol(op, `unknown message type ${String(m.messageType)}`);
        let items: unknown = [];
        if (typeof m.body === 'string' && m.body !== '') {
          try {
            items = JSON.parse(m.body);
          } catch {
            throw protocol(op, 'the message body is not JSON');
          }
        }
        if (!Array.isArray(items)) throw protocol(op, 'the message body is not a list of job messages');
        const jobs = items.map((i) => parseJob(i, op));
        if (m.statistics !== undefined) statistics = parseStatistics(m.statistics, op);
        return { kind: 'message', messageId: num(m.messageId), statistics, jobs: jobs.filter((j): j is JobMessage => j !== undefined), ignoredItems: jobs.filter((j) => j === undefined).length };
      },
      async ack(messageId) {
        const op = `acknowledge message ${messageId} of scale set ${scaleSet.id}`;
        const res = await queueCall(op, () => {
          const u = new URL(raw.queueUrl);
          u.pathname = `${u.pathname.replace(/\/+$/, '')}/${messageId}`;
          return { url: u.toString(), method: 'DELETE' };
        });
        if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw errorOf(res, op);
        if (messageId > lastMessageId) lastMessageId = messageId;
      },
      async acquire(ids) {
        const op = `acquire ${ids.length} job(s) for scale set ${scaleSet.id}`;
        if (ids.length === 0) return [];
        // The queue token, as the service's own listener sends it; api-version in the query.
        const base = (await adminConn(false)).url;
        const res = await queueCall(op, () => {
          const u = new URL(`${SCALE_SETS}/${scaleSet.id}/acquirejobs`, base);
          u.searchParams.set('api-version', API_VERSION);
          return { url: u.toString(), method: 'POST', body: [...ids] };
        });
        if (res.status !== 200) throw errorOf(res, op);
        const value = isObj(res.json) && Array.isArray(res.json.value) ? res.json.value : undefined;
        if (value === undefined || !value.every((v) => Number.isInteger(v))) throw protocol(op, 'the answer is not a list of request ids');
        return value as number[]; // checked to be integers just above
      },
      refresh,
      async close() {
        await deleteSession(scaleSet.id, raw.sessionId);
      },
    };
    return session;
  }

  async function generateJitConfig(scaleSetId: number, g: { readonly name: string; readonly workFolder?: string }): Promise<JitRunner> {
    const op = `generate a JIT config for runner ${g.name} of scale set ${scaleSetId}`;
    const res = await adminCall(op, 'POST', `${SCALE_SETS}/${scaleSetId}/generatejitconfig`, { name: g.name, workFolder: g.workFolder ?? '_work' });
    if (res.status !== 200 && res.status !== 201) throw errorOf(res, op);
    const j = res.json;
    if (!isObj(j) || !isObj(j.runner) || !Number.isInteger(j.runner.id) || typeof j.encodedJITConfig !== 'string') throw protocol(op, 'the answer is not a JIT runner config');
    return { runnerId: num(j.runner.id), runnerName: typeof j.runner.name === 'string' ? j.runner.name : g.name, encodedJitConfig: j.encodedJITConfig };
  }

  async function removeRunner(runnerId: number): Promise<'removed' | 'absent'> {
    const op = `remove runner ${runnerId}`;
    const res = await adminCall(op, 'DELETE', `_apis/distributedtask/pools/0/agents/${runnerId}`);
    if (res.status === 204 || res.status === 200) return 'removed';
    if (res.status === 404) return 'absent';
    throw errorOf(res, op);
  }

  return { ensureScaleSet: (spec) => ensureScaleSet(spec), getScaleSet, deleteScaleSet, openSession, generateJitConfig, removeRunner };
}
