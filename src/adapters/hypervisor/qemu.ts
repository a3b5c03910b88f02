/**
 * The QEMU driver: runs each VM as `qemu-system-x86_64 -M microvm` (or
 * `qemu-system-aarch64 -M virt`) with the guest contract's devices
 * (qemu-args.ts). For development hosts and hosts without Firecracker; the
 * same images boot under both.
 *
 * Process model and invariants:
 *   - QEMU is started through `setpriv --pdeathsig KILL`, so when the Flint
 *     process dies (even by SIGKILL) the kernel kills its VMs: no orphan VM
 *     outlives the Flint that owns it.
 *   - `-no-reboot`: a guest power-off or reboot ends the QEMU process; the
 *     process's end is the VM's end (`exited`).
 *   - The serial console is QEMU's stdout/stdin. The caller must consume
 *     `console` (a guest blocks on a full pipe).
 *   - Per VM the driver keeps `qemu.qmp` (QMP socket) and `qemu.pid` in the
 *     VM's workDir; `cleanup()` removes them and kills a QEMU that is still
 *     running for that VM.
 *   - Graceful stop: QMP `send-key ctrl-alt-del` (the guest's i8042; the
 *     test agent and systemd both shut down on it) plus `system_powerdown`
 *     (ACPI power button, for images whose init handles it). After the
 *     grace period SIGTERM, two seconds later SIGKILL.
 *   - Accelerator: `auto` uses KVM only when a probe boot of the kernel works
 *     (qemu-host.ts); otherwise TCG, with a warning that TCG is for
 *     development.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FlintError } from '../../core/errors/index.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmSpec } from '../../daemon/vm/ports.ts';
import { qemuArgs } from './qemu-args.ts';
import type { QemuAccel, QemuArch } from './qemu-args.ts';
import { hostTscKhz, probeKvm } from './qemu-host.ts';
import type { AccelSetting } from './qemu-host.ts';
import { qmpConnect } from './qemu-qmp.ts';

export interface QemuLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface QemuDriverOptions {
  readonly logger: QemuLogger;
  /** `auto` (default): KVM when it runs the guest kernel, else TCG. */
  readonly accel?: AccelSetting;
  readonly arch?: QemuArch;
  /** How long start() waits for QEMU to come up (QMP answering). Default 30 s. */
  readonly startTimeoutMs?: number;
}

export const QMP_SOCKET = 'qemu.qmp';
export const PID_FILE = 'qemu.pid';
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const KILL_AFTER_TERM_MS = 2000;

export function createQemuDriver(opts: QemuDriverOptions): HypervisorDriver {
  const { logger } = opts;
  const arch = opts.arch ?? 'x86_64';
  const accelByKernel = new Map<string, Promise<QemuAccel>>();
  let warnedTcg = false;
  let tscKhz: Promise<number | undefined> | undefined;

  function resolveAccel(kernel: string): Promise<QemuAccel> {
    const setting = opts.accel ?? 'auto';
    if (setting !== 'auto') return Promise.resolve(setting);
    let p = accelByKernel.get(kernel);
    if (!p) {
      p = probeKvm(kernel, { arch }).then((r) => {
        if (r.ok) {
          logger.info({ kernel }, 'QEMU: KVM runs this kernel; using hardware acceleration');
          return 'kvm' as const;
        }
        logger.info({ kernel, reason: r.reason }, 'QEMU: KVM cannot run this kernel; using software emulation (TCG)');
        return 'tcg' as const;
      });
      accelByKernel.set(kernel, p);
    }
    return p;
  }

  async function start(spec: VmSpec): Promise<RunningVm> {
    const qmpSocket = join(spec.workDir, QMP_SOCKET);
    const pidFile = join(spec.workDir, PID_FILE);
    if (Buffer.byteLength(qmpSocket) > MAX_SOCKET_PATH) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `the QMP socket path of VM ${spec.id} is longer than ${MAX_SOCKET_PATH} bytes: ${qmpSocket}`, {
        hint: 'Use a shorter `stateDir` (unix socket paths are limited to 107 bytes).',
        details: { vmId: spec.id },
      });
    }
    const accel = await resolveAccel(spec.kernel);
    if (accel === 'tcg' && !warnedTcg) {
      warnedTcg = true;
      logger.warn({ vmId: spec.id }, 'QEMU runs VMs with software emulation (TCG): for development and tests only, many times slower than KVM');
    }
    if (accel === 'tcg') tscKhz ??= hostTscKhz();
    const khz = accel === 'tcg' ? await tscKhz : undefined;
    // A socket or pid file left by a crashed predecessor would confuse the readiness check.
    await rm(qmpSocket, { force: true });
    await rm(pidFile, { force: true });

    let cmd;
    try {
      cmd = qemuArgs(spec, { accel, qmpSocket, pidFile, arch, ...(khz === undefined ? {} : { tscKhz: khz }) });
    } catch (err) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { vmId: spec.id } });
    }
    logger.debug({ vmId: spec.id, accel, binary: cmd.binary }, 'starting QEMU');

    // setpriv sets the parent-death signal and execs QEMU: same pid.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd.binary, ...cmd.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Writes to the console after QEMU died fail with EPIPE; the exit is reported through `exited`.
    child.stdin.on('error', () => {});
    child.stdout.on('error', () => {});

    let stderrTail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderrTail = (stderrTail + s).slice(-4096);
      for (const line of s.split('\n')) if (line.trim()) logger.debug({ vmId: spec.id }, `qemu: ${line.trim()}`);
    });

    let spawnError: Error | undefined;
    const exited = new Promise<VmExit>((resolve) => {
      child.on('error', (err) => {
        spawnError = err;
        // 'exit' does not follow a failed spawn.
        if (child.pid === undefined) resolve({ code: null, signal: null });
      });
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    let hasExited = false;
    void exited.then(() => { hasExited = true; });

    const startFailed = (why: string, hint?: string): FlintError => new FlintError('FLINT_ERR_VM_START_FAILED', `QEMU did not start VM ${spec.id}: ${why}`, {
      details: { vmId: spec.id, accel },
      ...(hint === undefined ? {} : { hint }),
    });

    // Ready = QMP answers. QEMU creates the socket after it has opened the
    // disks, the tap and the kernel, so most start errors surface here.
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    for (;;) {
      if (spawnError && child.pid === undefined) {
        throw startFailed(`could not run setpriv: ${spawnError.message}`, 'Install util-linux (it provides setpriv), which the QEMU driver uses to tie each VM\'s life to Flint\'s.');
      }
      if (hasExited) {
        const e = await exited;
        // setpriv exits 127 when it cannot execute the program.
        const hint = e.code === 127 ? `Install QEMU (apt-get install ${arch === 'x86_64' ? 'qemu-system-x86' : 'qemu-system-arm'}).` : undefined;
        throw startFailed(`QEMU exited (code ${e.code}, signal ${e.signal}): ${stderrTail.trim() || 'no error output'}`, hint);
      }
      try {
        const qmp = await qmpConnect(qmpSocket, 2000);
        qmp.close();
        break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw startFailed(`QMP did not answer within ${opts.startTimeoutMs ?? 30_000} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // After a successful spawn pid is always set.
    const pid = child.pid ?? -1;
    logger.info({ vmId: spec.id, pid, accel }, 'QEMU started');

    let stopping: Promise<VmExit> | undefined;
    async function stopOnce(graceMs: number): Promise<VmExit> {
      if (hasExited) return exited;
      let asked = false;
      try {
        const qmp = await qmpConnect(qmpSocket, 2000);
        try {
          await qmp.execute('send-key', { keys: ['ctrl', 'alt', 'delete'].map((k) => ({ type: 'qcode', data: k })) });
          asked = true;
          await qmp.execute('system_powerdown').catch(() => undefined);
        } finally {
          qmp.close();
        }
      } catch (err) {
        logger.debug({ vmId: spec.id, err: err instanceof Error ? err.message : String(err) }, 'QMP shutdown request failed');
      }
      // Without a delivered request there is nothing to wait for.
      if (asked && (await settlesWithin(exited, graceMs))) return exited;
      if (hasExited) return exited;
      logger.warn({ vmId: spec.id, graceMs, asked }, 'guest did not shut down in time; terminating QEMU');
      child.kill('SIGTERM');
      if (await settlesWithin(exited, KILL_AFTER_TERM_MS)) return exited;
      child.kill('SIGKILL');
      return exited;
    }

    return {
      id: spec.id,
      pid,
      console: child.stdout,
      consoleInput: child.stdin,
      exited,
      stop(graceMs: number) {
        stopping ??= stopOnce(graceMs);
        return stopping;
      },
    };
  }

  async function cleanup(id: string, workDir: string): Promise<void> {
    const qmpSocket = join(workDir, QMP_SOCKET);
    const pidFile = join(workDir, PID_FILE);
    const pid = await readPid(pidFile);
    // Kill only a process that is provably this VM's QEMU (its command line
    // names this VM's QMP socket): the pid may have been reused.
    if (pid !== undefined && (await cmdlineOf(pid)).includes(qmpSocket)) {
      logger.warn({ vmId: id, pid }, 'cleanup: QEMU still running; killing it');
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      for (let i = 0; i < 100 && (await cmdlineOf(pid)).includes(qmpSocket); i++) await new Promise((r) => setTimeout(r, 20));
    }
    await rm(qmpSocket, { force: true });
    await rm(pidFile, { force: true });
  }

  return { kind: 'qemu', start, cleanup };
}

function settlesWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function cmdlineOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
  } catch {
    return '';
  }
}
