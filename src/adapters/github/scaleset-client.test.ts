// The scale-set client against the GitHub simulator's Actions service:
// the whole job life, the admin token's renewal, and each failure mode the
// simulator can switch on — with the client's recovery policy for each.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, signJwt, type Simulator, type SimulatorOptions } from '../../../tools/github-sim/index.ts';
import { runFakeRunner } from '../../../tools/github-sim/fake-runner.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { createScaleSetClient, serviceError, type JobMessage, type MessageSession, type ScaleSetClient, type ScaleSetClientEvent, type ScaleSetClientOptions, type Timers } from './scaleset-client.ts';

const SPEC = { name: 'flint-small', runnerGroup: 'Default', labels: ['flint-small'] } as const;

interface Rig {
  readonly sim: Simulator;
  readonly client: ScaleSetClient;
  readonly events: ScaleSetClientEvent[];
  readonly sleeps: number[];
  /** The clock both the simulator and the client read. */
  clock: number;
  readonly armed: () => number;
}

async function rig(t: TestContext, simOpts: SimulatorOptions = {}, clientOpts: Partial<ScaleSetClientOptions> = {}): Promise<Rig> {
  const r = { clock: Date.now() } as { clock: number };
  const sim = await startSimulator({ messagePollSeconds: 0.3, now: () => r.clock, ...simOpts });
  t.after(() => sim.close());
  const events: ScaleSetClientEvent[] = [];
  const sleeps: number[] = [];
  const live = new Set<unknown>();
  // Real timers, counted: every call must clear what it armed.
  const timers: Timers = {
    set: (fn, ms) => {
      const h = setTimeout(() => {
        live.delete(h);
        fn();
      }, ms);
      live.add(h);
      return h;
    },
    clear: (h) => {
      live.delete(h);
      clearTimeout(h as ReturnType<typeof setTimeout>);
    },
  };
  const installationToken = async (): Promise<string> => {
    const s = Math.floor(r.clock / 1000);
    const jwt = signJwt({ iat: s - 30, exp: s + 500, iss: sim.appId }, sim.privateKeyPem);
    const res = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
    return (await res.json() as { token: string }).token; // REST contract, checked by the simulator's contract test
  };
  const client = createScaleSetClient({
    apiUrl: sim.apiUrl, githubUrl: sim.apiUrl, organization: sim.org, installationToken, now: () => r.clock, timers,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5, onEvent: (e) => events.push(e), sessionConflict: { retries: 2, baseMs: 1000, maxMs: 8000 },
    ...clientOpts,
  });
  return Object.assign(r, { sim, client, events, sleeps, armed: () => live.size });
}

/** Polls until a message arrives (the simulator's poll is short); acknowledges it. */
async function next(s: MessageSession, capacity = 10): Promise<readonly JobMessage[]> {
  for (let i = 0; i < 20; i++) {
    const m = await s.getMessage({ maxCapacity: capacity });
    if (m.kind === 'message') {
      await s.ack(m.messageId);
      return m.jobs;
    }
  }
  throw new Error('no message came');
}

const kinds = (r: Rig): string[] => r.events.map((e) => e.kind);

test('a job\'s life through the client: offered, acquired, assigned, started by a scale-set runner, completed', async (t) => {
  const r = await rig(t);
  const made = await r.client.ensureScaleSet(SPEC);
  assert.equal((await r.client.ensureScaleSet(SPEC)).id, made.id, 'found, not created twice');
  assert.deepEqual(made.labels, ['flint-small']);
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  assert.equal(s.scaleSetId, made.id);
  assert.equal((await s.getMessage({ maxCapacity: 5 })).kind, 'none');
  const { jobId } = await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  const offered = await next(s);
  assert.equal(offered.length, 1);
  const offer = offered[0];
  assert.ok(offer?.type === 'JobAvailable');
  assert.equal(offer.jobId, String(jobId));
  assert.deepEqual(await s.acquire([offer.runnerRequestId]), [offer.runnerRequestId]);
  assert.deepEqual((await next(s)).map((j) => j.type), ['JobAssigned']);
  assert.equal(s.statistics.totalAssignedJobs, 1);
  const jit = await r.client.generateJitConfig(s.scaleSetId, { name: 'flint-small-1' });
  await assert.rejects(r.client.generateJitConfig(s.scaleSetId, { name: 'flint-small-1' }), (e) => isFlintError(e, 'FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN'));
  let busy: unknown;
  const ran = await runFakeRunner({
    apiUrl: r.sim.apiUrl, jitConfig: jit.encodedJitConfig, waitSeconds: 5,
    onJob: async () => {
      busy = await r.client.removeRunner(jit.runnerId).catch((e: unknown) => e);
      return 'failure' as const;
    },
  });
  assert.equal(ran.outcome, 'completed');
  assert.ok(isFlintError(busy, 'FLINT_ERR_GITHUB_RUNNER_BUSY'));
  const done = await next(s);
  assert.deepEqual(done.map((j) => j.type), ['JobStarted', 'JobCompleted']);
  const completed = done[1];
  assert.ok(completed?.type === 'JobCompleted');
  assert.equal(completed.result, 'failed');
  assert.equal(completed.runnerId, jit.runnerId);
  assert.equal(await r.client.removeRunner(jit.runnerId), 'absent', 'the ephemeral runner is already gone');
  await s.close();
  await s.close(); // a second close finds nothing to delete, and says nothing
  assert.equal(r.sim.actions.scaleSets()[0]?.session, null);
  assert.equal(r.armed(), 0, 'no timer left armed');
});

test('a runner group the organization lacks is FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND', async (t) => {
  const r = await rig(t);
  await assert.rejects(r.client.ensureScaleSet({ ...SPEC, runnerGroup: 'gpu' }), (e) => isFlintError(e, 'FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND'));
});

test('the admin token is renewed before its exp, and once more when the service stops accepting it', async (t) => {
  const r = await rig(t, { adminTokenTtlSeconds: 600 }, { adminRenewMarginMs: 120_000 });
  await r.client.ensureScaleSet(SPEC);
  r.clock += 470_000; // 130 s before exp: outside the margin
  await r.client.ensureScaleSet(SPEC);
  assert.deepEqual(kinds(r), ['admin-token-renewed']);
  r.clock += 20_000; // 110 s before exp: inside the margin
  await r.client.ensureScaleSet(SPEC);
  r.sim.actions.expireAdminTokens();
  await r.client.ensureScaleSet(SPEC);
  assert.deepEqual(r.events.map((e) => (e.kind === 'admin-token-renewed' ? e.reason : e.kind)), ['none', 'expiring', 'rejected']);
});

test('a rate limit on the registration-token request is FLINT_ERR_GITHUB_RATE_LIMITED, as for any REST call', async (t) => {
  const r = await rig(t);
  r.sim.faults.set({ primaryRateLimit: { count: 1, match: 'registration-token' } });
  await assert.rejects(r.client.ensureScaleSet(SPEC), (e) => isFlintError(e, 'FLINT_ERR_GITHUB_RATE_LIMITED'));
  await r.client.ensureScaleSet(SPEC); // the next pass registers
});

test('stale session of our own (its id on record): back-off, then it is deleted and the session created', async (t) => {
  const r = await rig(t);
  const set = await r.client.ensureScaleSet(SPEC);
  const stale = r.sim.actions.staleSession(set.id, 'flint-host-1');
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1', previousSessionId: stale });
  assert.notEqual(s.sessionId, stale);
  assert.deepEqual(kinds(r), ['admin-token-renewed', 'session-conflict', 'session-conflict', 'stale-session-deleted']);
  // Equal jitter with random 0.5: three quarters of 1 s, then of 2 s.
  assert.deepEqual(r.sleeps, [750, 1500]);
});

test('stale session that is not ours: back-off, then FLINT_ERR_SCALESET_SESSION_CONFLICT and the session is left alone', async (t) => {
  const r = await rig(t);
  const set = await r.client.ensureScaleSet(SPEC);
  const stale = r.sim.actions.staleSession(set.id, 'someone-else');
  await assert.rejects(r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' }), (e) => isFlintError(e, 'FLINT_ERR_SCALESET_SESSION_CONFLICT') && /none was deleted/.test(e.message));
  assert.equal(r.sleeps.length, 2);
  assert.equal(r.sim.actions.scaleSets()[0]?.session?.id, stale);
});

test('a live session of another listener while our recorded session is long gone: nothing of theirs is deleted', async (t) => {
  const r = await rig(t);
  const set = await r.client.ensureScaleSet(SPEC);
  const ours = r.sim.actions.staleSession(set.id, 'flint-host-1');
  const theirs = r.sim.actions.staleSession(set.id, 'other-listener'); // replaces ours, as a new listener would after it expired
  assert.notEqual(ours, theirs);
  await assert.rejects(r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1', previousSessionId: ours }), (e) => isFlintError(e, 'FLINT_ERR_SCALESET_SESSION_CONFLICT'));
  assert.equal(r.sim.actions.scaleSets()[0]?.session?.id, theirs);
});

test('two listeners creating the same scale set at once end up with one scale set', async (t) => {
  const r = await rig(t);
  const other = createScaleSetClient({
    apiUrl: r.sim.apiUrl, githubUrl: r.sim.apiUrl, organization: r.sim.org, now: () => r.clock,
    installationToken: async () => {
      const sec = Math.floor(r.clock / 1000);
      const jwt = signJwt({ iat: sec - 30, exp: sec + 500, iss: r.sim.appId }, r.sim.privateKeyPem);
      const res = await fetch(`${r.sim.apiUrl}/app/installations/${r.sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
      return (await res.json() as { token: string }).token; // REST contract
    },
  });
  const [a, b] = await Promise.all([r.client.ensureScaleSet(SPEC), other.ensureScaleSet(SPEC)]);
  assert.equal(a.id, b.id);
  assert.equal(r.sim.actions.scaleSets().length, 1);
});

test('a stale session that expires while the client backs off: the next attempt gets the session, nothing deleted', async (t) => {
  const r = await rig(t, { sessionExpirySeconds: 120 }, {
    sleep: async (ms) => {
      r.clock += 121_000 + ms;
    },
  });
  const set = await r.client.ensureScaleSet(SPEC);
  r.sim.actions.staleSession(set.id, 'flint-host-1');
  await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  assert.deepEqual(kinds(r).filter((k) => k !== 'admin-token-renewed'), ['session-conflict']);
});

test('a scale set the service removed is created again by the next poll; message ids start over', async (t) => {
  const r = await rig(t);
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  await next(s);
  const old = s.scaleSetId;
  r.sim.actions.removeScaleSet(old);
  const jobs = await next(s);
  assert.notEqual(s.scaleSetId, old);
  assert.deepEqual(jobs.map((j) => j.type), ['JobAvailable'], 'the new scale set is offered the still-queued job');
  assert.ok(r.events.some((e) => e.kind === 'scale-set-recreated' && e.oldId === old && e.newId === s.scaleSetId));
});

test('a session the service forgot is created again; an expired queue token is refreshed in place', async (t) => {
  const r = await rig(t);
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  const first = s.sessionId;
  r.sim.actions.expireQueueToken(s.scaleSetId);
  assert.equal((await s.getMessage({ maxCapacity: 1 })).kind, 'none');
  assert.equal(s.sessionId, first);
  r.sim.actions.forgetSession(s.scaleSetId);
  assert.equal((await s.getMessage({ maxCapacity: 1 })).kind, 'none');
  assert.notEqual(s.sessionId, first);
  assert.deepEqual(kinds(r).slice(1), ['session-refreshed', 'session-recreated']);
  await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  assert.equal((await next(s))[0]?.type, 'JobAvailable', 'the new session works');
});

test('a reassigned job arrives as JobCompleted canceled, then JobAvailable again with a new request id', async (t) => {
  const r = await rig(t);
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  r.sim.actions.reassignNext(1);
  await r.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  const first = (await next(s))[0];
  assert.ok(first?.type === 'JobAvailable');
  await s.acquire([first.runnerRequestId]);
  const after = await next(s);
  assert.deepEqual(after.map((j) => j.type), ['JobAssigned', 'JobCompleted', 'JobAvailable']);
  const canceled = after[1];
  assert.ok(canceled?.type === 'JobCompleted');
  assert.equal(canceled.result, 'canceled');
  assert.notEqual(after[2]?.runnerRequestId, first.runnerRequestId);
  assert.equal(after[2]?.jobId, first.jobId);
});

test('an abort signal ends a long poll at once and leaves no timer armed', async (t) => {
  const r = await rig(t, { messagePollSeconds: 30 });
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  const ctl = new AbortController();
  const t0 = Date.now();
  const polling = s.getMessage({ maxCapacity: 1, signal: ctl.signal });
  setTimeout(() => ctl.abort(new Error('shutting down')), 50);
  await assert.rejects(polling, /shutting down/);
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(r.armed(), 0);
});

test('a poll the service does not answer in time is FLINT_ERR_GITHUB_UNAVAILABLE', async (t) => {
  const r = await rig(t, { messagePollSeconds: 30 }, { pollTimeoutMs: 100 });
  const s = await r.client.openSession({ scaleSet: SPEC, ownerName: 'flint-host-1' });
  await assert.rejects(s.getMessage({ maxCapacity: 1 }), (e) => isFlintError(e, 'FLINT_ERR_GITHUB_UNAVAILABLE') && /no answer within 100 ms/.test(e.message));
  assert.equal(r.armed(), 0);
});

test('service errors map from typeName to catalogue codes', () => {
  const code = (typeName: string, status: number): string => serviceError({ status, typeName, message: 'x' }, 'op').code;
  const ns = 'GitHub.Actions.Runtime.WebApi';
  assert.equal(code(`${ns}.AgentExistsException, ${ns}`, 409), 'FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN');
  assert.equal(code(`${ns}.JobStillRunningException, ${ns}`, 400), 'FLINT_ERR_GITHUB_RUNNER_BUSY');
  assert.equal(code(`${ns}.RunnerScaleSetSessionConflictException, ${ns}`, 409), 'FLINT_ERR_SCALESET_SESSION_CONFLICT');
  assert.equal(code(`${ns}.RunnerScaleSetNotFoundException, ${ns}`, 404), 'FLINT_ERR_SCALESET_NOT_FOUND');
  assert.equal(code(`${ns}.RunnerScaleSetSessionExpiredException, ${ns}`, 400), 'FLINT_ERR_SCALESET_SESSION_GONE');
  assert.equal(code('', 401), 'FLINT_ERR_GITHUB_AUTH_FAILED');
  assert.equal(code('', 503), 'FLINT_ERR_GITHUB_UNAVAILABLE');
  assert.equal(code(`${ns}.ArgumentException, ${ns}`, 400), 'FLINT_ERR_GITHUB_REQUEST_FAILED');
  const e = serviceError({ status: 409, typeName: `${ns}.RunnerScaleSetSessionConflictException, ${ns}`, message: 'has an active session' }, 'open');
  assert.equal(e.message, 'open: the Actions service answered 409 RunnerScaleSetSessionConflictException: has an active session');
});
