// End to end: the Firecracker driver boots the test guest image through the
// emulated jailer (tools/firecracker-emu: Firecracker's API checked, the VM
// run by QEMU). The guest configures its network from the kernel command
// line, reaches its gateway on the bridge, runs the runner command from the
// config drive and powers off; a second VM is stopped with Ctrl-Alt-Del.
// Nothing survives: no process naming the VM, no jail, no tap.
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkKernelArgs } from '../../core/guest-contract.ts';
import type { RunningVm, VmSpec } from '../../daemon/vm/ports.ts';
import type { Logger } from '../../daemon/vm/supervisor.ts';
import { createDiskProvisioner } from '../disks/index.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { ensureTestImage, testImagePrereqs } from '../../../test/helpers/test-image.ts';
import { inPrivateNetns, testBridge } from '../../../test/helpers/netns.ts';
import type { TestImage } from '../../../test/helpers/test-image.ts';
import { raceTimeout } from '../race-timeout.ts';
import { cgroupDirOf, cgroupValue, rlimit } from '../../../test/helpers/cgroup.ts';
import { cgroupDirs, cgroupSettings, detectCgroupHost } from './cgroup.ts';
import { createFirecrackerDriver } from './firecracker.ts';
import { qmpConnect } from './qemu-qmp.ts';

const JAILER = fileURLToPath(new URL('../../../tools/firecracker-emu/jailer', import.meta.url));
const FC_BIN = fileURLToPath(new URL('../../../tools/firecracker-emu/firecracker', import.meta.url));
const GATEWAY = '10.201.0.1';

const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flint-fc-e2e-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function processesNaming(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      // The id as an argument (jailer, Firecracker) or as a jail path component (QEMU's drive paths).
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a === id || a.includes(`/${id}/`))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

async function ready(t: TestContext): Promise<boolean> {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'), program('mknod'),
    program('setpriv'), ...testImagePrereqs)) return false;
  if (!(await inPrivateNetns())) {
    // Bridges and taps only inside the private namespace scripts/test.mjs creates.
    if (process.env['CI'] === 'true') throw new Error('run through scripts/test.mjs (private network namespace)');
    t.skip('needs the private network namespace of scripts/test.mjs');
    return false;
  }
  return true;
}

/** A bridge with the gateway address and one tap on it, in this (private) namespace; removed after the test. */
async function network(t: TestContext, bridge: string, tap: string): Promise<void> {
  const lan = await testBridge(t, { bridge, address: GATEWAY, prefixLength: 24 });
  await lan.addTap(tap);
}

async function vmSpec(img: TestImage, id: string, tap: string, mac: string, address: string, command: string): Promise<VmSpec> {
  const workDir = join(dir, 'vms', id);
  const disks = createDiskProvisioner({ stateDir: dir, strategy: 'mkfs' });
  const prepared = await disks.prepare(id, workDir, 64 * 1024 * 1024, {
    FLINT_RUNNER_NAME: `flint-${id}`,
    FLINT_JITCONFIG: 'not-a-real-jit-config',
    FLINT_JOB_TIMEOUT: '300',
    FLINT_RUNNER_COMMAND: command,
  }, { uid: 123, gid: 100 });
  const net = networkKernelArgs({ hostname: `flint-${id}`, ipv4: { address, prefixLength: 24, gateway: GATEWAY }, dns: [] });
  return {
    id,
    vcpus: 1,
    memoryMib: 256,
    smt: false,
    kernel: img.kernel,
    initrd: img.initrd,
    kernelArgs: `${img.kernelArgs} ${net}`,
    drives: { rootfs: img.rootfs, scratch: prepared.scratch, config: prepared.config },
    net: { tap, mac },
    workDir,
    uid: 123,
    gid: 100,
    firecracker: { jailer: JAILER, binary: FC_BIN },
  };
}

function collect(vm: RunningVm): { text: () => string; waitFor: (s: string, ms: number) => Promise<void> } {
  let text = '';
  const waiters: Array<() => void> = [];
  vm.console.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    for (const w of waiters) w();
  });
  return {
    text: () => text,
    waitFor: (s, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`console never showed ${JSON.stringify(s)}:\n${text.slice(-3000)}`)), ms);
      const check = (): void => {
        if (text.includes(s)) {
          clearTimeout(timer);
          resolve();
        }
      };
      waiters.push(check);
      check();
    }),
  };
}

describe('firecracker driver end to end (emulated Firecracker, QEMU)', () => {
  test('the guest boots, reaches its gateway, runs the runner command and powers off; nothing is left', async (t: TestContext) => {
    if (!(await ready(t))) return;
    const img = await ensureTestImage();
    const id = 'fce2e-00001';
    const tap = 'ffce2e-00001';
    await network(t, `fcbr${id.slice(-1)}`, tap);
    const base = join(dir, 'jail');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    const spec = await vmSpec(img, id, tap, '06:00:0a:c9:00:02', '10.201.0.2', `ping -c 1 -W 10 ${GATEWAY} && echo GATEWAY-REACHED`);
    t.after(() => driver.cleanup(id, spec.workDir));

    const started = Date.now();
    const vm = await driver.start(spec);
    t.diagnostic(`start (jail, jailer, API configuration, InstanceStart): ${Date.now() - started} ms`);
    const console = collect(vm);
    const exit = await raceTimeout(vm.exited, 240_000, () => { throw new Error(`VM did not end:\n${console.text().slice(-3000)}`); });
    const out = console.text();
    t.diagnostic(`boot to power-off: ${Date.now() - started} ms`);
    assert.match(out, /^FLINT-MARKER booted\r?$/m);
    assert.match(out, /GATEWAY-REACHED/, 'the guest reached its gateway over the tap and bridge');
    assert.match(out, /^FLINT-MARKER runner-exited code=0\r?$/m);
    assert.ok(!out.includes('not-a-real-jit-config'), 'the JIT config never reaches the console');
    assert.deepEqual(exit, { code: 0, signal: null }, 'Firecracker exits 0 when the guest shuts down');

    await driver.cleanup(id, spec.workDir);
    assert.deepEqual(processesNaming(id), []);
    assert.ok(!existsSync(join(base, 'firecracker', id)), 'the jail is gone');
  });

  test('stop: SendCtrlAltDel makes the guest end its runner and power off well within the grace period', async (t: TestContext) => {
    if (!(await ready(t))) return;
    const img = await ensureTestImage();
    const id = 'fce2e-00002';
    const tap = 'ffce2e-00002';
    await network(t, `fcbr${id.slice(-1)}`, tap);
    const base = join(dir, 'jail');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    const spec = await vmSpec(img, id, tap, '06:00:0a:c9:00:03', '10.201.0.3', 'echo RUNNER-UP; sleep 600');
    t.after(() => driver.cleanup(id, spec.workDir));

    const vm = await driver.start(spec);
    const console = collect(vm);
    // Wait for the runner itself: a stop in the instant between the agent's "runner-started"
    // marker and the runner's own process group is a race of the test agent, not of the driver.
    await console.waitFor('RUNNER-UP', 240_000);
    const asked = Date.now();
    const exit = await vm.stop(60_000);
    t.diagnostic(`graceful stop took ${Date.now() - asked} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, 'the guest powered off; Firecracker was not killed');
    assert.match(console.text(), /shutdown requested by the host/);
    assert.match(console.text(), /^FLINT-MARKER runner-exited code=143\r?$/m);
    assert.deepEqual(await vm.stop(1000), exit, 'stop() after the end reports the same exit');
    await driver.cleanup(id, spec.workDir);
    assert.deepEqual(processesNaming(id), []);
    assert.ok(!existsSync(join(base, 'firecracker', id)));
  });

  test('a restarted Flint adopts a running Firecracker by pid and start time, reads its console file from the start, and stops it gracefully', async (t: TestContext) => {
    if (!(await ready(t))) return;
    const img = await ensureTestImage();
    const id = 'fce2e-00004';
    const tap = 'ffce2e-00004';
    await network(t, `fcbr${id.slice(-1)}`, tap);
    const base = join(dir, 'jail');
    const first = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    const spec = await vmSpec(img, id, tap, '06:00:0a:c9:00:05', '10.201.0.5', 'echo RUNNER-UP; sleep 600');
    t.after(() => first.cleanup(id, spec.workDir));
    const vm = await first.start(spec);
    t.after(() => vm.stop(0));
    await collect(vm).waitFor('RUNNER-UP', 240_000);

    // The driver of a new Flint process, knowing only what the VM record holds.
    const second = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    assert.equal(await second.adopt(id, spec.workDir, { ...vm.handle, startTime: '1' }), null, 'another start time: not this VMM');
    const adopted = await second.adopt(id, spec.workDir, vm.handle);
    assert.ok(adopted !== null);
    const console = collect(adopted);
    await console.waitFor('FLINT-MARKER booted', 10_000);
    const exit = await adopted.stop(60_000);
    assert.deepEqual(exit, { code: 0, signal: null }, 'the adopted guest powered off; the exit code came from Firecracker\'s log');
    assert.match(console.text(), /^FLINT-MARKER runner-exited code=143\r?$/m);
    assert.equal(await second.adopt(id, spec.workDir, vm.handle), null, 'an ended VMM is not adopted');
    await second.cleanup(id, spec.workDir);
    assert.deepEqual(processesNaming(id), []);
  });

  test('stop(0): no grace, Firecracker is killed at once and reported as killed', async (t: TestContext) => {
    if (!(await ready(t))) return;
    const img = await ensureTestImage();
    const id = 'fce2e-00003';
    const tap = 'ffce2e-00003';
    await network(t, `fcbr${id.slice(-1)}`, tap);
    const base = join(dir, 'jail');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    const spec = await vmSpec(img, id, tap, '06:00:0a:c9:00:04', '10.201.0.4', 'echo RUNNER-UP; sleep 600');
    t.after(() => driver.cleanup(id, spec.workDir));

    const vm = await driver.start(spec);
    const console = collect(vm);
    await console.waitFor('RUNNER-UP', 240_000);
    const asked = Date.now();
    const exit = await vm.stop(0);
    t.diagnostic(`stop(0) took ${Date.now() - asked} ms`);
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
    assert.ok(Date.now() - asked < 10_000);
    await driver.cleanup(id, spec.workDir);
    assert.deepEqual(processesNaming(id), [], 'QEMU went with the (emulated) VMM');
    assert.ok(!existsSync(join(base, 'firecracker', id)));
  });
  test('limits for real: the VMM runs under the definition\'s rlimits and cgroup, QEMU throttles the drives, the cgroup goes with cleanup', async (t: TestContext) => {
    if (!(await ready(t))) return;
    if (!requirePrereqs(t, program('prlimit'))) return;
    const host = await detectCgroupHost();
    if (host.version === 'none') {
      if (process.env['CI'] === 'true') throw new Error(`CI host without a usable cgroup hierarchy: ${host.reason}`);
      t.skip(host.reason);
      return;
    }
    const img = await ensureTestImage();
    const id = 'fce2e-00005';
    const tap = 'ffce2e-00005';
    await network(t, `fcbr${id.slice(-1)}`, tap);
    const base = join(dir, 'jail');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: quiet });
    const plain = await vmSpec(img, id, tap, '06:00:0a:c9:00:06', '10.201.0.6', 'echo RUNNER-UP; sleep 600');
    const spec: VmSpec = {
      ...plain,
      pidsMax: 200,
      rateLimits: { disk: { bytesPerSecond: 20 * 2 ** 20, opsPerSecond: 800 }, network: { rxBytesPerSecond: 2 ** 20, txBytesPerSecond: 2 ** 20 } },
    };
    t.after(() => driver.cleanup(id, spec.workDir));
    const vm = await driver.start(spec);
    t.after(() => vm.stop(0));
    await collect(vm).waitFor('RUNNER-UP', 240_000);

    // rlimits: Firecracker's default no-file, fsize = the scratch disk's size (64 MiB).
    assert.deepEqual(rlimit(vm.pid, 'Max open files'), { soft: '2048', hard: '2048' });
    assert.deepEqual(rlimit(vm.pid, 'Max file size'), { soft: String(64 * 2 ** 20), hard: String(64 * 2 ** 20) });
    // cgroup: <hierarchy>/firecracker/<id>, with the definition's values.
    const [cgDir] = cgroupDirs(host, 'firecracker', id).filter((d) => host.version === 2 || d.startsWith(host.mounts.pids));
    assert.equal(cgroupDirOf(vm.pid, host, 'pids'), cgDir);
    for (const c of cgroupSettings(host.version, { vcpus: 1, memoryMib: 256, overheadMib: 128, pidsMax: 200 })) {
      assert.equal(cgroupValue(vm.pid, host, c.file), c.value, c.file);
    }
    // QEMU, the emulated VMM's child, is inside the same cgroup and counts against pids.max.
    const qemu = processesNaming(id).find((p) => (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] ?? '').includes('qemu-system'));
    assert.ok(qemu !== undefined, 'QEMU runs');
    assert.equal(cgroupDirOf(qemu, host, 'pids'), cgDir);
    const tasks = Number(readFileSync(join(cgroupDirOf(vm.pid, host, 'pids'), 'pids.current'), 'utf8'));
    t.diagnostic(`tasks in the VM's cgroup: ${tasks}`);
    const memFile = host.version === 2 ? 'memory.current' : 'memory.usage_in_bytes';
    t.diagnostic(`memory of the VM's cgroup (emulator, QEMU and guest): ${Math.round(Number(cgroupValue(vm.pid, host, memFile)) / 2 ** 20)} MiB of ${256 + 128} MiB`);
    assert.ok(tasks > 1 && tasks <= 200);
    // QEMU applied the drive limits (its own view, over QMP).
    const qmp = await qmpConnect(join(base, 'firecracker', id, 'root', 'qemu-qmp.sock'));
    // query-block answers a list of block devices; only these fields are read.
    const blocks = await qmp.execute('query-block').finally(() => qmp.close()) as Array<{ device: string; inserted?: { bps: number; iops: number } }>;
    for (const d of ['vda', 'vdb', 'vdc']) {
      const b = blocks.find((x) => x.device === d);
      assert.deepEqual([b?.inserted?.bps, b?.inserted?.iops], [20 * 2 ** 20, 800], d);
    }

    assert.deepEqual(await vm.stop(0), { code: null, signal: 'SIGKILL' });
    await driver.cleanup(id, spec.workDir);
    for (const d of cgroupDirs(host, 'firecracker', id)) assert.ok(!existsSync(d), `cleanup removed ${d}`);
    assert.deepEqual(processesNaming(id), []);
  });
});
