// The scale-set listener against the GitHub simulator's Actions service
// (short polls), with the memory stores: news becomes the store's job
// records, acknowledged only after the commit, and each recovery keeps the
// stored session state true. No VMs: a fake runner takes the jobs.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, signJwt, type Simulator } from '../../tools/github-sim/index.ts';
import { runFakeRunner } from '../../tools/github-sim/fake-runner.ts';
import { createScaleSetClient, type OpenSessionOptions, type ScaleSetClient, type ScaleSetClientEvent } from '../adapters/github/scaleset-client.ts';
import { createMemoryIntakeStore, type MemoryIntakeStore } from '../adapters/store/memory-intake-store.ts';
import { createMemoryScaleSetState } from '../adapters/store/memory-scaleset-state.ts';
import type { RunnerConfig, ScaleSetConfig } from '../config/types.ts';
import type { ScaleSetStateStore } from './ports/scaleset-store.ts';
import { scaleSetRunners, startScaleSetListener, type ScaleSetListener } from './scaleset-listener.ts';

const DEF = {
  name: 'small', group: 'Default', labels: ['self-hosted', 'flint-small'], maxRunners: 2, scaleSet: { name: 'flint-small', runnerGroup: 'Default' },
} as unknown as RunnerConfig & { readonly scaleSet: ScaleSetConfig }; // only these fields are read by the listener
const KEY = { runnerGroup: 'Default', name: 'flint-small' };
const OWNER = 'flint-t1';

interface Rig {
  readonly sim: Simulator;
  readonly client: ScaleSetClient;
  readonly events: ScaleSetClientEvent[];
  readonly opened: OpenSessionOptions[];
  readonly store: MemoryIntakeStore;
  readonly state: ScaleSetStateStore;
  readonly pokes: { n: number };
  start(o?: { readonly store?: MemoryIntakeStore }): ScaleSetListener;
}

async function rig(t: TestContext): Promise<Rig> {
  const sim = await startSimulator({ messagePollSeconds: 0.2 });
  const events: ScaleSetClientEvent[] = [];
  const opened: OpenSessionOptions[] = [];
  const real = createScaleSetClient({
    apiUrl: sim.apiUrl, githubUrl: sim.apiUrl, organization: sim.org, onEvent: (e) => events.push(e),
    installationToken: async () => {
      const s = Math.floor(Date.now() / 1000);
      const jwt = signJwt({ iat: s - 30, exp: s + 500, iss: sim.appId }, sim.privateKeyPem);
      const res = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
      return (await res.json() as { token: string }).token; // REST contract, checked by the simulator's contract test
    },
    // The conflict back-off is not waited for here (its policy is the client's own test).
    sleep: async () => undefined, sessionConflict: { retries: 1, baseMs: 10, maxMs: 10 },
  });
  const client: ScaleSetClient = { ...real, openSession: (o) => { opened.push(o); return real.openSession(o); } };
  const store = createMemoryIntakeStore();
  const state = createMemoryScaleSetState();
  const pokes = { n: 0 };
  const listeners: ScaleSetListener[] = [];
  t.after(async () => {
    for (const l of listeners) await l.stop();
    await sim.close();
  });
  return {
    sim, client, events, opened, store, state, pokes,
    start(o = {}) {
      const l = startScaleSetListener({
        definition: DEF, client, owner: OWNER, store: o.store ?? store, state, clock: { now: () => Date.now() },
        logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
        capacity: () => DEF.maxRunners, onChanged: () => { pokes.n += 1; },
        // Real but short waits, ended by the listener's stop.
        sleep: (ms, signal) => new Promise((resolve, reject) => {
          const h = setTimeout(resolve, Math.min(ms, 20));
          signal.addEventListener('abort', () => { clearTimeout(h); reject(signal.reason); }, { once: true });
        }),
        retryMs: 20,
      });
      listeners.push(l);
      return l;
    },
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const status = async (s: MemoryIntakeStore, id: number): Promise<string | undefined> => (await s.getJob(id))?.status;

test('a queued job becomes demand for the definition, is acquired, runs on a scale-set runner and completes', async (t) => {
  const r = await rig(t);
  const listener = r.start();
  await until('the session', () => listener.scaleSetId() !== undefined);
  const { jobId } = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('the job queued on record', async () => (await status(r.store, jobId)) === 'queued');
  const job = await r.store.getJob(jobId);
  assert.equal(job?.definition, 'small');
  assert.equal(r.sim.actions.scaleSets()[0]?.statistics.totalAcquiredJobs, 1, 'acquired by the listener');
  await until('the scheduler told (after the commit and the acknowledgement)', () => r.pokes.n > 0);
  const runners = scaleSetRunners(r.client, [DEF], new Map([['small', listener]]));
  const jit = await runners.createJitRunner('small', 'flint-t1-00001');
  const ran = await runFakeRunner({ apiUrl: r.sim.apiUrl, jitConfig: jit.encodedJitConfig, waitSeconds: 5, onJob: async () => {
    await until('the job in progress on record', async () => (await r.store.getJob(jobId))?.runnerName === 'flint-t1-00001');
    return 'success' as const;
  } });
  assert.equal(ran.outcome, 'completed');
  await until('the job completed on record', async () => (await status(r.store, jobId)) === 'completed');
  assert.equal((await r.store.getJob(jobId))?.conclusion, 'success');
  const st = await r.state.get(KEY);
  assert.equal(st?.owner, OWNER);
  assert.ok((st?.lastMessageId ?? 0) >= 3, 'every message committed is on record');
  await runners.deleteRunner('small', jit.runnerId);
  await listener.stop();
  assert.equal((await r.state.get(KEY))?.sessionId, null, 'the session was deleted on stop');
  assert.equal(r.sim.actions.scaleSets()[0]?.session, null);
});

test('a message is acknowledged only after its effects are committed: a failed commit gets it again', async (t) => {
  const r = await rig(t);
  let failures = 1;
  const store = createMemoryIntakeStore();
  const flaky: MemoryIntakeStore = { ...store, ingest: async (batch) => {
    if (failures > 0 && batch.length > 0) {
      failures -= 1;
      throw new Error('disk full');
    }
    return store.ingest(batch);
  } };
  const listener = r.start({ store: flaky });
  await until('the session', () => listener.scaleSetId() !== undefined);
  const { jobId } = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('the job queued on record', async () => (await status(store, jobId)) === 'queued');
  assert.equal(failures, 0, 'the first commit failed');
  assert.equal(listener.status().failures, 1);
  assert.equal(listener.status().lastError?.code, 'FLINT_ERR_INTERNAL');
});

test('a restarted listener resumes after the last committed message and deletes its own stale session after a conflict', async (t) => {
  const r = await rig(t);
  const first = r.start();
  await until('the session', () => first.scaleSetId() !== undefined);
  const a = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('job a queued on record', async () => (await status(r.store, a.jobId)) === 'queued');
  const before = await r.state.get(KEY);
  assert.ok(before !== undefined && before.lastMessageId > 0 && before.sessionId !== null);
  // A crash, as the service and the store see it: the service still holds a session of this owner, and Flint's record names it.
  const id = first.scaleSetId() ?? 0;
  await first.stop();
  const stale = r.sim.actions.staleSession(id, OWNER);
  await r.state.put({ ...before, sessionId: stale });
  const second = r.start();
  await until('the second session', async () => (await r.state.get(KEY))?.sessionId !== stale && r.opened.length === 2);
  const opened = r.opened[1];
  assert.equal(opened?.previousSessionId, stale, 'its own recorded session is named');
  assert.deepEqual(opened?.resumeAfter, { scaleSetId: id, messageId: before.lastMessageId });
  await until('the stale session deleted', () => r.events.some((e) => e.kind === 'stale-session-deleted'));
  assert.ok(r.events.some((e) => e.kind === 'session-conflict'), 'a 409 first');
  const b = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('job b queued on record', async () => (await status(r.store, b.jobId)) === 'queued');
  assert.ok(((await r.state.get(KEY))?.lastMessageId ?? 0) > before.lastMessageId);
  await second.stop();
});

test('a scale set the service deleted is created again; the new id and a fresh message count are recorded', async (t) => {
  const r = await rig(t);
  const listener = r.start();
  await until('the session', () => listener.scaleSetId() !== undefined);
  const oldId = listener.scaleSetId() ?? 0;
  const a = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('job a queued on record', async () => (await status(r.store, a.jobId)) === 'queued');
  r.sim.actions.removeScaleSet(oldId);
  await until('the scale set recreated', () => (listener.scaleSetId() ?? oldId) !== oldId);
  const newId = listener.scaleSetId() ?? 0;
  assert.ok(r.events.some((e) => e.kind === 'scale-set-recreated'));
  await until('the new id on record', async () => (await r.state.get(KEY))?.scaleSetId === newId);
  const b = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await until('job b queued on record', async () => (await status(r.store, b.jobId)) === 'queued');
  await until('job a offered again and on record still', async () => (await status(r.store, a.jobId)) === 'queued');
  assert.equal(r.sim.actions.scaleSets().find((s) => s.id === newId)?.statistics.totalAssignedJobs, 2, 'both jobs are the new scale set\'s');
});
