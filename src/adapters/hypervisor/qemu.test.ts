/**
 * The QEMU driver against real VMs: the test image (images/test) boots
 * under qemu-system-x86_64 -M microvm on a tap in the test's private
 * network namespace, with a real scratch disk and config drive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { parseMarker, networkKernelArgs } from '../../core/guest-contract.ts';
import type { ConsoleMarker } from '../../core/guest-contract.ts';
import type { RunningVm, VmmHandle, VmSpec } from '../../daemon/vm/ports.ts';
import { writeConfigDrive } from '../disks/config-drive.ts';
import { hostCgroupLayout, vmCgroupDirs } from './vm-cgroup.ts';
import { createQemuDriver, PID_FILE, QMP_SOCKET } from './qemu.ts';
import type { QemuLogger } from './qemu.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { ensureTestImage, testImagePrereqs } from '../../../test/helpers/test-image.ts';
import type { TestImage } from '../../../test/helpers/test-image.ts';
import { testBridge } from '../../../test/helpers/netns.ts';

const execFileP = promisify(execFile);
const SECRET = 'secret-jit-value';

function prereqs(t: TestContext): boolean {
  return requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'),
    program('debugfs'), ...testImagePrereqs);
}

interface Logged { level: string; obj: object; msg: string }
function memoryLogger(): QemuLogger & { lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    debug: (obj, msg) => lines.push({ level: 'debug', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  };
}

/** Collects the console and the markers with their arrival times. */
class ConsoleWatch {
  text = '';
  readonly markers: Array<{ marker: ConsoleMarker; at: number }> = [];
  private partial = '';
  private waiters: Array<() => void> = [];
  constructor(vm: RunningVm) {
    vm.console.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      this.text += s;
      this.partial += s;
      const lines = this.partial.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = parseMarker(line);
        if (m) this.markers.push({ marker: m, at: performance.now() });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** Resolves when a marker of `kind` has arrived; rejects after timeoutMs. */
  async waitFor(kind: ConsoleMarker['kind'], timeoutMs: number): Promise<{ marker: ConsoleMarker; at: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.markers.find((m) => m.marker.kind === kind);
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no "${kind}" marker within ${timeoutMs} ms; console:\n${this.text.slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }
}

let seq = 0;
/** A VM's host side: bridge + tap in this namespace, scratch disk, config drive, work dir. All removed after the test. */
async function prepareVm(t: TestContext, img: TestImage, env: Record<string, string>, opts: { brokenScratch?: boolean; owner?: { uid: number; gid: number } } = {}): Promise<VmSpec> {
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  const n = ++seq;
  const net = {
    hostname: `vm${n}`,
    ipv4: { address: `10.77.${n}.2`, prefixLength: 24, gateway: `10.77.${n}.1` },
    ipv6: { address: `fd77:${n}::2`, prefixLength: 64, gateway: `fd77:${n}::1` },
    dns: [`10.77.${n}.1`, `fd77:${n}::1`, '10.77.0.53'],
  };
  const lan = await testBridge(t, { bridge: `fqbr${n}`, address: net.ipv4.gateway, prefixLength: 24, v6: { address: net.ipv6.gateway, prefixLength: 64 } });
  const tap = await lan.addTap(`fqtap${n}`, owner);
  const workDir = await mkdtemp(join(tmpdir(), 'flint-qemu-'));
  t.after(() => rm(workDir, { recursive: true, force: true }));
  // As the supervisor makes it: root's, traversable by the VM's uid.
  await chmod(workDir, 0o711);
  const scratch = join(workDir, 'scratch.ext4');
  await execFileP('truncate', ['-s', '64M', scratch]);
  // A zero-filled "disk" without a filesystem: the shim must fall back to tmpfs.
  if (!opts.brokenScratch) await execFileP('mkfs.ext4', ['-q', '-F', scratch]);
  // As the disk provisioner hands it over.
  await chown(scratch, owner.uid, owner.gid);
  await chmod(scratch, 0o600);
  const config = join(workDir, 'config.tar');
  await writeConfigDrive(config, { FLINT_RUNNER_NAME: `flint-test-${n}`, FLINT_JITCONFIG: SECRET, FLINT_JOB_TIMEOUT: '300', ...env }, owner);
  return {
    id: `qt${process.pid.toString(36).slice(-4)}-${n.toString().padStart(5, '0')}`,
    vcpus: 1,
    memoryMib: 256,
    smt: false,
    kernel: img.kernel,
    initrd: img.initrd,
    kernelArgs: `${img.kernelArgs} ${networkKernelArgs(net)}`,
    drives: { rootfs: img.rootfs, scratch, config },
    net: { tap, mac: `06:00:0a:4d:00:${n.toString(16).padStart(2, '0')}` },
    workDir,
    uid: owner.uid,
    gid: owner.gid,
  };
}

const BOOT_TIMEOUT = 120_000;

test('a VM boots, runs the runner command with the network up, reports code=3 and powers off', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  // The runner proves: the gateway answers, the JIT config is in its
  // environment, and no process in the guest has it on its command line.
  const spec = await prepareVm(t, img, {
    FLINT_RUNNER_COMMAND: [
      'ping -c1 -W10 "$(ip route | awk \'/default/ {print $3}\')" || exit 1',
      'ping6 -c1 -W10 "$(ip -6 route | awk \'/default/ {print $3}\')" || exit 7',
      '[ "$(grep -c nameserver /etc/resolv.conf)" = 3 ] || exit 8',
      '[ ${#FLINT_JITCONFIG} -eq 16 ] || exit 4',
      'for f in /proc/[0-9]*/cmdline; do grep -q "secret-j[i]t" "$f" && exit 5; done',
      '[ "$(hostname)" = vm1 ] || exit 6',
      'echo from-the-guest >/var/flint-probe && sync',
      'exit 3',
    ].join('; '),
  });
  const log = memoryLogger();
  const driver = createQemuDriver({ logger: log });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const t0 = performance.now();
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  assert.ok(!readFileSync(`/proc/${vm.pid}/cmdline`, 'latin1').includes(SECRET), 'the JIT config is not on the QEMU command line');

  const booted = await watch.waitFor('booted', BOOT_TIMEOUT);
  const exit = await vm.exited;
  t.diagnostic(`boot to "booted" marker: ${Math.round(booted.at - t0)} ms; start to exit: ${Math.round(performance.now() - t0)} ms`);
  assert.deepEqual(watch.markers.map((m) => m.marker), [
    { kind: 'booted' }, { kind: 'runner-started' }, { kind: 'runner-exited', code: 3 },
  ], watch.text.slice(-3000));
  assert.deepEqual(exit, { code: 0, signal: null }, 'a guest power-off ends QEMU normally');
  assert.ok(!watch.text.includes(SECRET), 'the JIT config never reaches the console');
  assert.ok(log.lines.some((l) => l.level === 'warn' && /TCG/.test(l.msg)) || log.lines.some((l) => /KVM runs/.test(l.msg)));

  // The guest's writes went to the overlay's upper layer on its scratch disk (vdb).
  const probe = await execFileP('debugfs', ['-R', 'cat /upper/var/flint-probe', spec.drives.scratch]);
  assert.equal(probe.stdout, 'from-the-guest\n');

  await driver.cleanup(spec.id, spec.workDir);
  assert.ok(!existsSync(join(spec.workDir, QMP_SOCKET)));
  assert.ok(!existsSync(join(spec.workDir, PID_FILE)));
});

test('QEMU runs as the definition\'s uid/gid, under its seccomp filter, inside a cgroup with the VM\'s limits; the VM boots and ends normally', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  // The test image's documented jailer user: a uid with no account and no other groups.
  const owner = { uid: 123, gid: 100 };
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 2; exit 0' }, { owner });
  const layout = await hostCgroupLayout();
  assert.ok(layout !== undefined, 'this host has cgroup controllers cpu, memory and pids (v2, or v1 hierarchies)');
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);

  const ps = (await execFileP('ps', ['-o', 'uid=,gid=,args=', '-p', String(vm.pid)])).stdout.trim();
  t.diagnostic(`ps: ${ps.slice(0, 80)}`);
  assert.match(ps, /^123\s+100\s+qemu-system-x86_64 /, 'the VMM itself (the recorded pid) runs as the definition\'s uid/gid');
  const status = readFileSync(`/proc/${vm.pid}/status`, 'latin1');
  const field = (name: string): string => new RegExp(`^${name}:[\\t ]*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  assert.equal(field('Uid'), '123\t123\t123\t123');
  assert.equal(field('Gid'), '100\t100\t100\t100');
  assert.equal(field('Groups'), '', 'no supplementary groups');
  assert.equal(field('CapEff'), '0000000000000000');
  assert.equal(field('NoNewPrivs'), '1');
  assert.equal(field('Seccomp'), '2', 'QEMU\'s -sandbox filter is on');

  // The process is in the VM's cgroup(s), and they hold the Firecracker driver's limits plus pids.
  const dirs = vmCgroupDirs(layout, spec.id);
  const member = readFileSync(`/proc/${vm.pid}/cgroup`, 'utf8');
  for (const dir of dirs) {
    assert.ok(readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(vm.pid)), `QEMU is in ${dir}\n${member}`);
  }
  const read = (dir: string, f: string): string => readFileSync(join(dir, f), 'utf8').trim();
  const memory = String((256 + 256) * 1024 * 1024);
  if (layout.version === 2) {
    const [dir] = dirs as [string];
    assert.deepEqual([read(dir, 'cpu.max'), read(dir, 'memory.max'), read(dir, 'pids.max')], ['100000 100000', memory, '129']);
  } else {
    const [cpu, mem, pids] = dirs as [string, string, string];
    assert.deepEqual([read(cpu, 'cpu.cfs_quota_us'), read(cpu, 'cpu.cfs_period_us'), read(mem, 'memory.limit_in_bytes'), read(pids, 'pids.max')],
      ['100000', '100000', memory, '129']);
  }

  const exit = await vm.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, watch.text.slice(-2000));
  assert.deepEqual(watch.markers.map((m) => m.marker), [{ kind: 'booted' }, { kind: 'runner-started' }, { kind: 'runner-exited', code: 0 }], watch.text.slice(-2000));
  await driver.cleanup(spec.id, spec.workDir);
  for (const dir of dirs) assert.ok(!existsSync(dir), `cleanup removed ${dir}`);
});

test('stop() without a reachable QMP socket terminates QEMU at once instead of waiting out the grace', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  await watch.waitFor('booted', BOOT_TIMEOUT);
  await rm(join(spec.workDir, QMP_SOCKET));
  const t0 = performance.now();
  const exit = await vm.stop(600_000);
  assert.ok(performance.now() - t0 < 30_000, 'no 10-minute wait for a request that was never delivered');
  assert.ok(exit.code !== null || exit.signal !== null);
});

test('a hanging runner is stopped gracefully by stop(grace) through Ctrl-Alt-Del', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  await watch.waitFor('runner-started', BOOT_TIMEOUT);

  const t0 = performance.now();
  const exit = await vm.stop(60_000);
  t.diagnostic(`graceful stop took ${Math.round(performance.now() - t0)} ms`);
  assert.deepEqual(exit, { code: 0, signal: null }, 'the guest powered itself off; QEMU was not killed');
  assert.ok(/shutdown requested by the host/.test(watch.text), watch.text.slice(-1500));
  assert.deepEqual(watch.markers.at(-1)?.marker, { kind: 'runner-exited', code: 143 }, 'the runner ended by SIGTERM');
  assert.deepEqual(await vm.stop(1000), exit, 'stop() after the end reports the same exit');
});

test('stop(0) does not wait for the guest: QEMU is terminated at once', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  await watch.waitFor('booted', BOOT_TIMEOUT);
  const t0 = performance.now();
  const exit = await vm.stop(0);
  assert.ok(performance.now() - t0 < 10_000, 'stop(0) ends the VM within the kill delay');
  assert.ok(exit.code !== null || exit.signal !== null);
});

test('a QEMU that crashes is reported by exited, and cleanup leaves nothing behind', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  await watch.waitFor('booted', BOOT_TIMEOUT);
  process.kill(vm.pid, 'SIGKILL');
  assert.deepEqual(await vm.exited, { code: null, signal: 'SIGKILL' });
  assert.ok(existsSync(join(spec.workDir, QMP_SOCKET)), 'a crashed QEMU leaves its socket');
  await driver.cleanup(spec.id, spec.workDir);
  await driver.cleanup(spec.id, spec.workDir); // idempotent
  assert.ok(!existsSync(join(spec.workDir, QMP_SOCKET)));
  assert.ok(!existsSync(join(spec.workDir, PID_FILE)));
});

test('a broken scratch disk falls back to memory, and the job timeout ends a hanging runner', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'echo written >/var/probe && cat /var/probe && sleep 1000', FLINT_JOB_TIMEOUT: '3' }, { brokenScratch: true });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const vm = await driver.start(spec);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  const exit = await vm.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const tail = watch.text.slice(-1500);
  assert.ok(/falling back to memory/.test(watch.text), tail);
  assert.ok(/^written\r?$/m.test(watch.text), `the root filesystem is writable on the tmpfs fallback\n${tail}`);
  assert.ok(/job timeout of 3s reached/.test(watch.text), tail);
  assert.deepEqual(watch.markers.at(-1)?.marker, { kind: 'runner-exited', code: 143 });
});

test('a start that QEMU rejects (kernel missing) fails with FLINT_ERR_VM_START_FAILED and QEMU\'s reason', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, {});
  const driver = createQemuDriver({ logger: memoryLogger(), accel: 'tcg' });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  const kernel = join(spec.workDir, 'no-such-vmlinuz');
  await assert.rejects(driver.start({ ...spec, kernel }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'FLINT_ERR_VM_START_FAILED');
    assert.ok((err as Error).message.includes('no-such-vmlinuz'), (err as Error).message);
    return true;
  });
});

test('Flint killed while a VM runs: QEMU lives on, a new Flint adopts it by pid and start time, reads its console on and stops it', async (t) => {
  if (!prereqs(t)) return;
  const img = await ensureTestImage();
  const spec = await prepareVm(t, img, { FLINT_RUNNER_COMMAND: 'sleep 1000' });
  // A separate Node process plays Flint: it starts the VM, prints QEMU's handle once the runner started, then waits.
  const driverUrl = new URL('./qemu.ts', import.meta.url).href;
  const script = `
    import { createQemuDriver } from ${JSON.stringify(driverUrl)};
    const noop = () => {};
    const d = createQemuDriver({ logger: { debug: noop, info: noop, warn: noop } });
    const vm = await d.start(${JSON.stringify(spec)});
    let text = '';
    vm.console.on('data', (b) => {
      text += b.toString();
      if (text.includes('FLINT-MARKER runner-started')) { process.stdout.write(JSON.stringify(vm.handle) + '\\n'); text = ''; }
    });
    setInterval(noop, 1000);
  `;
  const flint = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { if (flint.exitCode === null) flint.kill('SIGKILL'); });
  const handle = await new Promise<VmmHandle>((resolve, reject) => {
    let out = '';
    flint.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) resolve(JSON.parse(line) as VmmHandle); // the line the stand-in printed
    });
    flint.on('exit', (code) => reject(new Error(`the Flint stand-in exited early (code ${code})`)));
  });
  const driver = createQemuDriver({ logger: memoryLogger() });
  t.after(() => driver.cleanup(spec.id, spec.workDir));
  flint.kill('SIGKILL');
  await new Promise((r) => flint.once('exit', r));
  // Let the orphaned VM run on for a moment: it must not notice.
  await new Promise((r) => setTimeout(r, 1000));
  // Alive: running or sleeping (a busy TCG thread shows R), not a zombie or dead.
  const state = readFileSync(`/proc/${handle.pid}/stat`, 'latin1').split(') ')[1]?.[0];
  assert.ok(state !== undefined && !'ZX'.includes(state), `QEMU outlives the Flint that started it (state ${state})`);

  assert.equal(await driver.adopt(spec.id, spec.workDir, { ...handle, startTime: `${handle.startTime}1` }), null,
    'a pid whose start time differs is another process: never adopted');
  const vm = await driver.adopt(spec.id, spec.workDir, handle);
  assert.ok(vm !== null);
  t.after(() => vm.stop(0));
  const watch = new ConsoleWatch(vm);
  await watch.waitFor('runner-started', 30_000);
  const exit = await vm.stop(60_000);
  assert.deepEqual(exit, { code: 0, signal: null }, 'the adopted guest powered off on Ctrl-Alt-Del; the exit status comes from the wrapper');
  assert.deepEqual(watch.markers.at(-1)?.marker, { kind: 'runner-exited', code: 143 });
  assert.equal(await driver.adopt(spec.id, spec.workDir, handle), null, 'an ended VMM is not adopted');
});
