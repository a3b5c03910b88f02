import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobListStore } from '../../test/fakes/job-list-store.ts';
import { fakeTime } from '../../test/fakes/fake-time.ts';
import { Scheduler, type VmLauncher } from './scheduler.ts';
import { FlintError } from '../core/errors/index.ts';
import type { RunnerConfig } from '../config/types.ts';
import type { StoredJob } from './ports/store.ts';
import type { GuestEnv, VmHandle, VmOutcome } from './vm/supervisor.ts';
import type { ConsoleMarker } from '../core/guest-contract.ts';
import type { WorkClaims } from './ports/work-claims.ts';
import { MemoryWorkClaims } from '../../test/fakes/memory-work-claims.ts';

const runner = (over: Partial<RunnerConfig> = {}): RunnerConfig => ({
  name: 'default', group: 'Default', labels: ['self-hosted', 'linux'], kernel: '/k', filesystem: '/r', jailer: '/j', firecracker: '/f',
  hypervisor: 'qemu', network: 'br0', cpuCount: 2, memorySize: 1024, smt: false, diskSize: 1 << 30, maxRunners: 3, minIdle: 0,
  jobTimeoutSeconds: 3600, kernelArgs: '', uid: 123, gid: 100, static: false, ...over,
});

const job = (id: number, status: StoredJob['status'], runnerName: string | null = null): StoredJob => ({
  id, runId: id, runAttempt: 1, repository: 'acme/app', name: 'build', workflowName: 'ci', labels: ['self-hosted'], definition: 'default',
  status, conclusion: null, runnerName, firstSeenAt: 0, updatedAt: 0,
});

type Mode = 'ok' | 'boot-fails' | 'throws';

/**
 * A VM launcher that records launches and lets the test play the guest. Like
 * the supervisor, it calls `guestEnv` (the JIT registration) with the VM id,
 * and a failure there ends the VM as "prepare failed". `mode` plays a broken
 * definition: the VMM does not start (the VM ends without a marker), or the
 * launch itself is refused. `autoOnline` has each runner report it started.
 */
class FakeVms implements VmLauncher {
  readonly launched: { id: string; env: Readonly<Record<string, string>>; marker: (m: ConsoleMarker) => void; end: () => void; stopped: string[] }[] = [];
  mode: Mode = 'ok';
  autoOnline = false;
  launchCalls = 0;
  /** When set, each launch waits on it before its VM exists (the store handing out the VM's id and record). */
  hold: (() => Promise<void>) | undefined;
  private n = 0;
  /** The instance part of the VM ids (each host of a fleet has its own). */
  private readonly instance: string;
  constructor(instance = 't1') {
    this.instance = instance;
  }
  async launch(_runner: RunnerConfig, guestEnv: GuestEnv): Promise<VmHandle> {
    this.launchCalls += 1;
    if (this.mode === 'throws') throw new FlintError('FLINT_ERR_VM_UNKNOWN_NETWORK', 'runner "default" uses network "br9", which is not configured');
    if (this.hold !== undefined) await this.hold();
    const id = `${this.instance}-${String(this.n++).padStart(5, '0')}`;
    const markers: ((m: ConsoleMarker, at: number) => void)[] = [];
    let resolveEnded!: (o: VmOutcome) => void;
    const ended = new Promise<VmOutcome>((r) => { resolveEnded = r; });
    const finish = (state: 'stopped' | 'failed', code?: VmOutcome['code']): void => {
      const record = { state, reason: code === undefined ? null : `failed: ${code}` } as VmOutcome['record'];
      resolveEnded(code === undefined ? { record } : { record, code });
    };
    let env: Readonly<Record<string, string>> = {};
    let failure: VmOutcome['code'];
    try {
      env = typeof guestEnv === 'function' ? await guestEnv(id) : guestEnv;
      if (this.mode === 'boot-fails') failure = 'FLINT_ERR_VM_START_FAILED';
    } catch {
      failure = 'FLINT_ERR_VM_PREPARE_FAILED';
    }
    const entry = { id, env, stopped: [] as string[], marker: (m: ConsoleMarker) => markers.forEach((l) => l(m, 0)), end: () => finish('stopped') };
    this.launched.push(entry);
    if (failure !== undefined) {
      const code = failure;
      setImmediate(() => finish('failed', code));
    } else if (this.autoOnline) {
      setImmediate(() => entry.marker({ kind: 'runner-started' }));
    }
    return {
      id, runner: 'default', state: 'booting', ended,
      onConsole: () => () => {}, onState: () => () => {}, writeConsole: () => {},
      onMarker: (l) => { markers.push(l); return () => {}; },
      stop: async (reason?: string) => { entry.stopped.push(reason ?? ''); entry.end(); return ended; },
    };
  }
}

interface Line { level: string; obj: Record<string, unknown>; msg: string }

interface FleetSetup { readonly claims: WorkClaims; readonly host: string; readonly clock: { t: number; now(): number }; readonly budgetVms?: number }

function setup(jobs: StoredJob[], runners = [runner()], fleet?: FleetSetup) {
  const vms = new FakeVms(fleet?.host);
  const deleted: number[] = [];
  const created: string[] = [];
  const lines: Line[] = [];
  const ownClock = { t: 0, now: () => ownClock.t };
  const clock = fleet?.clock ?? ownClock;
  const github = { jitError: undefined as Error | undefined, removal: Promise.resolve() };
  const time = fakeTime();
  /** Runs after every store read: a commit landing between two reads of one tick. */
  const hooks: { afterRead: (() => void) | undefined } = { afterRead: undefined };
  let nextRunnerId = 100;
  const config = { runners, github: { appId: '1', organization: 'acme', webhookSecrets: ['s'], privateKey: 'k', apiUrl: 'http://x', scanBudget: 1000 } };
  const log = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }); };
  const scheduler = new Scheduler({
    config,
    store: jobListStore(jobs, hooks),
    github: {
      runnerGroupId: async () => 1,
      createJitRunner: async (req) => {
        created.push(req.name);
        if (github.jitError) throw github.jitError;
        return { runnerId: nextRunnerId++, runnerName: req.name, encodedJitConfig: `jit-for-${req.name}` };
      },
      deleteRunner: async (_scope, id) => { deleted.push(id); await github.removal; },
    },
    vms,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    clock,
    timers: time,
    // The shortest delays jitter allows: the worst case for the number of attempts.
    random: () => 0.999,
    budget: () => {
      if (fleet?.budgetVms === undefined) return { cpus: 100, memoryMib: 100_000 };
      const left = fleet.budgetVms - vms.launched.filter((v) => v.stopped.length === 0).length;
      return { cpus: 2 * left, memoryMib: 1024 * left };
    },
    guestExtras: { FLINT_RUNNER_COMMAND: 'true' },
    ...(fleet === undefined ? {} : { claims: { store: fleet.claims, host: fleet.host, ttlMs: 30_000 } }),
  });
  return { scheduler, vms, deleted, created, jobs, config, clock, github, lines, hooks, time };
}

/** Lets VM ends and their clean-ups (fake timers of the fake launcher: setImmediate) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
}

test('two queued jobs start two VMs, each with its own JIT config under its tagged runner name', async () => {
  const { scheduler, vms } = setup([job(1, 'queued'), job(2, 'queued')]);
  await scheduler.tick();
  assert.equal(vms.launched.length, 2);
  assert.equal(vms.launched[0]?.env.FLINT_JITCONFIG, 'jit-for-flint-t1-00000');
  assert.equal(vms.launched[0]?.env.FLINT_RUNNER_NAME, 'flint-t1-00000');
  assert.equal(vms.launched[0]?.env.FLINT_RUNNER_COMMAND, 'true');
  assert.equal(vms.launched[0]?.env.FLINT_JOB_TIMEOUT, '3600');
});

test('a second tick with the same queue starts nothing more: starting VMs count as supply', async () => {
  const { scheduler, vms } = setup([job(1, 'queued')]);
  await scheduler.tick();
  await scheduler.tick();
  assert.equal(vms.launched.length, 1);
});

test('a job taken by an idle runner between the tick\'s two reads is not counted twice: no VM beyond demand', async () => {
  const { scheduler, vms, jobs, hooks } = setup([job(1, 'queued')]);
  await scheduler.tick();
  vms.launched[0]?.marker({ kind: 'runner-started' });
  await scheduler.tick();
  assert.equal(vms.launched.length, 1, 'the idle runner covers the queued job');
  // The runner takes the job; its in_progress commits after the tick's first read.
  hooks.afterRead = () => {
    hooks.afterRead = undefined;
    jobs[0] = job(1, 'in_progress', 'flint-t1-00000');
  };
  await scheduler.tick();
  assert.equal(vms.launched.length, 1, 'neither queued demand nor a busy runner counted it twice');
  await scheduler.tick();
  assert.equal(vms.launched.length, 1);
  assert.deepEqual(scheduler.snapshot().default, { starting: 0, idle: 0, busy: 1, ending: 0 });
});

test('maxRunners holds however long the queue', async () => {
  const { scheduler, vms } = setup(Array.from({ length: 10 }, (_, i) => job(i, 'queued')));
  await scheduler.tick();
  assert.equal(vms.launched.length, 3);
});

test('a VM that ends has its runner registration removed and frees its place', async () => {
  const { scheduler, vms, deleted, jobs } = setup([job(1, 'queued')]);
  await scheduler.tick();
  vms.launched[0]?.marker({ kind: 'runner-started' });
  jobs[0] = job(1, 'in_progress', 'flint-t1-00000');
  await scheduler.tick();
  assert.deepEqual(scheduler.snapshot().default, { starting: 0, idle: 0, busy: 1, ending: 0 });
  vms.launched[0]?.marker({ kind: 'runner-exited', code: 0 });
  jobs[0] = job(1, 'completed', 'flint-t1-00000');
  vms.launched[0]?.end();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(deleted, [100]);
  assert.equal(scheduler.snapshot().default, undefined);
  await scheduler.stop();
});

test('a VM that ends makes room at once: the next queued job gets a VM while GitHub has not yet answered the old registration\'s removal', async () => {
  const { scheduler, vms, deleted, jobs, github } = setup([1, 2, 3, 4].map((id) => job(id, 'queued')));
  let answer = (): void => {};
  github.removal = new Promise<void>((r) => { answer = r; });
  scheduler.start(60_000);
  await settle();
  assert.equal(vms.launched.length, 3, 'maxRunners');
  vms.launched[0]?.marker({ kind: 'runner-started' });
  jobs[0] = job(1, 'completed', 'flint-t1-00000');
  vms.launched[0]?.marker({ kind: 'runner-exited', code: 0 });
  vms.launched[0]?.end();
  await settle();
  assert.deepEqual(deleted, [100], 'the removal was asked for');
  assert.equal(vms.launched.length, 4, 'and the fourth job did not wait for its answer');
  answer();
  await scheduler.stop();
});

test('idle runners beyond the warm pool are kept through their grace period, then unregistered and stopped; busy ones are kept', async () => {
  const { scheduler, vms, deleted, config, jobs, clock } = setup([], [runner({ minIdle: 3, idleGraceSeconds: 300 })]);
  await scheduler.tick();
  assert.equal(vms.launched.length, 3);
  vms.launched.forEach((v) => v.marker({ kind: 'runner-started' }));
  jobs.push(job(7, 'in_progress', 'flint-t1-00002'));
  config.runners = [runner({ minIdle: 0, idleGraceSeconds: 300 })];
  clock.t = 299_000;
  await scheduler.tick();
  assert.deepEqual(deleted, [], 'within the grace period (GitHub may be about to hand them a job) nothing is reaped');
  assert.deepEqual(vms.launched.map((v) => v.stopped.length), [0, 0, 0]);
  clock.t = 300_000;
  await scheduler.tick();
  assert.deepEqual(deleted.sort(), [100, 101], 'the two idle runners are unregistered');
  assert.deepEqual(vms.launched.map((v) => v.stopped.length), [1, 1, 0], 'the busy one keeps running');
  await settle();
  assert.equal(scheduler.health().default?.state, 'healthy', 'runners stopped by Flint are no failed launches');
  await scheduler.stop();
});

test('a runner that came online late gets its own grace, counted from when it became idle', async () => {
  const { scheduler, vms, deleted, config, clock } = setup([], [runner({ minIdle: 2 })]);
  await scheduler.tick();
  vms.launched[0]?.marker({ kind: 'runner-started' });
  clock.t = 240_000;
  vms.launched[1]?.marker({ kind: 'runner-started' });
  config.runners = [runner({ minIdle: 0 })];
  clock.t = 300_000;
  await scheduler.tick();
  assert.deepEqual(deleted, [100], 'only the runner idle for the default 5 minutes is reaped');
  clock.t = 540_000;
  await scheduler.tick();
  assert.deepEqual(deleted, [100, 101]);
  await scheduler.stop();
});

test('static runners are started with no job queued, kept at their size, and replaced after their job', async () => {
  const { scheduler, vms, jobs, clock } = setup([], [runner({ name: 'always', static: true, maxRunners: 2, minIdle: 2 })]);
  await scheduler.tick();
  assert.equal(vms.launched.length, 2);
  vms.launched.forEach((v) => v.marker({ kind: 'runner-started' }));
  clock.t = 3_600_000;
  await scheduler.tick();
  assert.deepEqual(vms.launched.map((v) => v.stopped.length), [0, 0], 'an idle static runner is never reaped');
  // One takes a job, runs it and its VM ends: single-use, so a fresh one takes its place.
  jobs.push(job(1, 'in_progress', 'flint-t1-00000'));
  await scheduler.tick();
  assert.equal(vms.launched.length, 2, 'a busy static runner still counts towards the size');
  vms.launched[0]?.marker({ kind: 'runner-exited', code: 0 });
  jobs[0] = job(1, 'completed', 'flint-t1-00000');
  vms.launched[0]?.end();
  await settle();
  await scheduler.tick();
  assert.equal(vms.launched.length, 3);
  assert.equal(Object.values(scheduler.snapshot()).reduce((n, c) => n + c.starting + c.idle + c.busy, 0), 2);
  await scheduler.stop();
});

test('a JIT registration that GitHub refuses backs the definition off with GitHub\'s error code and hint', async () => {
  const { scheduler, github, deleted, clock } = setup([job(1, 'queued')]);
  github.jitError = new FlintError('FLINT_ERR_GITHUB_PERMISSION_DENIED', 'Resource not accessible by integration');
  await scheduler.tick();
  await settle();
  const h = scheduler.health().default;
  assert.equal(h?.state, 'backing-off');
  assert.equal(h?.consecutiveFailures, 1);
  assert.equal(h?.lastError?.code, 'FLINT_ERR_GITHUB_PERMISSION_DENIED');
  assert.match(h?.lastError?.hint ?? '', /\S/);
  assert.ok((h?.nextAttemptAt ?? 0) > clock.t);
  assert.deepEqual(deleted, [], 'nothing was registered, nothing to delete');
  await scheduler.stop();
});

test('a launch refused at once stops the round: one attempt, not one per queued job', async () => {
  const { scheduler, vms, created } = setup(Array.from({ length: 3 }, (_, i) => job(i, 'queued')));
  vms.mode = 'throws';
  await scheduler.tick();
  assert.equal(vms.launchCalls, 1);
  assert.equal(created.length, 0);
  assert.equal(scheduler.health().default?.lastError?.code, 'FLINT_ERR_VM_UNKNOWN_NETWORK');
  await scheduler.tick();
  assert.equal(vms.launchCalls, 1, 'backing off: the next tick starts nothing');
  await scheduler.stop();
});

test('once the first launch of a round went through, the others launch together, not one after another', async () => {
  const { scheduler, vms } = setup([job(1, 'queued'), job(2, 'queued'), job(3, 'queued')]);
  const held: (() => void)[] = [];
  vms.hold = () => new Promise((resolve) => { held.push(resolve); });
  const ticking = scheduler.tick();
  await settle();
  assert.equal(vms.launchCalls, 1, 'the first launch alone: one refused at once would stop the round');
  held.shift()?.();
  await settle();
  assert.equal(vms.launchCalls, 3, 'the other two at once, neither waiting on the other');
  for (const release of held.splice(0)) release();
  await ticking;
  assert.equal(vms.launched.length, 3);
  await scheduler.stop();
});

test('a VM that ends before its runner started is a failed launch (FLINT_ERR_VM_NO_RUNNER), and its registration is deleted', async () => {
  const { scheduler, vms, deleted } = setup([job(1, 'queued')]);
  await scheduler.tick();
  vms.launched[0]?.end();
  await settle();
  assert.equal(scheduler.health().default?.lastError?.code, 'FLINT_ERR_VM_NO_RUNNER');
  assert.deepEqual(deleted, [100]);
  await scheduler.stop();
});

test('broken kernel, 50 queued jobs, 10 minutes: backs off, is marked unhealthy once, costs a few JIT registrations, then recovers when fixed', async () => {
  const jobs = Array.from({ length: 50 }, (_, i) => job(i, 'queued'));
  const { scheduler, vms, created, deleted, clock, lines } = setup(jobs, [runner({ maxRunners: 5, unhealthyAfter: 3 })]);
  vms.mode = 'boot-fails';
  const createdAt: number[] = [];
  const tickFor = async (untilMs: number): Promise<void> => {
    for (; clock.t <= untilMs; clock.t += 2_000) {
      const before = created.length;
      await scheduler.tick();
      await settle();
      for (let i = before; i < created.length; i += 1) createdAt.push(clock.t);
    }
  };
  await tickFor(0);
  assert.equal(created.length, 5, 'before any failure is known, a healthy definition starts its maxRunners');
  assert.equal(scheduler.health().default?.consecutiveFailures, 1, 'VMs that fail together count once');
  await tickFor(600_000);
  const h = scheduler.health().default;
  assert.equal(h?.state, 'unhealthy');
  assert.equal(h?.lastError?.code, 'FLINT_ERR_VM_START_FAILED');
  assert.match(h?.lastError?.hint ?? '', /kernel/);
  assert.ok(h?.nextAttemptAt !== undefined && h.nextAttemptAt > clock.t - 2_000);
  // 5 at once, then one probe after 5 s, 10 s, then at most one every 2.5 min (the cap less its jitter).
  assert.ok(created.length <= 5 + 2 + 4, `${created.length} JIT registrations in 10 minutes`);
  const lastFiveMinutes = createdAt.filter((t) => t > 300_000).length;
  assert.ok(lastFiveMinutes <= 2, `${lastFiveMinutes} registrations in the last 5 minutes`);
  assert.equal(deleted.length, created.length, 'every registration of a VM that never started is deleted');
  assert.equal(lines.filter((l) => l.msg.includes('backing off')).length, 1, 'backing off is logged once');
  const unhealthy = lines.filter((l) => l.level === 'error' && l.obj.code === 'FLINT_ERR_RUNNER_UNHEALTHY');
  assert.equal(unhealthy.length, 1, 'unhealthy is logged once, not every tick');
  assert.equal(unhealthy[0]?.obj.lastCode, 'FLINT_ERR_VM_START_FAILED');

  // The kernel is fixed: the next probe comes online and the queue is served again.
  vms.mode = 'ok';
  vms.autoOnline = true;
  await tickFor(clock.t + 5 * 60_000 + 4_000);
  assert.equal(scheduler.health().default?.state, 'healthy');
  assert.equal(scheduler.health().default?.consecutiveFailures, 0);
  assert.equal(scheduler.snapshot().default?.idle, 5, 'back to maxRunners runners for the queue');
  assert.equal(lines.filter((l) => l.msg.includes('healthy again')).length, 1);
  await scheduler.stop();
  vms.launched.forEach((v) => v.end());
  await scheduler.settled();
  assert.equal(scheduler.health().default?.state, 'healthy', 'VMs ended while Flint stops are no failed launches');
  assert.equal(deleted.length, created.length, 'nothing left registered');
});

test('a paused definition starts nothing and its idle runners go at once, grace or not; busy ones stay; resume starts again', async () => {
  const { scheduler, vms, deleted, jobs } = setup([], [runner({ minIdle: 2, idleGraceSeconds: 300 })]);
  await scheduler.tick();
  vms.launched.forEach((v) => v.marker({ kind: 'runner-started' }));
  jobs.push(job(7, 'in_progress', 'flint-t1-00001'));
  assert.equal(scheduler.pause('nope'), false, 'an unknown definition is refused');
  assert.equal(scheduler.pause('default'), true);
  assert.deepEqual(scheduler.paused(), { host: false, definitions: ['default'] });
  jobs.push(job(8, 'queued'));
  await scheduler.tick();
  assert.deepEqual(deleted, [100], 'the idle runner is unregistered within its grace');
  assert.deepEqual(vms.launched.map((v) => v.stopped), [['drained by the operator: idle runner removed'], []], 'the busy one keeps running');
  assert.equal(vms.launched.length, 2, 'no VM for the queued job');
  assert.equal(scheduler.runnerPhases().get('t1-00001'), 'busy');
  await settle();
  assert.equal(scheduler.resume('default'), true);
  assert.deepEqual(scheduler.paused(), { host: false, definitions: [] });
  await scheduler.tick();
  assert.equal(vms.launched.length, 4, 'the warm pool and the queued job again');
  await scheduler.stop();
});

test('a paused host starts nothing for any definition; resume of the host clears every pause', async () => {
  const { scheduler, vms } = setup([job(1, 'queued')], [runner(), runner({ name: 'other', minIdle: 1 })]);
  scheduler.pause();
  scheduler.pause('other');
  await scheduler.tick();
  assert.equal(vms.launched.length, 0);
  scheduler.resume();
  assert.deepEqual(scheduler.paused(), { host: false, definitions: [] });
  await scheduler.tick();
  assert.equal(vms.launched.length, 2);
  await scheduler.stop();
});

test('a definition in scale-set mode registers its runners with the scale set and removes them there; REST is not asked', async () => {
  const vms = new FakeVms();
  const calls: string[] = [];
  const def = runner({ scaleSet: { name: 'flint-default', runnerGroup: 'Default' } });
  const scheduler = new Scheduler({
    config: { runners: [def], github: { appId: '1', organization: 'acme', webhookSecrets: [], privateKey: 'k', apiUrl: 'http://x', scanBudget: 1000 } },
    store: jobListStore([job(1, 'queued')], { afterRead: undefined }),
    github: {
      runnerGroupId: async () => { calls.push('rest:group'); return 1; },
      createJitRunner: async () => { calls.push('rest:jit'); throw new Error('not for scale sets'); },
      deleteRunner: async () => { calls.push('rest:delete'); },
    },
    scaleSets: {
      createJitRunner: async (definition, name) => { calls.push(`ss:jit:${definition}:${name}`); return { runnerId: 42, runnerName: name, encodedJitConfig: `ss-jit-${name}` }; },
      deleteRunner: async (definition, id) => { calls.push(`ss:delete:${definition}:${id}`); },
    },
    vms, logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    clock: { now: () => 0 }, random: () => 0.5, budget: () => ({ cpus: 100, memoryMib: 100_000 }),
  });
  await scheduler.tick();
  assert.equal(vms.launched.length, 1);
  assert.equal(vms.launched[0]?.env.FLINT_JITCONFIG, 'ss-jit-flint-t1-00000');
  vms.launched[0]?.end();
  await settle();
  await scheduler.settled();
  assert.deepEqual(calls, ['ss:jit:default:flint-t1-00000', 'ss:delete:default:42']);
});

test('a fleet: each host claims the queued jobs it can serve and starts VMs for those only, so the fleet starts one per job', async () => {
  const jobs = [1, 2, 3, 4, 5].map((id) => job(id, 'queued'));
  const claims = new MemoryWorkClaims(jobListStore(jobs));
  const clock = { t: 1000, now: () => clock.t };
  const a = setup(jobs, [runner({ maxRunners: 3 })], { claims, host: 'ha', clock });
  const b = setup(jobs, [runner({ maxRunners: 3 })], { claims, host: 'hb', clock });
  await a.scheduler.tick();
  await b.scheduler.tick();
  assert.equal(a.vms.launched.length, 3, 'host a serves what its maxRunners allows');
  assert.equal(b.vms.launched.length, 2, 'host b the rest');
  await a.scheduler.tick();
  await b.scheduler.tick();
  assert.equal(a.vms.launched.length + b.vms.launched.length, 5, 'renewed claims start nothing more');
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), { ha: 3, hb: 2 });
  // A job is taken by host a's runner: a's claims drop with it, and nothing new starts anywhere.
  a.vms.launched[0]?.marker({ kind: 'runner-started' });
  jobs[0] = job(1, 'in_progress', `flint-${a.vms.launched[0]?.id ?? ''}`);
  await a.scheduler.tick();
  await b.scheduler.tick();
  assert.equal(a.vms.launched.length + b.vms.launched.length, 5);
});

test('a fleet: a host claims only what its free capacity holds, and a dead host\'s claims go to another after their ttl', async () => {
  const jobs = [1, 2, 3, 4].map((id) => job(id, 'queued'));
  const claims = new MemoryWorkClaims(jobListStore(jobs));
  const clock = { t: 1000, now: () => clock.t };
  const a = setup(jobs, [runner({ maxRunners: 10 })], { claims, host: 'ha', clock, budgetVms: 1 });
  const b = setup(jobs, [runner({ maxRunners: 10 })], { claims, host: 'hb', clock, budgetVms: 2 });
  await a.scheduler.tick();
  await b.scheduler.tick();
  assert.equal(a.vms.launched.length, 1, 'room for one VM: one claim');
  assert.equal(b.vms.launched.length, 2);
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), { ha: 1, hb: 2 });
  // Host a dies (it ticks no more); a third host with room waits for a's claim to lapse.
  const c = setup(jobs, [runner({ maxRunners: 10 })], { claims, host: 'hc', clock });
  await c.scheduler.tick();
  assert.equal(c.vms.launched.length, 1, 'only the unclaimed job');
  clock.t += 29_999;
  await b.scheduler.tick();
  await c.scheduler.tick();
  assert.equal(c.vms.launched.length, 1, 'a\'s claim holds until its ttl');
  clock.t += 1;
  await c.scheduler.tick();
  assert.equal(c.vms.launched.length, 2, 'then its job is served by another host');
  assert.equal(b.vms.launched.length, 2);
});

test('a fleet: a paused definition and a stopped scheduler give their claims up at once', async () => {
  const jobs = [1, 2].map((id) => job(id, 'queued'));
  const claims = new MemoryWorkClaims(jobListStore(jobs));
  const clock = { t: 1000, now: () => clock.t };
  const a = setup(jobs, [runner()], { claims, host: 'ha', clock });
  await a.scheduler.tick();
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), { ha: 2 });
  a.scheduler.pause('default');
  await a.scheduler.tick();
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), {}, 'paused: nothing served, nothing claimed');
  a.scheduler.resume('default');
  await a.scheduler.tick();
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), { ha: 2 }, 'its runners are still there to serve them');
  await a.scheduler.stop();
  assert.deepEqual(Object.fromEntries(await claims.claimsByHost(clock.now())), {});
});
