import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRig, testRunner } from '../../../test/fakes/rig.ts';
import { MemoryVmStore } from '../../../test/fakes/memory-vm-store.ts';
import { newVmRecord } from './vm-store.ts';
import { persistedVmIds } from './supervisor.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { ProcHostProcesses } from '../../adapters/host/proc-host-processes.ts';

const normal = { bootMs: 100, runnerStartMs: 50, runnerRunMs: 100, runnerExitCode: 3 };

function alive(pid: number): boolean {
  return new ProcHostProcesses().isAlive(pid);
}

test('a job VM boots, runs its runner, powers off and is torn down completely', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  const states: string[] = [];
  const vm = await rig.supervisor.launch(testRunner(), { FLINT_JITCONFIG: 'c2VjcmV0LWppdA==' });
  vm.onState((s) => states.push(s));
  assert.equal((await rig.store.get(vm.id))?.state, 'preparing', 'the record is persisted before anything is made');
  const { record, code } = await vm.ended;
  assert.equal(code, undefined);
  assert.equal(record.state, 'stopped');
  assert.deepEqual(states, ['booting', 'running', 'stopped']);
  assert.equal(record.runnerExitCode, 3);
  assert.equal(record.vmmExitCode, 0);
  assert.ok(record.prepareMs !== null && record.bootedAt !== null && record.runnerStartedAt !== null && record.endedAt !== null);
  assert.ok(record.bootedAt <= record.runnerStartedAt);
  assert.deepEqual(await rig.store.get(vm.id), record, 'the store holds what the handle reports');
  // Kernel command line: fixed part, then the network, then the runner's own.
  const spec = rig.driver.started[0];
  assert.ok(spec);
  assert.match(spec.kernelArgs, /^console=ttyS0 reboot=k panic=1 ip=10\.213\.0\.2::10\.213\.0\.1:255\.255\.255\.0:flint-t1-00000:eth0:off:10\.213\.0\.1 flint\.dns=10\.213\.0\.1 quiet$/);
  assert.equal(rig.disks.configs.get(vm.id)?.FLINT_RUNNER_NAME, 'flint-t1-00000');
  // Torn down: lease and tap, disks, work dir, driver state; the VMM is gone.
  assert.equal(rig.network.leases.size, 0);
  assert.ok(!existsSync(record.workDir));
  assert.deepEqual(rig.driver.cleaned, [vm.id]);
  assert.ok(record.pid !== null && !alive(record.pid));
  assert.equal(rig.supervisor.list().length, 0);
  // The console log stays, with the markers; the secret never reached a log line.
  const log = readFileSync(join(rig.stateDir, 'consoles', `${vm.id}.log`), 'utf8');
  assert.match(log, /FLINT-MARKER booted\r\nFLINT-MARKER runner-started\r\nFLINT-MARKER runner-exited code=3/);
  assert.ok(!rig.logger.text().includes('c2VjcmV0LWppdA=='));
  assert.match(rig.logger.text(), /vm ended.*"bootMs":\d+/);
});

test('a guest that never prints the booted marker is stopped at the boot timeout and fails', async (t) => {
  const rig = makeRig({ bootMs: null }, { config: { bootTimeoutMs: 300 } });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record, code } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(code, 'FLINT_ERR_VM_BOOT_TIMEOUT');
  assert.match(record.reason ?? '', /boot timeout/);
  assert.equal(rig.network.leases.size, 0);
  assert.ok(!existsSync(record.workDir));
});

test('a hanging job is stopped at the maximum lifetime and fails', async (t) => {
  const rig = makeRig({ bootMs: 50, runnerStartMs: 10, runnerRunMs: null });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {}, { maxLifetimeMs: 2500 }); // room for a slow node start on a busy host
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.match(record.reason ?? '', /maximum lifetime/);
  assert.ok(record.runnerStartedAt !== null);
  assert.ok(record.pid !== null && !alive(record.pid));
});

test('a guest that ignores the stop is killed after the grace period', async (t) => {
  const rig = makeRig({ bootMs: 50, ignoreStop: true }, { config: { stopGraceMs: 200 } });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {}, { maxLifetimeMs: null });
  await new Promise<void>((resolve) => vm.onState((s) => { if (s === 'running') resolve(); }));
  const { record } = await vm.stop('operator asked');
  assert.equal(record.state, 'stopped');
  assert.equal(record.reason, 'operator asked');
  assert.equal(record.vmmSignal, 'SIGKILL');
});

test('a VMM that crashes while the job runs ends failed and is torn down', async (t) => {
  const rig = makeRig({ bootMs: 50, runnerStartMs: 10, runnerRunMs: null, crash: { afterMs: 300, signal: 'SIGSEGV' } });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(record.vmmSignal, 'SIGSEGV');
  assert.match(record.reason ?? '', /ended abnormally \(signal SIGSEGV\)/);
  assert.equal(rig.network.leases.size, 0);
});

test('a VMM that dies during boot fails with the reason, never "stopped"', async (t) => {
  const rig = makeRig({ bootMs: null, crash: { afterMs: 100, signal: 'SIGKILL' } });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.match(record.reason ?? '', /before the guest booted/);
});

test('disks that cannot be made fail the VM and release the address attached meanwhile', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  rig.disks.failPrepare = true;
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record, code } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(code, 'FLINT_ERR_VM_PREPARE_FAILED');
  assert.match(record.reason ?? '', /no space left/);
  assert.equal(rig.network.leases.size, 0);
  assert.equal(rig.driver.started.length, 0);
  assert.ok(!existsSync(record.workDir));
});

test('a disk failure while the tap is still being made waits for it, then releases it (no lease leaks)', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  rig.disks.failPrepare = true;
  rig.network.attachDelayMs = 200;
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  // Long enough for a late attach to land if teardown had not waited for it.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rig.network.leases.size, 0);
});

test('a VMM that does not start fails the VM with FLINT_ERR_VM_START_FAILED and tears down', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  rig.driver.failStart = true;
  const vm = await rig.supervisor.launch(testRunner(), {});
  const { record, code } = await vm.ended;
  assert.equal(code, 'FLINT_ERR_VM_START_FAILED');
  assert.equal(record.state, 'failed');
  assert.deepEqual(rig.driver.cleaned, [vm.id], 'driver cleanup runs even when start failed');
  assert.equal(rig.network.leases.size, 0);
});

test('a stop that arrives while the host side is prepared ends the VM before its VMM ever starts', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  let release!: () => void; // assigned synchronously by the Promise executor below
  const gate = new Promise<void>((r) => { release = r; });
  let seenId = '';
  const vm = await rig.supervisor.launch(testRunner(), async (id) => { seenId = id; await gate; return { FLINT_JITCONFIG: 'x' }; });
  const stopped = vm.stop('demand went away');
  release();
  const { record } = await stopped;
  assert.equal(seenId, vm.id, 'the guest env function learns the VM id (to register the runner under its name)');
  assert.equal(record.state, 'stopped');
  assert.equal(record.reason, 'demand went away');
  assert.equal(rig.driver.started.length, 0);
  assert.equal(rig.network.leases.size, 0);
});

test('the JIT registration runs beside the work dir, the lease and the console log; a failed one tears all of them down', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  let fail!: (e: Error) => void; // assigned synchronously by the Promise executor below
  const registration = new Promise<Record<string, string>>((_, reject) => { fail = reject; });
  let asked = false;
  const vm = await rig.supervisor.launch(testRunner(), async () => { asked = true; return registration; });
  const workDir = join(rig.stateDir, 'vms', vm.id);
  const log = join(rig.stateDir, 'consoles', `${vm.id}.log`);
  const made = (): boolean => asked && rig.network.leases.has(vm.id) && existsSync(workDir) && existsSync(log);
  for (let turn = 0; turn < 2000 && !made(); turn++) await new Promise((r) => setImmediate(r));
  assert.deepEqual({ asked, lease: rig.network.leases.has(vm.id), workDir: existsSync(workDir), log: existsSync(log), state: vm.state },
    { asked: true, lease: true, workDir: true, log: true, state: 'preparing' }, 'all made while GitHub has not answered yet');
  fail(new Error('GitHub said no'));
  const { record, code } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(code, 'FLINT_ERR_VM_PREPARE_FAILED');
  assert.match(record.reason ?? '', /GitHub said no/);
  assert.equal(rig.driver.started.length, 0);
  assert.equal(rig.network.leases.size, 0, 'the lease went');
  assert.equal(existsSync(workDir), false, 'the work dir went');
});

test('console input reaches the guest and its output reaches console listeners', async (t) => {
  const rig = makeRig({ bootMs: 50 });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {}, { maxLifetimeMs: null });
  let seen = '';
  const echoed = new Promise<void>((resolve) => vm.onConsole((c) => { seen += c.toString(); if (seen.includes('echo: uname -a')) resolve(); }));
  await new Promise<void>((resolve) => vm.onMarker((m) => { if (m.kind === 'booted') resolve(); }));
  vm.writeConsole('uname -a\n');
  await echoed;
  const { record } = await vm.stop();
  assert.equal(record.state, 'stopped');
});

test('shutdown stops every VM, and launches after it are refused', async (t) => {
  const rig = makeRig({ bootMs: 50 });
  t.after(() => rig.close());
  const a = await rig.supervisor.launch(testRunner(), {});
  const b = await rig.supervisor.launch(testRunner(), {});
  assert.notEqual(a.id, b.id);
  const outcomes = await rig.supervisor.shutdown('flint is stopping');
  assert.deepEqual(outcomes.map((o) => o.record.state), ['stopped', 'stopped']);
  await assert.rejects(rig.supervisor.launch(testRunner(), {}), (e: unknown) => isFlintError(e, 'FLINT_ERR_VM_SUPERVISOR_CLOSED'));
  assert.equal(rig.network.leases.size, 0);
});

test('shutdown ends every VM even when the store fails every write: it never waits on the database', async (t) => {
  const store = new MemoryVmStore();
  const rig = makeRig({ bootMs: 50 }, { store });
  t.after(() => rig.close());
  const vm = await rig.supervisor.launch(testRunner(), {});
  await new Promise<void>((resolve) => { const off = vm.onState((s) => { if (s === 'running') { off(); resolve(); } }); });
  store.update = async () => { throw new Error('the database is gone'); };
  const outcomes = await rig.supervisor.shutdown('flint is stopping');
  assert.equal(outcomes.length, 1);
  assert.equal(rig.network.leases.size, 0, 'torn down all the same');
});

test('a launch does not wait for its record\'s commit, but the VM makes nothing before it; one whose record cannot be written ends failed with nothing made', async (t) => {
  const store = new MemoryVmStore();
  const rig = makeRig(normal, { store });
  t.after(() => rig.close());
  let commit!: () => void; // assigned by the insert below
  let fail!: (e: Error) => void;
  const write = store.insert.bind(store);
  store.insert = (r) => new Promise<void>((resolve, reject) => { commit = () => { write(r).then(resolve, reject); }; fail = reject; });
  let asked = 0;
  const env = async (): Promise<Record<string, string>> => { asked++; return { FLINT_JITCONFIG: 'x' }; };
  const vm = await rig.supervisor.launch(testRunner(), env);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual({ asked, leases: rig.network.leases.size, dir: existsSync(join(rig.stateDir, 'vms', vm.id)), state: vm.state },
    { asked: 0, leases: 0, dir: false, state: 'preparing' }, 'nothing made while the record is not committed');
  commit();
  await new Promise<void>((resolve) => { const off = vm.onState((s) => { if (s === 'running') { off(); resolve(); } }); });
  assert.equal(asked, 1);
  await vm.stop();

  const stopped = await rig.supervisor.launch(testRunner(), env);
  void stopped.stop('demand went away');
  commit();
  const early = await stopped.ended;
  assert.deepEqual({ state: early.record.state, reason: early.record.reason, asked, started: rig.driver.started.length },
    { state: 'stopped', reason: 'demand went away', asked: 1, started: 1 }, 'a stop while the record is written: nothing is made, not even a registration');

  const broken = await rig.supervisor.launch(testRunner(), env);
  fail(new Error('disk full'));
  const { record, code } = await broken.ended;
  assert.equal(record.state, 'failed');
  assert.equal(code, 'FLINT_ERR_STORE_WRITE_FAILED');
  assert.match(record.reason ?? '', /record could not be written: disk full/);
  assert.deepEqual({ asked, leases: rig.network.leases.size, started: rig.driver.started.length, dir: existsSync(join(rig.stateDir, 'vms', broken.id)) },
    { asked: 1, leases: 0, started: 1, dir: false }, 'nothing made for it');
  assert.equal(rig.supervisor.list().length, 0);
});

test('a runner on an unknown network is refused before anything is made', async (t) => {
  const rig = makeRig(normal);
  t.after(() => rig.close());
  await assert.rejects(rig.supervisor.launch(testRunner({ network: 'nope' }), {}), (e: unknown) => isFlintError(e, 'FLINT_ERR_VM_UNKNOWN_NETWORK'));
  assert.deepEqual(await rig.store.listRecent('t1', 10), []);
});

test('the start-up sweep kills a leftover VMM, releases its resources, and touches nothing of another instance', async (t) => {
  const rig = makeRig(normal, { instanceId: 't1' });
  t.after(() => rig.close());
  // What a Flint killed mid-boot leaves: a record in `booting`, a VMM still
  // running whose command line names the work dir, disks, a lease.
  const id = 't1-00042';
  const workDir = join(rig.stateDir, 'vms', id);
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'scratch.img'), '');
  const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', join(workDir, 'drive.img')], { stdio: 'ignore', detached: true });
  t.after(() => { try { process.kill(orphan.pid ?? 0, 'SIGKILL'); } catch { /* gone */ } });
  await new Promise((r) => orphan.once('spawn', r));
  await rig.store.insert({ ...newVmRecord({ id, instanceId: 't1', runner: 'default', hypervisor: 'qemu', workDir, createdAt: 1 }), state: 'booting', pid: orphan.pid ?? null });
  await rig.network.attach(id, 'flint-' + id, { name: 'flbr0', v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: [] });
  // Another instance's VM on the same host and store: must survive the sweep.
  const otherId = 't2-00001';
  const otherDir = join(rig.stateDir, 'vms', otherId);
  mkdirSync(otherDir, { recursive: true });
  await rig.store.insert({ ...newVmRecord({ id: otherId, instanceId: 't2', runner: 'default', hypervisor: 'qemu', workDir: otherDir, createdAt: 1 }), state: 'running' });
  await rig.network.attach(otherId, 'flint-' + otherId, { name: 'flbr0', v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: [] });

  const exited = new Promise((r) => orphan.once('exit', r));
  const report = await rig.supervisor.sweep();
  await exited;
  assert.deepEqual(report.vms, [id]);
  assert.deepEqual(report.killed, [orphan.pid]);
  const rec = await rig.store.get(id);
  assert.equal(rec?.state, 'failed');
  assert.equal(rec?.reason, 'flint restarted');
  assert.ok(!existsSync(workDir));
  assert.ok(!rig.network.leases.has(id));
  assert.deepEqual(rig.driver.cleaned, [id]);
  // The other instance's VM is untouched.
  assert.equal((await rig.store.get(otherId))?.state, 'running');
  assert.ok(existsSync(otherDir));
  assert.ok(rig.network.leases.has(otherId));
});

test('the start-up sweep leaves alone a VM whose owning Flint process is still alive (an interactive session next to the daemon)', async (t) => {
  const rig = makeRig(normal, { instanceId: 't1' });
  t.after(() => rig.close());
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  await new Promise((r) => other.once('spawn', r));
  const procs = new ProcHostProcesses();
  const stat = readFileSync(`/proc/${other.pid}/stat`, 'utf8');
  const owner = `${other.pid}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  assert.ok(procs.isOwnerAlive(owner));
  assert.ok(!procs.isOwnerAlive(`${other.pid}:1`), 'a reused pid with another start time is not the owner');
  const id = 't1-00077';
  const workDir = join(rig.stateDir, 'vms', id);
  mkdirSync(workDir, { recursive: true });
  await rig.store.insert({ ...newVmRecord({ id, instanceId: 't1', runner: 'default', hypervisor: 'qemu', workDir, createdAt: 1, owner }), state: 'running' });
  await rig.network.attach(id, 'flint-' + id, { name: 'flbr0', v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: [] });
  const report = await rig.supervisor.sweep();
  assert.deepEqual(report.others, [id]);
  assert.deepEqual(report.vms, []);
  assert.equal((await rig.store.get(id))?.state, 'running');
  assert.ok(existsSync(workDir));
  assert.ok(rig.network.leases.has(id), 'its tap and lease survive the network sweep');
  // Once that process is gone, the record is a leftover like any other.
  const gone = new Promise((r) => other.once('exit', r));
  other.kill('SIGKILL');
  await gone;
  const again = await rig.supervisor.sweep();
  assert.deepEqual(again.vms, [id]);
  assert.ok(!rig.network.leases.has(id));
});

test('the console-retention loop deletes this instance\'s old console logs when it starts, and stops with shutdown', async (t) => {
  const rig = makeRig(normal, { config: { consoleRetentionMs: 3600_000 } });
  t.after(() => rig.close());
  const dir = join(rig.stateDir, 'consoles');
  mkdirSync(dir, { recursive: true });
  const old = join(dir, 't1-00100.log');
  writeFileSync(old, 'old');
  const past = (Date.now() - 2 * 3600_000) / 1000;
  utimesSync(old, past, past);
  const loop = rig.supervisor.startConsoleRetention();
  // The first pass starts at once; shutdown waits for a pass in flight.
  await rig.supervisor.shutdown();
  assert.ok(!existsSync(old));
  assert.match(rig.logger.text(), /old console logs deleted \{"loop":"console-retention","removed":1\}/);
  assert.equal(loop.status().runs, 1);
  assert.equal(loop.status().nextRunAt, undefined, 'no pass is scheduled after shutdown');
});

test('a stop at any moment of the life (preparing, booting, running, ending) ends in a terminal state with nothing left', async (t) => {
  const rig = makeRig({ bootMs: 60, runnerStartMs: 20, runnerRunMs: 80 });
  t.after(() => rig.close());
  const procs = new ProcHostProcesses();
  for (const delayMs of [0, 1, 5, 20, 50, 90, 130, 200, 400]) {
    const vm = await rig.supervisor.launch(testRunner(), { FLINT_JITCONFIG: 'x' });
    await new Promise((r) => setTimeout(r, delayMs));
    const { record } = await vm.stop(`stop after ${delayMs} ms`);
    assert.ok(record.state === 'stopped' || record.state === 'failed', `${delayMs} ms: ${record.state}`);
    assert.ok(record.endedAt !== null);
    assert.ok(!existsSync(record.workDir), `${delayMs} ms: work dir left`);
    assert.ok(!rig.network.leases.has(vm.id), `${delayMs} ms: lease left`);
    assert.deepEqual(procs.findVm(vm.id), [], `${delayMs} ms: VMM left`);
    // The stored record agrees, and a second stop is harmless.
    assert.deepEqual((await rig.store.get(vm.id))?.state, record.state);
    assert.deepEqual((await vm.stop('again')).record, record);
  }
  assert.deepEqual(await rig.store.listUnfinished('t1'), []);
});

test('VM ids: one number is taken ahead, so a launch finds its id ready; ids never repeat; a failed reservation fails only the launch that takes it', async () => {
  const store = new MemoryVmStore();
  const asked: number[] = [];
  let failNext = false;
  const counting = Object.assign(Object.create(store) as MemoryVmStore, {
    nextSequence: async (instance: string) => {
      if (failNext) {
        failNext = false;
        throw new Error('store down');
      }
      const n = await store.nextSequence(instance);
      asked.push(n);
      return n;
    },
  });
  const ids = persistedVmIds(counting, 'ab1');
  assert.equal(await ids.next(), 'ab1-00000');
  assert.deepEqual(asked, [0, 1], 'the next number was taken with the first');
  failNext = true;
  assert.equal(await ids.next(), 'ab1-00001', 'the number taken ahead, though the store fails now');
  await assert.rejects(ids.next(), /store down/, 'the failed reservation fails the launch that takes it');
  assert.equal(await ids.next(), 'ab1-00002', 'the failed reservation took no number');
  // A new source (a restart) skips what the old one had taken ahead.
  assert.equal(await persistedVmIds(counting, 'ab1').next(), 'ab1-00004');
});
