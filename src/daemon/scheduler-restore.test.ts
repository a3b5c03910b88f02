/**
 * A restarted scheduler rebuilds its runners from the stored runner states
 * and the VMs the supervisor adopted: it starts no VM beyond demand and
 * still cleans each adopted runner up when its VM ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobListStore } from '../../test/fakes/job-list-store.ts';
import { Scheduler } from './scheduler.ts';
import type { VmLauncher } from './scheduler.ts';
import type { RunnerConfig } from '../config/types.ts';
import type { RunnerStateStore, StoredJob } from './ports/store.ts';
import type { GuestEnv, VmHandle, VmOutcome } from './vm/supervisor.ts';
import type { ConsoleMarker } from '../core/guest-contract.ts';
import { createMemoryRunnerStates } from '../adapters/store/memory-runner-states.ts';

const def: RunnerConfig = {
  name: 'default', group: 'Default', labels: ['self-hosted', 'linux'], kernel: '/k', filesystem: '/r', jailer: '/j', firecracker: '/f',
  hypervisor: 'qemu', network: 'br0', cpuCount: 2, memorySize: 1024, smt: false, diskSize: 1 << 30, maxRunners: 3, minIdle: 0,
  jobTimeoutSeconds: 3600, kernelArgs: '', uid: 123, gid: 100, static: false, idleGraceSeconds: 60,
};

const job = (id: number, status: StoredJob['status'], runnerName: string | null = null): StoredJob => ({
  id, runId: id, runAttempt: 1, repository: 'acme/app', name: 'build', workflowName: 'ci', labels: ['self-hosted'], definition: 'default',
  status, conclusion: null, runnerName, firstSeenAt: 0, updatedAt: 0,
});

interface FakeVm extends VmHandle {
  marker(m: ConsoleMarker): void;
  end(): void;
  readonly stops: string[];
}

/** A VM handle the test drives: markers, end, stop. Survives "restarts" the way an adopted VM does. */
function fakeVm(id: string): FakeVm {
  const markers: ((m: ConsoleMarker, at: number) => void)[] = [];
  let resolveEnded!: (o: VmOutcome) => void; // assigned by the Promise executor below
  const ended = new Promise<VmOutcome>((r) => { resolveEnded = r; });
  const end = (): void => resolveEnded({ record: { state: 'stopped', reason: null } as VmOutcome['record'] }); // only state/reason are read
  const stops: string[] = [];
  return {
    id, runner: 'default', state: 'running', ended, stops,
    onConsole: () => () => {}, onState: () => () => {}, writeConsole: () => {},
    onMarker: (l) => { markers.push(l); return () => {}; },
    marker: (m) => markers.forEach((l) => l(m, 0)),
    end,
    stop: async (reason?: string) => { stops.push(reason ?? ''); end(); return ended; },
  };
}

class Launcher implements VmLauncher {
  readonly vms: FakeVm[] = [];
  async launch(_runner: RunnerConfig, guestEnv: GuestEnv): Promise<VmHandle> {
    const vm = fakeVm(`t1-${String(this.vms.length).padStart(5, '0')}`);
    this.vms.push(vm);
    if (typeof guestEnv === 'function') await guestEnv(vm.id);
    return vm;
  }
}

function flint(jobs: StoredJob[], states: RunnerStateStore, clock: { now(): number }) {
  const launcher = new Launcher();
  const deleted: number[] = [];
  let nextId = 500;
  const noop = (): void => {};
  const scheduler = new Scheduler({
    config: { runners: [def], github: { appId: '1', organization: 'acme', webhookSecrets: ['s'], privateKey: 'k', apiUrl: 'http://x', scanBudget: 1000 } },
    store: jobListStore(jobs),
    github: {
      runnerGroupId: async () => 1,
      createJitRunner: async (req) => ({ runnerId: nextId++, runnerName: req.name, encodedJitConfig: 'jit' }),
      deleteRunner: async (_scope, id) => { deleted.push(id); },
    },
    vms: launcher,
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    clock,
    random: () => 0.5,
    budget: () => ({ cpus: 100, memoryMib: 100_000 }),
    runnerStates: { store: states, instanceId: 't1' },
  });
  return { scheduler, launcher, deleted };
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r)); };

test('flint killed while a job runs: the restarted scheduler adopts the busy runner, starts no second VM, and removes it when its VM ends', async () => {
  const states = createMemoryRunnerStates();
  const clock = { t: 1000, now: () => clock.t };
  const jobs = [job(1, 'queued')];
  const before = flint(jobs, states, clock);
  await before.scheduler.tick();
  const vm = before.launcher.vms[0];
  assert.ok(vm);
  vm.marker({ kind: 'runner-started' });
  jobs[0] = job(1, 'in_progress', 'flint-t1-00000');
  await before.scheduler.tick();
  await settle();
  assert.deepEqual((await states.list('t1')).map((s) => [s.vmId, s.phase, s.githubRunnerId]), [['t1-00000', 'busy', 500]]);
  // The process dies here: nothing of `before` runs any more. The VM lives on and is adopted.

  const after = flint(jobs, states, clock);
  await after.scheduler.restore([vm]);
  assert.deepEqual(after.scheduler.snapshot(), { default: { starting: 0, idle: 0, busy: 1, ending: 0 } });
  await after.scheduler.tick();
  assert.equal(after.launcher.vms.length, 0, 'no VM for the job already running in the adopted VM');
  vm.marker({ kind: 'runner-exited', code: 0 });
  vm.end();
  await after.scheduler.settled();
  assert.deepEqual(after.deleted, [500], 'the adopted runner\'s registration is removed with its VM');
  assert.deepEqual(await states.list('t1'), []);
});

test('an adopted idle runner keeps its idle time: it is reaped after the grace that began before the restart', async () => {
  const states = createMemoryRunnerStates();
  const clock = { t: 0, now: () => clock.t };
  await states.put({ vmId: 't1-00007', instanceId: 't1', definition: 'default', phase: 'idle', githubRunnerId: 42, idleSince: 0, startedAt: 0 });
  const vm = fakeVm('t1-00007');
  const after = flint([], states, clock);
  await after.scheduler.restore([vm]);
  clock.t = 30_000;
  await after.scheduler.tick();
  assert.deepEqual(vm.stops, [], 'still within its grace');
  clock.t = 60_000;
  await after.scheduler.tick();
  assert.deepEqual(after.deleted, [42]);
  assert.equal(vm.stops.length, 1);
  await after.scheduler.settled();
  assert.deepEqual(await states.list('t1'), []);
});

test('a runner that came online while no Flint watched is restored idle, its grace counted from the restart', async () => {
  const states = createMemoryRunnerStates();
  const clock = { t: 5000, now: () => clock.t };
  await states.put({ vmId: 't1-00003', instanceId: 't1', definition: 'default', phase: 'starting', githubRunnerId: 9, idleSince: null, startedAt: 0 });
  const vm = { ...fakeVm('t1-00003'), runnerStartedAt: 4000 };
  const after = flint([], states, clock);
  await after.scheduler.restore([vm]);
  assert.deepEqual(after.scheduler.snapshot(), { default: { starting: 0, idle: 1, busy: 0, ending: 0 } });
  await settle();
  assert.deepEqual((await states.list('t1')).map((s) => [s.phase, s.idleSince]), [['idle', 5000]]);
  vm.end();
  await after.scheduler.settled();
});

test('states of VMs that were not adopted are dropped; an adopted VM without a state counts as starting', async () => {
  const states = createMemoryRunnerStates();
  const clock = { t: 0, now: () => clock.t };
  await states.put({ vmId: 't1-00001', instanceId: 't1', definition: 'default', phase: 'busy', githubRunnerId: 7, idleSince: null, startedAt: 0 });
  const orphan = fakeVm('t1-00002');
  const after = flint([job(9, 'queued')], states, clock);
  await after.scheduler.restore([orphan]);
  assert.deepEqual(after.scheduler.snapshot(), { default: { starting: 1, idle: 0, busy: 0, ending: 0 } });
  await after.scheduler.tick();
  assert.equal(after.launcher.vms.length, 0, 'the starting runner already covers the queued job');
  await settle();
  assert.deepEqual((await states.list('t1')).map((s) => [s.vmId, s.phase]), [['t1-00002', 'starting']]);
  orphan.end();
  await after.scheduler.settled();
  assert.deepEqual(await states.list('t1'), []);
});

test('runner states changed while an earlier write is under way are written in the next flush, each runner once with its latest state', async () => {
  const rows = createMemoryRunnerStates();
  const log: string[] = [];
  // Writes wait while the gate is shut, as a slow store's would.
  let shut = true;
  const waiting: (() => void)[] = [];
  const gate = async (): Promise<void> => { if (shut) await new Promise<void>((r) => waiting.push(r)); };
  const slow: RunnerStateStore = {
    list: (i) => rows.list(i),
    put: async (st) => { log.push(`${st.vmId} ${st.phase}`); await gate(); await rows.put(st); },
    remove: async (id) => { log.push(`${id} removed`); await gate(); await rows.remove(id); },
  };
  const clock = { t: 0, now: () => clock.t };
  const { scheduler, launcher } = flint([job(1, 'queued'), job(2, 'queued')], slow, clock);
  await scheduler.tick();
  await settle();
  assert.deepEqual(log, ['t1-00000 starting'], 'the first write is under way; the second runner\'s waits for the next flush');
  const [a, b] = launcher.vms;
  assert.ok(a && b);
  b.marker({ kind: 'runner-started' });
  a.marker({ kind: 'runner-started' });
  a.marker({ kind: 'runner-exited', code: 0 });
  await settle();
  assert.equal(log.length, 1, 'nothing more is written while the first write is under way');
  shut = false;
  for (const r of waiting.splice(0)) r();
  await settle();
  assert.deepEqual(log.slice(1).sort(), ['t1-00000 ending', 't1-00001 idle'], 'then one write per runner, with its latest state');
  assert.deepEqual((await rows.list('t1')).map((st) => [st.vmId, st.phase]).sort(), [['t1-00000', 'ending'], ['t1-00001', 'idle']]);
});

test('phase changes queued behind a slow store are written once, newest state last; a removal queued after them wins', async () => {
  const memory = createMemoryRunnerStates();
  const writes: string[] = [];
  let release: (() => void) | undefined;
  // Each write waits until the test lets it through: the store is busy.
  const states: RunnerStateStore = {
    put: async (st) => { writes.push(`put ${st.phase}`); await new Promise<void>((r) => { release = r; }); await memory.put(st); },
    remove: async (id) => { writes.push('remove'); await memory.remove(id); },
    list: (instance) => memory.list(instance),
  };
  const clock = { t: 1000, now: () => clock.t };
  const jobs = [job(1, 'queued')];
  const { scheduler, launcher } = flint(jobs, states, clock);
  await scheduler.tick();
  await settle();
  const vm = launcher.vms[0];
  assert.ok(vm);
  assert.deepEqual(writes, ['put starting'], 'the first write is under way');
  vm.marker({ kind: 'runner-started' });
  jobs[0] = job(1, 'in_progress', 'flint-t1-00000');
  await scheduler.tick();
  release?.();
  await settle();
  assert.deepEqual(writes, ['put starting', 'put busy'], 'idle and busy came while the store was busy: only the newest is written');
  release?.();
  await settle();
  assert.deepEqual((await memory.list('t1')).map((s) => [s.phase, s.githubRunnerId]), [['busy', 500]]);
  vm.marker({ kind: 'runner-exited', code: 0 });
  vm.end();
  await settle();
  release?.();
  await scheduler.settled();
  assert.deepEqual(await memory.list('t1'), [], 'the removal came last and won');
});
