/**
 * Host facts the QEMU driver needs: which accelerator can run a guest
 * kernel, and the host's TSC frequency (for TCG guests, see qemu-args.ts).
 *
 * Accelerator choice (`accel: auto`): KVM only when /dev/kvm is usable AND
 * KVM actually runs the kernel. Some hosts expose /dev/kvm but reject stock
 * guests (nested or restricted KVM: QEMU aborts setting CPU MSRs, or the
 * guest faults early), so "the device exists" is not enough. The probe
 * boots the kernel with no disks and `panic=-1`: a kernel that runs prints
 * its banner, fails to find a root filesystem, panics and reboots at once,
 * which `-no-reboot` turns into a clean QEMU exit, typically well under a
 * second with KVM. Anything else (abort, error, timeout) means TCG.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { access, constants, readFile } from 'node:fs/promises';
import type { QemuAccel, QemuArch } from './qemu-args.ts';
import { vmmEnvironment } from './vmm-env.ts';

export type AccelSetting = 'auto' | QemuAccel;

export interface KvmProbeResult {
  readonly ok: boolean;
  /** Why KVM was rejected (for the log); empty when ok. */
  readonly reason: string;
}

/** True when /dev/kvm exists and this process may open it read-write. */
export async function kvmDeviceUsable(): Promise<boolean> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Boots `kernel` under KVM with no disks; see the module comment. */
export async function probeKvm(kernel: string, opts: { arch?: QemuArch; timeoutMs?: number } = {}): Promise<KvmProbeResult> {
  if (!(await kvmDeviceUsable())) return { ok: false, reason: '/dev/kvm is missing or not accessible' };
  const arch = opts.arch ?? 'x86_64';
  const binary = arch === 'x86_64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
  const machine = arch === 'x86_64' ? 'microvm' : 'virt';
  const console = arch === 'x86_64' ? 'ttyS0' : 'ttyAMA0';
  const args = ['-M', machine, '-accel', 'kvm', '-cpu', 'host', '-m', '128', '-smp', '1',
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', kernel, '-append', `console=${console} panic=-1 root=/dev/flint-probe-none`];
  return new Promise((resolve) => {
    let out = '';
    let settled = false;
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: vmmEnvironment(process.env) });
    const done = (r: KvmProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, reason: `the kernel did not boot under KVM within ${opts.timeoutMs ?? 10_000} ms` }), opts.timeoutMs ?? 10_000);
    const keep = (b: Buffer): void => { out = (out + b.toString('latin1')).slice(-8192); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => done({ ok: false, reason: `could not run ${binary}: ${err.message}` }));
    child.on('close', (code) => {
      const booted = out.includes('Linux version') || out.includes('Kernel panic');
      if (code === 0 && booted) done({ ok: true, reason: '' });
      else done({ ok: false, reason: `QEMU with KVM exited with code ${code}: ${lastLine(out)}` });
    });
  });
}

function lastLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.slice(-2).join(' / ') || '(no output)';
}

/**
 * The host's TSC frequency in kHz, or undefined when unknown. Read from
 * /proc/cpuinfo ("cpu MHz"), which on hosts with a constant TSC is close
 * enough for a development guest's clock.
 */
export async function hostTscKhz(): Promise<number | undefined> {
  try {
    return tscKhzFromCpuinfo(await readFile('/proc/cpuinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Same as hostTscKhz(), for callers that build a command line synchronously. */
export function hostTscKhzSync(): number | undefined {
  try {
    return tscKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

export function tscKhzFromCpuinfo(info: string): number | undefined {
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(info);
  if (!m?.[1]) return undefined;
  const khz = Math.round(Number(m[1]) * 1000);
  return Number.isSafeInteger(khz) && khz > 0 ? khz : undefined;
}
