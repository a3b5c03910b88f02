/**
 * The scale-set listener of one runner definition in scale-set mode
 * (docs/scale-sets.md, "In the daemon"): a long-running task, not a
 * periodic loop. It opens the scale set's message session, long-polls its
 * queue and turns the news into the store's job records, the same ones
 * the webhook intake writes, so the scheduler's demand counts do not care
 * where a job came from:
 *
 *   JobAvailable   acquired, up to the definition's free capacity
 *   JobAssigned    the job is queued for this definition (demand)
 *   JobStarted     in progress on the named runner (busy)
 *   JobCompleted   completed (demand released; the VM ends with its runner)
 *
 * Persist, then act: a message is acknowledged only after its effects and
 * its id are committed, so a crash repeats a message (harmless: the job
 * state machine takes repeats) and never loses one. The session id and the
 * last committed message id are kept (ports/scaleset-store.ts): a
 * restarted Flint resumes after that message and, when the service still
 * holds its old session (409), deletes it after the client's back-off.
 */
import { FlintError, isFlintError } from '../core/errors/index.ts';
import type { JobConclusion, JobFacts } from '../core/jobs.ts';
import type { RunnerConfig, ScaleSetConfig } from '../config/types.ts';
import type { JobMessage, MessageSession, PollResult, ScaleSetClient, ScaleSetSpec } from './ports/scaleset-service.ts';
import type { LoopStatus } from './loop.ts';
import type { IntakeStore, JobDelivery } from './ports/store.ts';
import type { ScaleSetKey, ScaleSetStateStore } from './ports/scaleset-store.ts';
import type { ScaleSetRunners } from './ports/scaleset-runners.ts';
import type { JitRunner } from './ports/github.ts';

export interface ListenerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ScaleSetListenerDeps {
  readonly definition: RunnerConfig & { readonly scaleSet: ScaleSetConfig };
  readonly client: Pick<ScaleSetClient, 'openSession' | 'ensureScaleSet' | 'generateJitConfig' | 'removeRunner'>;
  /** `flint-<instance id>`: the session's ownerName and the state row's owner. */
  readonly owner: string;
  readonly store: Pick<IntakeStore, 'ingest' | 'countJobsByDefinition'>;
  readonly state: ScaleSetStateStore;
  readonly clock: { now(): number };
  readonly logger: ListenerLogger;
  /**
   * Runners this definition may hold now (what the host — in a fleet, the
   * live hosts together — can hold, at most maxRunners; 0 while draining or
   * paused): the poll's X-ScaleSetMaxCapacity. Asked before each poll and
   * each acquisition.
   */
  readonly capacity: () => number | Promise<number>;
  /** Told after news changed the store (the scheduler's poke). */
  readonly onChanged: () => void;
  /** Waits before retrying after a failure; rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Wait after a failed open or poll (default 5 s). */
  readonly retryMs?: number;
}

export interface ScaleSetListener {
  /** Observed like a loop: `scaleset-listener:<definition>`; a pass is one poll and its handling. */
  status(): LoopStatus;
  /** The scale set's id once known (it changes when the service recreated the scale set). */
  scaleSetId(): number | undefined;
  /** Stops polling (the poll in flight is aborted) and deletes the session at the service. */
  stop(): Promise<void>;
}

const RESULTS: Readonly<Record<string, JobConclusion>> = {
  succeeded: 'success', failed: 'failure', canceled: 'cancelled', cancelled: 'cancelled', skipped: 'skipped',
};
/** How long the service holds a poll; a pass "runs" only while a message is handled. */
const POLL_MS = 50_000;

/** A job's id in the store: the workflow job id when the message carries one, else a negative id from the request (never a real job's). */
export function storedJobId(m: JobMessage): number {
  return /^[1-9][0-9]{0,15}$/.test(m.jobId) ? Number(m.jobId) : -m.runnerRequestId;
}

function facts(m: JobMessage): JobFacts {
  return {
    id: storedJobId(m), runId: m.workflowRunId, runAttempt: 1, name: m.jobDisplayName, workflowName: null, headBranch: null,
    labels: m.requestLabels, repository: `${m.ownerName}/${m.repositoryName}`, createdAt: null,
  };
}

/** The store's delivery for one job message; undefined for news that changes no job. */
export function deliveryOf(m: JobMessage, definition: string, at: number): JobDelivery | undefined {
  const deliveryId = `scaleset:${m.runnerRequestId}:${m.type}`;
  const base = { deliveryId, receivedAt: at, definition };
  switch (m.type) {
    case 'JobAvailable': return undefined;
    case 'JobAssigned': return { ...base, command: { action: 'queued', job: facts(m) } };
    case 'JobStarted': return { ...base, command: { action: 'in_progress', job: facts(m), runner: { id: m.runnerId, name: m.runnerName } } };
    case 'JobCompleted':
      // Canceled before any runner took it: the service took the request back
      // (it offers the job again under a new request id), or the job was
      // cancelled while queued — the job-truth loop tells the two apart.
      if (m.runnerName === '' && m.result === 'canceled') return undefined;
      return { ...base, command: { action: 'completed', job: facts(m), runner: m.runnerName === '' ? null : { id: m.runnerId, name: m.runnerName }, conclusion: RESULTS[m.result] ?? null } };
  }
}

export function startScaleSetListener(d: ScaleSetListenerDeps): ScaleSetListener {
  const def = d.definition;
  const key: ScaleSetKey = { runnerGroup: def.scaleSet.runnerGroup, name: def.scaleSet.name };
  const spec: ScaleSetSpec = { name: def.scaleSet.name, runnerGroup: def.scaleSet.runnerGroup, labels: def.labels };
  const name = `scaleset-listener:${def.name}`;
  const ctl = new AbortController();
  const retryMs = d.retryMs ?? 5000;
  let session: MessageSession | undefined;
  let recorded: { scaleSetId: number; sessionId: string } | undefined;
  let knownId: number | undefined;
  const st = { running: false, runs: 0, failures: 0, lastStartAt: undefined as number | undefined, lastRunAt: undefined as number | undefined, lastError: undefined as LoopStatus['lastError'] };

  async function open(): Promise<MessageSession> {
    const prev = await d.state.get(key);
    const mine = prev !== undefined && prev.owner === d.owner;
    const s = await d.client.openSession({
      scaleSet: spec, ownerName: d.owner, signal: ctl.signal,
      ...(mine && prev.sessionId !== null ? { previousSessionId: prev.sessionId } : {}),
      ...(mine ? { resumeAfter: { scaleSetId: prev.scaleSetId, messageId: prev.lastMessageId } } : {}),
    });
    const resumed = mine && prev.scaleSetId === s.scaleSetId ? prev.lastMessageId : 0;
    await d.state.put({ ...key, scaleSetId: s.scaleSetId, sessionId: s.sessionId, lastMessageId: resumed, owner: d.owner, updatedAt: d.clock.now() });
    recorded = { scaleSetId: s.scaleSetId, sessionId: s.sessionId };
    knownId = s.scaleSetId;
    d.logger.info({ runner: def.name, scaleSet: spec.name, scaleSetId: s.scaleSetId, resumedAfter: resumed }, 'scale-set listener: session open');
    return s;
  }

  /** The client healed a lost session or a removed scale set by itself: record what it now holds. */
  async function followRecovery(s: MessageSession): Promise<void> {
    if (recorded !== undefined && recorded.scaleSetId === s.scaleSetId && recorded.sessionId === s.sessionId) return;
    const prev = await d.state.get(key);
    const sameSet = recorded?.scaleSetId === s.scaleSetId;
    await d.state.put({ ...key, scaleSetId: s.scaleSetId, sessionId: s.sessionId, lastMessageId: sameSet ? prev?.lastMessageId ?? 0 : 0, owner: d.owner, updatedAt: d.clock.now() });
    if (!sameSet) d.logger.warn({ runner: def.name, oldId: recorded?.scaleSetId, newId: s.scaleSetId }, 'scale-set listener: the service had removed the scale set; it was created again');
    recorded = { scaleSetId: s.scaleSetId, sessionId: s.sessionId };
    knownId = s.scaleSetId;
  }

  /** Jobs of this definition not yet completed on record: what its capacity already holds. */
  async function held(): Promise<number> {
    const [queued, running] = await Promise.all([d.store.countJobsByDefinition('queued'), d.store.countJobsByDefinition('in_progress')]);
    return (queued.get(def.name) ?? 0) + (running.get(def.name) ?? 0);
  }

  async function handle(s: MessageSession, m: Extract<PollResult, { kind: 'message' }>): Promise<void> {
    await followRecovery(s);
    const offered = m.jobs.filter((j) => j.type === 'JobAvailable').map((j) => j.runnerRequestId);
    if (offered.length > 0) {
      const free = Math.max(0, (await d.capacity()) - (await held()));
      const granted = free === 0 ? [] : await s.acquire(offered.slice(0, free));
      d.logger.info({ runner: def.name, offered: offered.length, free, acquired: granted.length }, 'scale-set listener: jobs acquired');
    }
    const at = d.clock.now();
    const batch = m.jobs.flatMap((j) => deliveryOf(j, def.name, at) ?? []);
    if (batch.length > 0) await d.store.ingest(batch);
    const sessionId = s.sessionId;
    const advanced = await d.state.advance(key, { owner: d.owner, sessionId, scaleSetId: s.scaleSetId, lastMessageId: m.messageId, at });
    if (!advanced) {
      // Another listener recorded itself for this scale set: its session is the live one.
      throw new FlintError('FLINT_ERR_SCALESET_SESSION_CONFLICT', `scale set ${spec.name}: another listener recorded itself as its owner; this one stops acknowledging and opens its session again`, { details: { scaleSetId: s.scaleSetId } });
    }
    await s.ack(m.messageId);
    if (batch.length > 0) d.onChanged();
  }

  async function run(): Promise<void> {
    while (!ctl.signal.aborted) {
      try {
        session ??= await open();
        const s = session;
        const polled = await s.getMessage({ maxCapacity: Math.max(0, await d.capacity()), signal: ctl.signal });
        st.lastStartAt = d.clock.now();
        st.running = true;
        if (polled.kind === 'message') await handle(s, polled);
        else await followRecovery(s);
        st.runs += 1;
        st.running = false;
        st.lastRunAt = d.clock.now();
      } catch (err) {
        st.running = false;
        if (ctl.signal.aborted) break;
        st.failures += 1;
        const code = isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL';
        const message = err instanceof Error ? err.message : String(err);
        st.lastError = { code, message, at: d.clock.now() };
        d.logger.warn({ runner: def.name, code, err: message, retryInMs: retryMs }, 'scale-set listener: failed; retrying');
        // A session the client could not keep is opened again (as our own stale one, if the service still holds it).
        if (!isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE')) session = undefined;
        await d.sleep(retryMs, ctl.signal).catch(() => undefined);
      }
    }
  }

  const done = run();
  let stopping: Promise<void> | undefined;
  return {
    status: () => ({
      name, intervalMs: POLL_MS, running: st.running, runs: st.runs, failures: st.failures, lastStartAt: st.lastStartAt,
      lastRunAt: st.lastRunAt, lastError: st.lastError, nextRunAt: undefined,
    }),
    scaleSetId: () => knownId,
    stop() {
      stopping ??= (async () => {
        ctl.abort();
        await done;
        const s = session;
        if (s === undefined) return;
        try {
          await s.close();
          await d.state.clearSession(key, d.owner, d.clock.now());
          d.logger.info({ runner: def.name, scaleSetId: s.scaleSetId }, 'scale-set listener: session deleted');
        } catch (err) {
          // Kept on record: the next start deletes it as its own after the conflict back-off.
          d.logger.warn({ runner: def.name, err: err instanceof Error ? err.message : String(err) }, 'scale-set listener: could not delete the session');
        }
      })();
      return stopping;
    },
  };
}

/** The scheduler's ScaleSetRunners over the listeners' scale sets (by definition name). */
export function scaleSetRunners(client: Pick<ScaleSetClient, 'ensureScaleSet' | 'generateJitConfig' | 'removeRunner'>,
  definitions: readonly (RunnerConfig & { readonly scaleSet: ScaleSetConfig })[], listeners: ReadonlyMap<string, Pick<ScaleSetListener, 'scaleSetId'>>): ScaleSetRunners {
  const defOf = (name: string): RunnerConfig & { readonly scaleSet: ScaleSetConfig } => {
    const def = definitions.find((x) => x.name === name);
    if (def === undefined) throw new Error(`runner definition ${name} is not in scale-set mode`);
    return def;
  };
  return {
    async createJitRunner(definition, runnerName): Promise<JitRunner> {
      const def = defOf(definition);
      const id = listeners.get(definition)?.scaleSetId()
        ?? (await client.ensureScaleSet({ name: def.scaleSet.name, runnerGroup: def.scaleSet.runnerGroup, labels: def.labels })).id;
      return client.generateJitConfig(id, { name: runnerName });
    },
    async deleteRunner(_definition, runnerId) {
      await client.removeRunner(runnerId);
    },
  };
}
