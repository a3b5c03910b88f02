import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type VmLauncher } from './scheduler.ts';
import type { RunnerConfig } from '../config/types.ts';
import type { StoredJob } from './ports/store.ts';
import type { GuestEnv, VmHandle, VmOutcome } from './vm/supervisor.ts';
import type { ConsoleMarker } from '../core/guest-contract.ts';

const runner = (over: Partial<RunnerConfig> = {}): RunnerConfig => ({
  name: 'default', group: 'Default', labels: ['self-hosted', 'linux'], kernel: '/k', filesystem: '/r', jailer: '/j', firecracker: '/f',
  hypervisor: 'qemu', network: 'br0', cpuCount: 2, memorySize: 1024, smt: false, diskSize: 1 << 30, maxRunners: 3, minIdle: 0,
  jobTimeoutSeconds: 3600, kernelArgs: '', uid: 123, gid: 100, static: false, ...over,
});

const job = (id: number, status: StoredJob['status'], runnerName: string | null = null): StoredJob => ({
  id, runId: id, runAttempt: 1, repository: 'acme/app', name: 'build', workflowName: 'ci', labels: ['self-hosted'], definition: 'default',
  status, conclusion: null, runnerName, firstSeenAt: 0, updatedAt: 0,
});

/** A VM launcher that records launches and lets the test play the guest. */
class FakeVms implements VmLauncher {
  readonly launched: { id: string; env: Readonly<Record<string, string>>; marker: (m: ConsoleMarker) => void; end: () => void; stopped: string[] }[] = [];
  private n = 0;
  async launch(_runner: RunnerConfig, guestEnv: GuestEnv): Promise<VmHandle> {
    const id = `t1-${String(this.n++).padStart(5, '0')}`;
    const env = typeof guestEnv === 'function' ? await guestEnv(id) : guestEnv;
    const markers: ((m: ConsoleMarker, at: number) => void)[] = [];
    let resolveEnded!: (o: VmOutcome) => void;
    const ended = new Promise<VmOutcome>((r) => { resolveEnded = r; });
    const entry = { id, env, stopped: [] as string[], marker: (m: ConsoleMarker) => markers.forEach((l) => l(m, 0)), end: () => resolveEnded({ record: { state: 'stopped' } as VmOutcome['record'] }) };
    this.launched.push(entry);
    return {
      id, runner: 'default', state: 'booting', ended,
      onConsole: () => () => {}, onState: () => () => {}, writeConsole: () => {},
      onMarker: (l) => { markers.push(l); return () => {}; },
      stop: async (reason?: string) => { entry.stopped.push(reason ?? ''); entry.end(); return ended; },
    };
  }
}

function setup(jobs: StoredJob[], runners = [runner()]) {
  const vms = new FakeVms();
  const deleted: number[] = [];
  let nextRunnerId = 100;
  const config = { runners, github: { appId: '1', organization: 'acme', webhookSecrets: ['s'], privateKey: 'k', apiUrl: 'http://x' } };
  const scheduler = new Scheduler({
    config,
    store: { listJobs: async (f) => jobs.filter((j) => f?.status === undefined || j.status === f.status) },
    github: {
      runnerGroupId: async () => 1,
      createJitRunner: async (req) => ({ runnerId: nextRunnerId++, runnerName: req.name, encodedJitConfig: `jit-for-${req.name}` }),
      deleteRunner: async (_scope, id) => { deleted.push(id); },
    },
    vms,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    clock: { now: () => 0 },
    budget: () => ({ cpus: 100, memoryMib: 100_000 }),
    guestExtras: { FLINT_RUNNER_COMMAND: 'true' },
  });
  return { scheduler, vms, deleted, jobs, config };
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

test('idle runners beyond the warm pool are unregistered and stopped; busy ones are kept', async () => {
  const { scheduler, vms, deleted, config, jobs } = setup([], [runner({ minIdle: 3 })]);
  await scheduler.tick();
  assert.equal(vms.launched.length, 3);
  vms.launched.forEach((v) => v.marker({ kind: 'runner-started' }));
  jobs.push(job(7, 'in_progress', 'flint-t1-00002'));
  config.runners = [runner({ minIdle: 0 })];
  await scheduler.tick();
  assert.deepEqual(deleted.sort(), [100, 101], 'the two idle runners are unregistered');
  assert.deepEqual(vms.launched.map((v) => v.stopped.length), [1, 1, 0], 'the busy one keeps running');
  await scheduler.stop();
});
