// `npm run bench -- vm-start [--prepare N] [--boots N]`
//
// Measures the VM supervisor's own cost, on the real adapters, inside a
// private network namespace this benchmark creates (re-exec under
// `unshare -n`, like scripts/test.mjs), so no bridge or tap ever touches the
// host's network.
//
//   prepare   host-side preparation of one VM through the supervisor: work
//             dir, 40 GiB sparse scratch disk, config drive, address lease,
//             tap (the record's prepareMs). The VMM is a stand-in process
//             here, so only Flint's part is timed. Target p50 ≤ 150 ms,
//             whatever the base image's size (the image is never copied).
//   teardown  from the VMM's exit to the VM's terminal state: driver
//             cleanup, tap, lease, disks, work dir.
//   boot overhead ratio
//             (Flint's launch call → guest "booted" marker) ÷ (a bare
//             qemu-system-x86_64 with the same kernel, initrd, rootfs,
//             drives and tap → the same marker), measured alternately in
//             the same run; reported as the median of the per-round
//             ratios. Target ≤ 1.15.
//
// Prints its figures, then as the LAST line one JSON object:
//   {"bench":"vm-start","prepare_ms_p50":…,"prepare_ms_p99":…,"boot_overhead_ratio":…,"teardown_ms_p50":…}
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { networkKernelArgs } from '../src/core/guest-contract.ts';
import { vmId } from '../src/core/ids.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmSpec } from '../src/daemon/vm/ports.ts';
import { createDiskProvisioner } from '../src/adapters/disks/index.ts';
import { consoleLogPath } from '../src/daemon/vm/console-log.ts';
import { makeRealSystem } from '../test/vm/real-system.ts';
import { bareQemuCommand } from '../test/vm/bare-qemu.ts';
import type { QemuCommand } from '../src/adapters/hypervisor/qemu-args.ts';
import { inOwnNetns } from './_netns.ts';

const GiB = 1024 ** 3;
/** A boot that takes longer is counted as failed (both sides). */
const BOOT_LIMIT_MS = 60_000;

function option(args: readonly string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i === -1 ? undefined : Number(args[i + 1]);
  return v !== undefined && Number.isInteger(v) && v > 0 ? v : dflt;
}

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx] ?? NaN;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/**
 * A stand-in VMM for the prepare/teardown phase: a real process (so the
 * supervisor's pid bookkeeping is real) that ends when asked. Records when
 * it exited, so teardown is timed from there.
 */
class HoldDriver implements HypervisorDriver {
  readonly kind = 'qemu' as const;
  readonly exitedAt = new Map<string, number>();

  async start(spec: VmSpec): Promise<RunningVm> {
    const child = spawn('sleep', ['infinity'], { stdio: ['pipe', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
    const exited = new Promise<VmExit>((resolve) => child.once('exit', (code, signal) => {
      this.exitedAt.set(spec.id, performance.now() + performance.timeOrigin);
      resolve({ code, signal });
    }));
    return {
      id: spec.id, pid: child.pid ?? -1, handle: { pid: child.pid ?? -1, startTime: '', controlSocket: '', consoleFile: '' }, console: child.stdout ?? new PassThrough(), consoleInput: child.stdin ?? new PassThrough(), exited,
      async stop() { child.kill('SIGTERM'); return exited; },
    };
  }

  /** A sleep process is no VMM to take over. */
  async adopt(): Promise<null> {
    return null;
  }

  async cleanup(): Promise<void> {}
}

async function measurePrepare(n: number): Promise<{ prepare: number[]; teardown: number[] }> {
  const hold = new HoldDriver();
  const sys = await makeRealSystem({ instanceId: 'bp', subnet: '231.1', drivers: { qemu: hold }, config: { stopGraceMs: 1000 } });
  try {
    const runner = await sys.runner({ diskSize: 40 * GiB });
    // The scratch template of a size is made once per host (docs/disks.md);
    // make it before timing, as a running Flint has it after its first VM.
    await createDiskProvisioner({ stateDir: sys.stateDir }).warm(runner.diskSize);
    const prepare: number[] = [];
    const teardown: number[] = [];
    // One VM untimed: the bridge and NAT are checked (or made) once per
    // network for the supervisor's life, not per VM.
    for (let i = -1; i < n; i++) {
      const vm = await sys.supervisor.launch(runner, { FLINT_JITCONFIG: 'bench' });
      await new Promise<void>((resolve) => vm.onState((s) => { if (s !== 'preparing') resolve(); }));
      const { record } = await vm.stop('bench');
      if (record.prepareMs === null || record.endedAt === null) throw new Error(`VM ${vm.id} did not start: ${record.reason ?? ''}\n${sys.logger.text()}`);
      if (i < 0) continue;
      prepare.push(record.prepareMs);
      teardown.push(record.endedAt - (hold.exitedAt.get(vm.id) ?? record.endedAt));
    }
    return { prepare, teardown };
  } finally {
    await sys.destroy();
  }
}

async function measureBoots(n: number): Promise<{ flint: number[]; bare: number[]; skipped: number }> {
  const sys = await makeRealSystem({ instanceId: 'bb', subnet: '231.2', config: { bootTimeoutMs: BOOT_LIMIT_MS } });
  const flint: number[] = [];
  const bare: number[] = [];
  let skipped = 0;
  try {
    const runner = await sys.runner({ diskSize: 40 * GiB });
    // Resources of the bare runs, made once and outside the timing: the bare
    // command gets what Flint prepares (same drives, a tap on the same bridge).
    const bareId = vmId('bb', 36 ** 5);
    const bareDir = join(sys.stateDir, 'bare');
    mkdirSync(bareDir, { recursive: true });
    await sys.network.ensureNetwork(sys.net);
    const lease = await sys.network.attach(bareId, 'bare', sys.net);
    const bareDisks = await createDiskProvisioner({ stateDir: sys.stateDir }).prepare(bareId, bareDir, runner.diskSize, { FLINT_RUNNER_COMMAND: 'sleep 600' }, { uid: 0, gid: 0 });
    const bareSpec: VmSpec = {
      id: bareId, vcpus: runner.cpuCount, memoryMib: runner.memorySize, smt: runner.smt, kernel: runner.kernel,
      ...(runner.initrd === undefined ? {} : { initrd: runner.initrd }),
      kernelArgs: `console=ttyS0 reboot=k panic=1 ${networkKernelArgs(lease.guest)} ${runner.kernelArgs}`.trim(),
      drives: { rootfs: runner.filesystem, scratch: bareDisks.scratch, config: bareDisks.config },
      net: { tap: lease.tap, mac: lease.mac }, workDir: bareDir, uid: 0, gid: 0,
    };
    // Computed once, like the driver's accelerator choice (the KVM probe boots a VM of its own).
    const bareCmd = await bareQemuCommand(bareSpec);
    // Warm-up (page cache, scratch template), not counted.
    await flintBoot(sys, runner);
    for (let i = 0; i < n; i++) {
      // Alternate, so a change of host load hits both sides alike.
      let f: number | undefined;
      let b: number | undefined;
      if (i % 2 === 0) {
        f = await flintBoot(sys, runner);
        b = await bareBoot(bareCmd, bareDir);
      } else {
        b = await bareBoot(bareCmd, bareDir);
        f = await flintBoot(sys, runner);
      }
      // A round counts only when both boots reached the marker (a guest
      // that hangs under TCG on an overloaded host says nothing about Flint).
      if (f !== undefined && b !== undefined) {
        flint.push(f);
        bare.push(b);
      } else {
        skipped++;
      }
      process.stderr.write(`  round ${i + 1}/${n}: flint ${f === undefined ? 'no boot' : `${round(f, 0)} ms`}, bare ${b === undefined ? 'no boot' : `${round(b, 0)} ms`}\n`);
    }
    await sys.network.detach(bareId);
    return { flint, bare, skipped };
  } finally {
    await sys.destroy();
  }
}

/** Launch → booted marker through the supervisor; undefined (with the console's tail on stderr) when the guest did not boot. */
async function flintBoot(sys: Awaited<ReturnType<typeof makeRealSystem>>, runner: Awaited<ReturnType<Awaited<ReturnType<typeof makeRealSystem>>['runner']>>): Promise<number | undefined> {
  const t0 = Date.now();
  const vm = await sys.supervisor.launch(runner, { FLINT_RUNNER_COMMAND: 'sleep 600' });
  const booted = await new Promise<number | undefined>((resolve) => {
    vm.onMarker((m, at) => { if (m.kind === 'booted') resolve(at); });
    void vm.ended.then(() => resolve(undefined));
  });
  const { record } = await vm.stop('bench');
  if (booted === undefined) {
    let tail = '';
    try { tail = readFileSync(consoleLogPath(sys.stateDir, vm.id), 'latin1').slice(-800); } catch { /* no log */ }
    process.stderr.write(`  flint VM ${vm.id} did not boot (${record.reason ?? ''}); console tail:\n${tail}\n`);
    return undefined;
  }
  return booted - t0;
}

/** Start → booted marker of the bare command; undefined (with the console's tail on stderr) when it did not boot in time. */
async function bareBoot(cmd: QemuCommand, workDir: string): Promise<number | undefined> {
  // What a previous run left (QEMU removes its socket on a clean exit only).
  rmSync(join(workDir, 'bare.qmp'), { force: true });
  const t0 = Date.now();
  const child = spawn(cmd.binary, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  const exited = new Promise((r) => child.once('exit', r));
  let buf = '';
  try {
    return await new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), BOOT_LIMIT_MS);
      child.stdout?.on('data', (d: Buffer) => {
        buf = (buf + d.toString('latin1')).slice(-4096);
        if (/^FLINT-MARKER booted\r?$/m.test(buf)) { clearTimeout(timer); resolve(Date.now() - t0); }
      });
      child.once('exit', () => { clearTimeout(timer); resolve(undefined); });
    }).then((ms) => {
      if (ms === undefined) process.stderr.write(`  bare QEMU did not boot; console tail:\n${buf.slice(-800)}\n`);
      return ms;
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

export default async function main(args: string[]): Promise<void> {
  inOwnNetns('vm-start', args, 'bridges, taps, QEMU');
  const prepareN = option(args, '--prepare', 30);
  const bootN = option(args, '--boots', 8);

  console.log(`vm-start: host-side preparation of ${prepareN} VMs (40 GiB scratch, config drive, lease, tap)…`);
  const { prepare, teardown } = await measurePrepare(prepareN);
  console.log(`  prepare  p50 ${round(percentile(prepare, 50))} ms  p99 ${round(percentile(prepare, 99))} ms  max ${round(Math.max(...prepare))} ms  (target p50 ≤ 150 ms)`);
  console.log(`  teardown p50 ${round(percentile(teardown, 50))} ms  p99 ${round(percentile(teardown, 99))} ms`);

  console.log(`vm-start: ${bootN} boots through Flint and ${bootN} bare QEMU boots, alternately, to the booted marker…`);
  const { flint, bare, skipped } = await measureBoots(bootN);
  if (skipped > 0) console.log(`  ${skipped} of ${bootN} rounds skipped: a guest did not boot within ${BOOT_LIMIT_MS / 1000} s`);
  // Each round's two boots run back to back, so they see the same host
  // load; the median of the per-round ratios is robust to load that drifts
  // between rounds (other work on a shared host), unlike a ratio of medians.
  const ratios = flint.map((f, i) => f / (bare[i] ?? NaN));
  const ratio = median(ratios);
  console.log(`  flint launch→booted median ${round(median(flint), 0)} ms  (all: ${flint.map((x) => round(x, 0)).join(', ')})`);
  console.log(`  bare qemu  →booted median ${round(median(bare), 0)} ms  (all: ${bare.map((x) => round(x, 0)).join(', ')})`);
  console.log(`  per-round ratios ${ratios.map((r) => round(r, 2)).join(', ')}; ratio of medians ${round(median(flint) / median(bare), 3)}`);
  console.log(`  boot overhead ratio (median of per-round ratios) ${round(ratio, 3)}  (target ≤ 1.15)`);
  console.log(JSON.stringify({
    bench: 'vm-start',
    prepare_ms_p50: round(percentile(prepare, 50)),
    prepare_ms_p99: round(percentile(prepare, 99)),
    boot_overhead_ratio: round(ratio, 3),
    teardown_ms_p50: round(percentile(teardown, 50)),
  }));
}
