/**
 * Start-up adoption: a Flint killed while its VMs ran is restarted; the new
 * supervisor takes over every VM whose VMM is still the recorded process
 * (pid and start time) and keeps what it owns, while the sweep removes the
 * VMs whose VMM is gone. The "VMMs" are real processes (fakes/fake-driver.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { procStat } from '../../adapters/hypervisor/vmm-process.ts';
import { ProcHostProcesses } from '../../adapters/host/proc-host-processes.ts';
import { newVmRecord } from './vm-store.ts';
import { lostHostReason } from '../ports/fleet.ts';
import type { VmState } from '../../core/vm-state.ts';
import { makeRig, testNetwork, testRunner } from '../../../test/fakes/rig.ts';
import type { Rig } from '../../../test/fakes/rig.ts';

const forever = { bootMs: 10, runnerStartMs: 10, runnerRunMs: null } as const;
/** The owner a killed Flint left in its records: a pid that is not alive with this start time. */
const DEAD_OWNER = '4194303:1';

/** A VMM a killed Flint left running: a real process, its record (with the handle), its lease and work dir. */
async function leftRunning(t: TestContext, rig: Rig, id: string, state: VmState, opts: { startTime?: string } = {}): Promise<{ pid: number }> {
  const workDir = join(rig.stateDir, 'vms', id);
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'scratch.img'), '');
  const vmm = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', join(workDir, 'drive.img')], { stdio: 'ignore', detached: true });
  t.after(() => { try { process.kill(vmm.pid ?? 0, 'SIGKILL'); } catch { /* gone */ } });
  await new Promise((r) => vmm.once('spawn', r));
  const pid = vmm.pid ?? 0;
  const startTime = opts.startTime ?? (await procStat(pid))?.startTime ?? '';
  await rig.store.insert({
    ...newVmRecord({ id, instanceId: 't1', runner: 'default', hypervisor: 'qemu', workDir, createdAt: Date.now(), owner: DEAD_OWNER }),
    state, pid, vmmStartTime: startTime, controlSocket: join(workDir, 'qemu.qmp'), consoleFile: join(workDir, 'console.out'), startedAt: Date.now(),
  });
  await rig.network.attach(id, `flint-${id}`, testNetwork);
  return { pid };
}

test('flint restarted while VMs run: the live one is adopted and keeps its lease and work dir, the one whose pid was reused is swept', async (t) => {
  const rig = makeRig(forever);
  t.after(() => rig.close());
  const live = await leftRunning(t, rig, 't1-00001', 'running');
  // Recorded start time differs from the process's: it is another process now, never adopted.
  await leftRunning(t, rig, 't1-00002', 'running', { startTime: '1' });

  const adopted = await rig.supervisor.adopt([testRunner()]);
  assert.deepEqual(adopted.map((vm) => vm.id), ['t1-00001']);
  assert.deepEqual(rig.driver.adopted, ['t1-00001']);
  const report = await rig.supervisor.sweep();
  assert.deepEqual(report.vms, ['t1-00002'], 'only the VM that could not be adopted is swept');
  assert.ok(rig.network.leases.has('t1-00001'), 'the adopted VM keeps its tap and lease');
  assert.ok(!rig.network.leases.has('t1-00002'));
  assert.ok(existsSync(join(rig.stateDir, 'vms', 't1-00001', 'scratch.img')), 'and its disks');
  assert.equal((await rig.store.get('t1-00001'))?.owner, new ProcHostProcesses().self(), 'the new Flint owns it now');
  assert.deepEqual(rig.supervisor.list().map((vm) => vm.id), ['t1-00001']);
  assert.ok(existsSync(`/proc/${live.pid}`));

  const [vm] = adopted;
  assert.ok(vm !== undefined);
  const outcome = await vm.stop('test stops it');
  assert.equal(outcome.record.state, 'stopped');
  assert.ok(!rig.network.leases.has('t1-00001'), 'its teardown released the lease');
  assert.ok(!existsSync(join(rig.stateDir, 'vms', 't1-00001')));
  assert.ok(rig.driver.cleaned.includes('t1-00001'));
});

test('a VM whose record the fleet failed while its VMM ran (the host was marked lost) is not adopted: the sweep kills its VMM and removes its work dir, tap and lease', async (t) => {
  const rig = makeRig(forever);
  t.after(() => rig.close());
  const left = await leftRunning(t, rig, 't1-00003', 'running');
  assert.equal(await rig.store.update('t1-00003', 'running', { state: 'failed', reason: lostHostReason('t1'), endedAt: Date.now() }), true);

  assert.deepEqual(await rig.supervisor.adopt([testRunner()]), []);
  const report = await rig.supervisor.sweep();
  assert.deepEqual([report.vms, report.strayDirs, report.killed], [[], ['t1-00003'], [left.pid]]);
  assert.ok(!existsSync(`/proc/${left.pid}`) || (await procStat(left.pid))?.state === 'Z', 'the VMM is gone');
  assert.ok(!existsSync(join(rig.stateDir, 'vms', 't1-00003')));
  assert.ok(!rig.network.leases.has('t1-00003'));
  assert.equal((await rig.store.get('t1-00003'))?.reason, lostHostReason('t1'), 'the record stays as the leader wrote it');
});

test('an adopted VM whose VMM ends on its own (the guest powered off) is torn down and recorded stopped', async (t) => {
  const rig = makeRig(forever);
  t.after(() => rig.close());
  const { pid } = await leftRunning(t, rig, 't1-00003', 'running');
  const [vm] = await rig.supervisor.adopt([testRunner()]);
  assert.ok(vm !== undefined);
  process.kill(pid, 'SIGTERM');
  const outcome = await vm.ended;
  assert.equal(outcome.record.state, 'stopped');
  assert.ok(!rig.network.leases.has('t1-00003'));
});

test('a VM adopted after its runner definition left the config is stopped at once', async (t) => {
  const rig = makeRig(forever);
  t.after(() => rig.close());
  await leftRunning(t, rig, 't1-00004', 'running');
  const [vm] = await rig.supervisor.adopt([testRunner({ name: 'renamed' })]);
  assert.ok(vm !== undefined);
  const outcome = await vm.ended;
  assert.equal(outcome.record.state, 'stopped');
  assert.match(outcome.record.reason ?? '', /no longer configured/);
});

test('a VM that was stopping when Flint died is asked to stop again by the new Flint', async (t) => {
  const rig = makeRig(forever);
  t.after(() => rig.close());
  await leftRunning(t, rig, 't1-00005', 'stopping');
  const [vm] = await rig.supervisor.adopt([testRunner()]);
  assert.ok(vm !== undefined);
  const outcome = await vm.ended;
  assert.equal(outcome.record.state, 'stopped');
});
