/**
 * Done-when tests of the VM lifecycle with real VMs: the test image booted
 * by QEMU and by Firecracker-through-the-emulator, in the test runner's
 * private network namespace. Each test has its own instance id, bridge and
 * state dir, and asserts that nothing of it is left on the host.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { file, program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { leftovers, makeRealSystem } from '../../../test/vm/real-system.ts';
import type { RealSystemOptions, RealSystem } from '../../../test/vm/real-system.ts';
import { ProcHostProcesses } from '../../adapters/host/proc-host-processes.ts';
import { consoleLogPath } from './console-log.ts';

const prereqs = [root, program('qemu-system-x86_64'), program('mkfs.ext4'), program('ip'),
  program('nft'), file('/dev/net/tun', 'load the tun module (modprobe tun)')];

async function system(t: TestContext, opts: RealSystemOptions): Promise<RealSystem> {
  const sys = await makeRealSystem(opts);
  t.after(() => sys.destroy());
  return sys;
}

for (const [hypervisor, instanceId, subnet] of [['qemu', 'lq1', '221.1'], ['firecracker', 'lf1', '221.2']] as const) {
  test(`${hypervisor}: a VM boots via the supervisor, reaches its gateway, runs its runner command, powers off, and is torn down`, async (t) => {
    if (!requirePrereqs(t, ...prereqs)) return;
    const sys = await system(t, { instanceId, subnet });
    const runner = await sys.runner({ hypervisor });
    const vm = await sys.supervisor.launch(runner, { FLINT_RUNNER_COMMAND: `ping -c 1 -W 5 ${sys.net.v4.address} && exit 7` });
    const { record } = await vm.ended;
    assert.equal(record.state, 'stopped', `${record.reason ?? ''}\n${sys.logger.text()}`);
    assert.equal(record.runnerExitCode, 7, 'the runner command ran and pinged the gateway (exit 7 only after a reply)');
    assert.ok(record.bootedAt !== null && record.runnerStartedAt !== null);
    t.diagnostic(`${hypervisor}: prepare ${record.prepareMs} ms, launch→booted ${record.bootedAt - record.createdAt} ms, total ${(record.endedAt ?? 0) - record.createdAt} ms`);
    assert.deepEqual(leftovers(sys, [vm.id]), []);
    // The console log outlives the VM, with the guest's markers in order.
    const log = readFileSync(consoleLogPath(sys.stateDir, vm.id), 'latin1');
    assert.match(log, /FLINT-MARKER booted[\s\S]*FLINT-MARKER runner-started[\s\S]*FLINT-MARKER runner-exited code=7/);
  });
}

test('qemu: a guest that does not boot in time is stopped at the boot timeout, failed, and torn down', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const sys = await system(t, { instanceId: 'lq2', subnet: '221.3', config: { bootTimeoutMs: 400 } });
  const vm = await sys.supervisor.launch(await sys.runner(), { FLINT_RUNNER_COMMAND: 'true' });
  const { record, code } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(code, 'FLINT_ERR_VM_BOOT_TIMEOUT');
  assert.deepEqual(leftovers(sys, [vm.id]), []);
});

test('qemu: a hanging guest is stopped at its maximum lifetime, failed, and torn down', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const sys = await system(t, { instanceId: 'lq3', subnet: '221.4' });
  // The lifetime counts from the VMM's start; 20 s leaves the guest (TCG,
  // busy host) time to boot and start the runner, which then hangs.
  const vm = await sys.supervisor.launch(await sys.runner(), { FLINT_RUNNER_COMMAND: 'sleep 1000' }, { maxLifetimeMs: 20_000 });
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.match(record.reason ?? '', /maximum lifetime/);
  assert.ok(record.runnerStartedAt !== null, 'the runner was running (hanging) when the lifetime ended');
  // The stop is graceful first: the guest agent may still report the runner
  // it terminated (143 = SIGTERM) before powering off.
  assert.ok(record.runnerExitCode === null || record.runnerExitCode === 143, `runner exit ${record.runnerExitCode}`);
  assert.deepEqual(leftovers(sys, [vm.id]), []);
});

test('qemu: a QEMU that crashes while the job runs ends failed and is torn down', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const sys = await system(t, { instanceId: 'lq4', subnet: '221.5' });
  const vm = await sys.supervisor.launch(await sys.runner(), { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  await new Promise<void>((resolve) => vm.onMarker((m) => { if (m.kind === 'runner-started') resolve(); }));
  const pid = (await sys.store.get(vm.id))?.pid;
  assert.ok(typeof pid === 'number' && pid > 0);
  process.kill(pid, 'SIGKILL');
  const { record } = await vm.ended;
  assert.equal(record.state, 'failed');
  assert.equal(record.vmmSignal, 'SIGKILL');
  assert.match(record.reason ?? '', /ended abnormally/);
  assert.deepEqual(leftovers(sys, [vm.id]), []);
});

const child = fileURLToPath(new URL('../../../test/vm/crash-child.ts', import.meta.url));

for (const [hypervisor, instanceId, subnet] of [['qemu', 'lk1', '221.6'], ['firecracker', 'lk2', '221.7']] as const) {
  test(`${hypervisor}: flint killed with SIGKILL mid-boot; a start-up sweep without adoption leaves no tap, jail dir, disk, lease or process`, async (t) => {
    if (!requirePrereqs(t, ...prereqs)) return;
    // The first Flint: a child process that launches a VM and is killed while it boots.
    const first = await makeRealSystem({ instanceId, subnet });
    const stateDir = first.stateDir;
    await first.close();
    let destroyed = false;
    t.after(async () => {
      if (!destroyed) await (await makeRealSystem({ instanceId, subnet, stateDir })).destroy();
    });
    const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify({ instanceId, subnet, stateDir, hypervisor })], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
    const booting = await new Promise<{ id: string; pid: number }>((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /BOOTING (\S+) (\d+)/.exec(out);
        if (m?.[1] !== undefined) resolve({ id: m[1], pid: Number(m[2]) });
      });
      proc.once('exit', (code) => reject(new Error(`child exited early (${code}): ${out}`)));
    });
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    // What the killed Flint left: an unfinished record and a VMM still
    // running (VMMs outlive Flint so that a restart can adopt them). This
    // test sweeps without adopting: the sweep alone must remove all of it.
    const second = await makeRealSystem({ instanceId, subnet, stateDir });
    t.after(async () => { await second.destroy(); destroyed = true; });
    const before = await second.store.get(booting.id);
    assert.ok(before !== undefined && ['booting', 'running'].includes(before.state), `record left in ${before?.state}`);
    const left = leftovers(second, [booting.id]);
    assert.ok(left.some((l) => l.startsWith('tap ')) && left.some((l) => l.startsWith('lease ')) && left.some((l) => l.startsWith('work dir ')),
      `the killed Flint left its VM's resources behind (else this test proves nothing): ${left.join(', ')}`);
    t.diagnostic(`left by the killed Flint: ${left.join(', ')}`);
    const report = await second.supervisor.sweep();
    t.diagnostic(`sweep: ${JSON.stringify(report)}`);
    assert.deepEqual(report.vms, [booting.id]);
    const after = await second.store.get(booting.id);
    assert.equal(after?.state, 'failed');
    assert.equal(after?.reason, 'flint restarted');
    assert.equal(new ProcHostProcesses().isAlive(booting.pid), false, 'the VMM is gone');
    assert.deepEqual(leftovers(second, [booting.id]), []);
  });
}
