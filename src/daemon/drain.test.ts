import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type VmLauncher } from './scheduler.ts';
import { startDrain, type DrainDeps } from './drain.ts';
import type { LoopTimers } from './loop.ts';
import type { RunnerConfig } from '../config/types.ts';
import type { StoredJob } from './ports/store.ts';
import type { GuestEnv, VmHandle, VmOutcome } from './vm/supervisor.ts';
import type { ConsoleMarker } from '../core/guest-contract.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { MemoryLogger, testRunner } from '../../test/fakes/rig.ts';
import { jobListStore } from '../../test/fakes/job-list-store.ts';

/** Timers and a clock that move only when the test says so: no test waits on the wall clock. */
class ManualTime implements LoopTimers {
  t = 1_000_000;
  private n = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  readonly clock = { now: (): number => this.t };
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.n;
    this.due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number); // handles are the numbers setTimeout returned
  }
  armed(): number {
    return this.due.size;
  }
  /** Moves the clock forward, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await new Promise((r) => setImmediate(r));
}

interface FakeVm { readonly id: string; readonly stopped: string[]; marker(m: ConsoleMarker): void; end(): void; readonly handle: VmHandle }

/** A launcher that plays the guest: it registers the runner (guestEnv) like the supervisor, then waits for the test. */
class FakeVms implements VmLauncher {
  readonly vms: FakeVm[] = [];
  async launch(_runner: RunnerConfig, guestEnv: GuestEnv): Promise<VmHandle> {
    const id = `t1-${String(this.vms.length).padStart(5, '0')}`;
    const listeners: ((m: ConsoleMarker, at: number) => void)[] = [];
    let resolveEnded!: (o: VmOutcome) => void; // assigned by the Promise executor just below
    const ended = new Promise<VmOutcome>((r) => { resolveEnded = r; });
    // The supervisor registers the runner after launch() has returned, while it prepares.
    if (typeof guestEnv === 'function') setImmediate(() => { void guestEnv(id); });
    const stopped: string[] = [];
    const end = (): void => resolveEnded({ record: { state: 'stopped', reason: null } as VmOutcome['record'] }); // the fields the scheduler reads
    const handle: VmHandle = {
      id, runner: 'default', state: 'booting', ended,
      onConsole: () => () => {}, onState: () => () => {}, writeConsole: () => {},
      onMarker: (l) => { listeners.push(l); return () => {}; },
      stop: async (reason?: string) => { stopped.push(reason ?? ''); end(); return ended; },
    };
    this.vms.push({ id, stopped, end, handle, marker: (m) => listeners.forEach((l) => l(m, 0)) });
    return handle;
  }
  vm(i: number): FakeVm {
    const v = this.vms[i];
    assert.ok(v, `no VM ${i}`);
    return v;
  }
}

const job = (id: number, status: StoredJob['status'], runnerName: string | null = null): StoredJob => ({
  id, runId: id, runAttempt: 1, repository: 'acme/app', name: 'build', workflowName: 'ci', labels: ['self-hosted'], definition: 'default',
  status, conclusion: null, runnerName, firstSeenAt: 0, updatedAt: 0,
});

const GRACE_MS = 30 * 60_000;
const PROGRESS_MS = 60_000;

/** A scheduler on the in-memory GitHub with `queued` jobs, VMs started and runners registered; nothing drains yet. */
async function setup(queued: number) {
  const time = new ManualTime();
  const github = new MemoryGitHub();
  const vms = new FakeVms();
  const logger = new MemoryLogger();
  const jobs: StoredJob[] = Array.from({ length: queued }, (_, i) => job(i + 1, 'queued'));
  const scheduler = new Scheduler({
    config: { runners: [testRunner({ maxRunners: 5 })], github: { appId: '1', organization: 'acme', webhookSecrets: ['s'], privateKey: 'k', apiUrl: 'http://x', scanBudget: 1000 } },
    store: jobListStore(jobs),
    github, vms, logger, clock: time.clock, random: () => 0.5,
    budget: () => ({ cpus: 100, memoryMib: 100_000 }),
    timers: time,
  });
  scheduler.start(2000);
  await settle();
  const deps: DrainDeps = { scheduler, clock: time.clock, timers: time, logger, progressEveryMs: PROGRESS_MS };
  /** GitHub's id of the runner registered for VM i (runner ids count from 1 in the order of registration). */
  const runnerId = async (i: number): Promise<number> => {
    const name = `flint-${vms.vm(i).id}`;
    const r = (await github.listRunners({ kind: 'organization' })).find((x) => x.name === name);
    assert.ok(r, `no runner ${name}`);
    return r.id;
  };
  /** VM i's runner takes queued job i+1: GitHub marks it busy, and the in_progress news is stored. */
  const take = async (i: number, news = true): Promise<void> => {
    const jobId = github.queueJob('app', ['self-hosted']);
    github.takeJob(await runnerId(i), jobId);
    if (news) jobs[i] = job(i + 1, 'in_progress', `flint-${vms.vm(i).id}`);
  };
  return { time, github, vms, logger, jobs, scheduler, deps, runnerId, take };
}

test('draining removes an idle runner at once, waits for the busy one, and ends when its job is done', async () => {
  const { time, github, vms, logger, jobs, scheduler, deps, runnerId, take } = await setup(2);
  assert.equal(vms.vms.length, 2);
  vms.vm(0).marker({ kind: 'runner-started' });
  vms.vm(1).marker({ kind: 'runner-started' });
  await take(1);
  const idleRunner = await runnerId(0);

  const drain = startDrain(deps, GRACE_MS);
  await settle();
  assert.ok(github.calls.includes(`deleteRunner ${idleRunner}`), 'the idle runner is removed from GitHub');
  assert.deepEqual(vms.vm(0).stopped, ['flint is draining: idle runner removed'], 'and its VM stopped at once');
  assert.deepEqual(vms.vm(1).stopped, [], 'the busy VM is left to finish');
  assert.deepEqual(scheduler.snapshot().default, { starting: 0, idle: 0, busy: 1, ending: 0 });
  assert.ok(scheduler.isDraining());

  // New demand while draining starts nothing.
  jobs.push(job(9, 'queued'), job(10, 'queued'));
  scheduler.poke();
  await time.advance(10 * 60_000);
  assert.equal(vms.vms.length, 2, 'no VM starts during a drain');
  const progress = logger.lines.filter((l) => l.msg === 'drain: still waiting for busy runners');
  assert.equal(progress.length, 10, 'the wait is logged every progress interval');
  assert.deepEqual(progress.at(-1)?.obj, { busy: 1, ending: 0, vms: [vms.vm(1).id], remainingMs: GRACE_MS - 10 * 60_000 });

  vms.vm(1).marker({ kind: 'runner-exited', code: 0 });
  vms.vm(1).end();
  const outcome = await drain.done;
  assert.deepEqual(outcome, { end: 'finished', deregistered: 1, finished: 1, left: [], waitedMs: 10 * 60_000 });
  assert.deepEqual(vms.vm(1).stopped, [], 'the busy VM was never stopped');
  assert.equal(time.armed(), 0, 'no timer is left armed');
});

test('a runner still starting is removed and its VM stopped: nothing can have been handed to it', async () => {
  const { vms, deps, github } = await setup(1);
  const drain = startDrain(deps, GRACE_MS);
  const outcome = await drain.done;
  assert.deepEqual(vms.vm(0).stopped, ['flint is draining: idle runner removed']);
  assert.equal(outcome.end, 'finished');
  assert.equal(outcome.deregistered, 1);
  assert.deepEqual(await github.listRunners({ kind: 'organization' }), [], 'no registration is left');
});

test('an idle runner that just took a job (GitHub refuses to delete it, its news not yet stored) is waited for as busy', async () => {
  const { vms, deps, scheduler, take } = await setup(1);
  vms.vm(0).marker({ kind: 'runner-started' });
  await take(0, false);
  const drain = startDrain(deps, GRACE_MS);
  await settle();
  assert.deepEqual(vms.vm(0).stopped, [], 'the VM lives on');
  assert.deepEqual(scheduler.snapshot().default, { starting: 0, idle: 0, busy: 1, ending: 0 });
  vms.vm(0).end();
  const outcome = await drain.done;
  assert.equal(outcome.end, 'finished');
  assert.equal(outcome.deregistered, 0);
  assert.equal(outcome.finished, 1);
});

test('when shutdownGrace runs out the drain ends with the busy VMs left for the close to stop', async () => {
  const { time, vms, logger, deps, take } = await setup(1);
  vms.vm(0).marker({ kind: 'runner-started' });
  await take(0);
  const drain = startDrain(deps, GRACE_MS);
  await settle();
  await time.advance(GRACE_MS - 1);
  let ended = false;
  void drain.done.then(() => { ended = true; });
  await settle();
  assert.equal(ended, false, 'one millisecond before the grace ends it still waits');
  await time.advance(1);
  const outcome = await drain.done;
  assert.deepEqual(outcome, { end: 'grace-expired', deregistered: 0, finished: 0, left: [vms.vm(0).id], waitedMs: GRACE_MS });
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg.startsWith('drain: shutdownGrace ran out')));
  assert.deepEqual(vms.vm(0).stopped, [], 'the drain itself stops nothing busy: the close does');
  assert.equal(time.armed(), 0);
});

test('now() (a second signal) ends the wait at once', async () => {
  const { time, vms, deps, take } = await setup(1);
  vms.vm(0).marker({ kind: 'runner-started' });
  await take(0);
  const drain = startDrain(deps, GRACE_MS);
  await settle();
  await time.advance(5000);
  drain.now();
  const outcome = await drain.done;
  assert.deepEqual(outcome, { end: 'stopped-at-once', deregistered: 0, finished: 0, left: [vms.vm(0).id], waitedMs: 5000 });
  assert.equal(time.armed(), 0);
});

test('now() before the idle runners are removed still removes them, and waits for nothing', async () => {
  const { vms, deps, take } = await setup(2);
  vms.vm(0).marker({ kind: 'runner-started' });
  vms.vm(1).marker({ kind: 'runner-started' });
  await take(1);
  const drain = startDrain(deps, GRACE_MS);
  drain.now();
  const outcome = await drain.done;
  assert.equal(outcome.end, 'stopped-at-once');
  assert.equal(outcome.deregistered, 1);
  assert.deepEqual(vms.vm(0).stopped, ['flint is draining: idle runner removed']);
});
