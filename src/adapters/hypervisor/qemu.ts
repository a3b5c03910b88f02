/**
 * The QEMU driver: runs each VM as `qemu-system-x86_64 -M microvm` (or
 * `qemu-system-aarch64 -M virt`) with the guest contract's devices
 * (qemu-args.ts). For development hosts and hosts without Firecracker; the
 * same images boot under both.
 *
 * Process model and invariants:
 *   - A VM outlives the Flint process that started it (a restart of Flint
 *     never kills a job): QEMU runs under a small `sh` wrapper in its own
 *     session (setsid), with no parent-death signal and no pipe to Flint.
 *     The wrapper waits for QEMU and writes its exit status to `qemu.exit`,
 *     so whoever watches the VM later still learns how QEMU ended.
 *   - The serial console is a unix socket (`console.sock`, for keystrokes)
 *     whose output QEMU also appends to `console.out`; Flint tails that
 *     file. QEMU's stderr goes to `qemu.stderr`. All live in the workDir.
 *   - `-no-reboot`: a guest power-off or reboot ends the QEMU process; the
 *     process's end is the VM's end (`exited`).
 *   - QEMU's pid (from `qemu.pid`) and start time (/proc/<pid>/stat field
 *     22) are its handle; `adopt()` takes over a QEMU of a previous Flint
 *     process only when both still match, and then watches the pid by
 *     polling /proc (no pidfd in Node). A signal is sent only after the
 *     same check, never to a reused pid.
 *   - Graceful stop: QMP `send-key ctrl-alt-del` (the guest's i8042; the
 *     test agent and systemd both shut down on it) plus `system_powerdown`
 *     (ACPI power button, for images whose init handles it). After the
 *     grace period SIGTERM, two seconds later SIGKILL.
 *   - `cleanup()` removes the driver's files and kills a QEMU that is still
 *     running for that VM.
 *   - Accelerator: `auto` uses KVM only when a probe boot of the kernel works
 *     (qemu-host.ts); otherwise TCG, with a warning that TCG is for
 *     development.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Writable } from 'node:stream';
import { FlintError } from '../../core/errors/index.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmmHandle, VmSpec } from '../../daemon/vm/ports.ts';
import { qemuArgs } from './qemu-args.ts';
import type { QemuAccel, QemuArch } from './qemu-args.ts';
import { hostTscKhz, probeKvm } from './qemu-host.ts';
import type { AccelSetting } from './qemu-host.ts';
import { qmpConnect } from './qemu-qmp.ts';
import { FileTail, globalPollTimers, procStat, signalIfSame, watchProcess } from './vmm-process.ts';
import type { PollTimers } from './vmm-process.ts';
import { vmmEnvironment } from './vmm-env.ts';

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
  /** How often the console file is read and an adopted QEMU's pid checked. Default 100 ms. */
  readonly pollMs?: number;
  readonly timers?: PollTimers;
}

export const QMP_SOCKET = 'qemu.qmp';
export const PID_FILE = 'qemu.pid';
export const CONSOLE_SOCKET = 'console.sock';
export const CONSOLE_FILE = 'console.out';
export const EXIT_FILE = 'qemu.exit';
export const STDERR_FILE = 'qemu.stderr';
/**
 * Runs QEMU ("$@" after the exit file), then records its exit status.
 * `rc` above 128 is death by signal rc-128 (the shell's convention).
 * umask 077: what QEMU creates (the console output, which may show what
 * the job printed; the QMP and console sockets; the pid file) is its
 * owner's alone, whatever uid it runs as.
 */
const WRAPPER = 'umask 077; f=$1; shift; "$@"; rc=$?; echo "$rc" > "$f.tmp" && mv "$f.tmp" "$f"; exit "$rc"';
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const KILL_AFTER_TERM_MS = 2000;

export function createQemuDriver(opts: QemuDriverOptions): HypervisorDriver {
  const { logger } = opts;
  const arch = opts.arch ?? 'x86_64';
  const pollMs = opts.pollMs ?? 100;
  const timers = opts.timers ?? globalPollTimers;
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
    // The console socket has the longer name of the two.
    const longest = join(spec.workDir, CONSOLE_SOCKET);
    if (Buffer.byteLength(longest) > MAX_SOCKET_PATH) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `the console socket path of VM ${spec.id} is longer than ${MAX_SOCKET_PATH} bytes: ${longest}`, {
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
    const consoleSocket = join(spec.workDir, CONSOLE_SOCKET);
    const consoleFile = join(spec.workDir, CONSOLE_FILE);
    const exitFile = join(spec.workDir, EXIT_FILE);
    const stderrFile = join(spec.workDir, STDERR_FILE);
    // Files left by a crashed predecessor would confuse the readiness check and the exit status.
    for (const f of [qmpSocket, pidFile, consoleSocket, consoleFile, exitFile, stderrFile]) await rm(f, { force: true });

    let cmd;
    try {
      cmd = qemuArgs(spec, { accel, qmpSocket, pidFile, arch, console: { socket: consoleSocket, file: consoleFile }, ...(khz === undefined ? {} : { tscKhz: khz }) });
    } catch (err) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { vmId: spec.id } });
    }
    logger.debug({ vmId: spec.id, accel, binary: cmd.binary }, 'starting QEMU');

    // Own session, stdio not tied to Flint: the VM survives Flint's death.
    const stderrFd = openSync(stderrFile, 'w', 0o600);
    const child = spawn('sh', ['-c', WRAPPER, 'flint-qemu', exitFile, cmd.binary, ...cmd.args], {
      detached: true,
      stdio: ['ignore', 'ignore', stderrFd],
      // Not Flint's environment: it may hold secrets (vmm-env.ts).
      env: vmmEnvironment(process.env),
    });
    closeSync(stderrFd);
    const stderrTail = async (): Promise<string> => (await readFile(stderrFile, 'utf8').catch(() => '')).slice(-4096).trim();

    let spawnError: Error | undefined;
    const wrapperExited = new Promise<void>((resolve) => {
      child.on('error', (err) => {
        spawnError = err;
        // 'exit' does not follow a failed spawn.
        if (child.pid === undefined) resolve();
      });
      child.on('exit', () => resolve());
    });
    let hasExited = false;
    void wrapperExited.then(() => { hasExited = true; });

    const startFailed = (why: string, hint?: string): FlintError => new FlintError('FLINT_ERR_VM_START_FAILED', `QEMU did not start VM ${spec.id}: ${why}`, {
      details: { vmId: spec.id, accel },
      ...(hint === undefined ? {} : { hint }),
    });

    // Ready = QMP answers. QEMU creates the socket after it has opened the
    // disks, the tap and the kernel, so most start errors surface here.
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    for (;;) {
      if (spawnError && child.pid === undefined) {
        throw startFailed(`could not run sh: ${spawnError.message}`);
      }
      if (hasExited) {
        const e = await readExit(exitFile);
        // The shell exits 127 when it cannot find the program.
        const hint = e.code === 127 ? `Install QEMU (apt-get install ${arch === 'x86_64' ? 'qemu-system-x86' : 'qemu-system-arm'}).` : undefined;
        throw startFailed(`QEMU exited (code ${e.code}, signal ${e.signal}): ${(await stderrTail()) || 'no error output'}`, hint);
      }
      try {
        const qmp = await qmpConnect(qmpSocket, 2000);
        qmp.close();
        break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        const qemuPid = await readPid(pidFile);
        if (qemuPid !== undefined) killQuietly(qemuPid);
        killQuietly(child.pid ?? -1);
        await wrapperExited;
        throw startFailed(`QMP did not answer within ${opts.startTimeoutMs ?? 30_000} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // QEMU wrote its pid file before it opened QMP.
    const pid = await readPid(pidFile);
    const stat = pid === undefined ? undefined : await procStat(pid);
    if (pid === undefined || stat === undefined) {
      killQuietly(child.pid ?? -1);
      throw startFailed('QMP answered but QEMU\'s pid file names no live process');
    }
    const handle: VmmHandle = { pid, startTime: stat.startTime, controlSocket: qmpSocket, consoleFile };
    logger.info({ vmId: spec.id, pid, accel }, 'QEMU started');
    // Flint's own child: its exit is reported at once, no polling.
    return running(spec.id, spec.workDir, handle, wrapperExited, 0);
  }

  /** A RunningVm over a live QEMU; `gone` settles when the process has ended. */
  function running(id: string, workDir: string, handle: VmmHandle, gone: Promise<void>, consoleOffset: number): RunningVm {
    const exitFile = join(workDir, EXIT_FILE);
    const consoleTail = new FileTail(handle.consoleFile, { offset: consoleOffset, intervalMs: pollMs, timers });
    const consoleInput = consoleWriter(join(workDir, CONSOLE_SOCKET));
    let hasExited = false;
    const exited = gone.then(async () => {
      hasExited = true;
      await consoleTail.finish();
      consoleInput.destroy();
      return readExit(exitFile);
    });

    let stopping: Promise<VmExit> | undefined;
    async function stopOnce(graceMs: number): Promise<VmExit> {
      if (hasExited) return exited;
      let asked = false;
      try {
        const qmp = await qmpConnect(handle.controlSocket, 2000);
        try {
          await qmp.execute('send-key', { keys: ['ctrl', 'alt', 'delete'].map((k) => ({ type: 'qcode', data: k })) });
          asked = true;
          await qmp.execute('system_powerdown').catch(() => undefined);
        } finally {
          qmp.close();
        }
      } catch (err) {
        logger.debug({ vmId: id, err: err instanceof Error ? err.message : String(err) }, 'QMP shutdown request failed');
      }
      // Without a delivered request there is nothing to wait for.
      if (asked && (await settlesWithin(exited, graceMs))) return exited;
      if (hasExited) return exited;
      logger.warn({ vmId: id, graceMs, asked }, 'guest did not shut down in time; terminating QEMU');
      await signalIfSame(handle.pid, handle.startTime, 'SIGTERM');
      if (await settlesWithin(exited, KILL_AFTER_TERM_MS)) return exited;
      await signalIfSame(handle.pid, handle.startTime, 'SIGKILL');
      return exited;
    }

    return {
      id,
      pid: handle.pid,
      handle,
      console: consoleTail,
      consoleInput,
      exited,
      stop(graceMs: number) {
        stopping ??= stopOnce(graceMs);
        return stopping;
      },
    };
  }

  async function adopt(id: string, workDir: string, handle: VmmHandle, consoleOffset = 0): Promise<RunningVm | null> {
    const watch = watchProcess(handle.pid, handle.startTime, pollMs, timers);
    // One check first: a QEMU that is gone is not adopted.
    const st = await procStat(handle.pid);
    if (st === undefined || st.state === 'Z' || st.startTime !== handle.startTime) {
      watch.cancel();
      return null;
    }
    logger.info({ vmId: id, pid: handle.pid }, 'QEMU of a previous Flint process adopted');
    // The wrapper writes the exit status right after QEMU ends: give it a moment.
    const gone = watch.gone.then(() => waitForFile(join(workDir, EXIT_FILE), 2000));
    return running(id, workDir, handle, gone, consoleOffset);
  }

  async function cleanup(id: string, workDir: string): Promise<void> {
    const qmpSocket = join(workDir, QMP_SOCKET);
    const pidFile = join(workDir, PID_FILE);
    const pid = await readPid(pidFile);
    // Kill only a process that is provably this VM's QEMU (its command line
    // names this VM's QMP socket): the pid may have been reused.
    if (pid !== undefined && (await cmdlineOf(pid)).includes(qmpSocket)) {
      logger.warn({ vmId: id, pid }, 'cleanup: QEMU still running; killing it');
      killQuietly(pid);
      for (let i = 0; i < 100 && (await cmdlineOf(pid)).includes(qmpSocket); i++) await new Promise((r) => setTimeout(r, 20));
    }
    for (const f of [QMP_SOCKET, PID_FILE, CONSOLE_SOCKET, CONSOLE_FILE, EXIT_FILE, STDERR_FILE]) await rm(join(workDir, f), { force: true });
  }

  return { kind: 'qemu', start, adopt, cleanup };
}

/**
 * Keystrokes for the console socket. Connected lazily on the first write
 * (most VMs never get any); what QEMU sends back on the socket is dropped,
 * the console file has it.
 */
function consoleWriter(socketPath: string): Writable {
  const out = new PassThrough();
  let sock: ReturnType<typeof connect> | undefined;
  out.on('data', (chunk: Buffer) => {
    if (sock === undefined) {
      sock = connect(socketPath);
      sock.on('error', () => { /* the VM's end is reported through exited */ });
      sock.resume();
    }
    sock.write(chunk);
  });
  out.on('close', () => sock?.destroy());
  out.on('error', () => {});
  return out;
}

/** QEMU's exit status as the wrapper recorded it. */
async function readExit(exitFile: string): Promise<VmExit> {
  let text: string;
  try {
    text = (await readFile(exitFile, 'utf8')).trim();
  } catch {
    return { code: null, signal: 'unknown (QEMU\'s exit status was not recorded)' };
  }
  const rc = Number(text);
  if (!Number.isInteger(rc)) return { code: null, signal: 'unknown (QEMU\'s exit status was not recorded)' };
  if (rc > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === rc - 128)?.[0];
    return { code: null, signal: name ?? `signal ${rc - 128}` };
  }
  return { code: rc, signal: null };
}

async function waitForFile(path: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await readFile(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function killQuietly(pid: number): void {
  if (pid <= 1) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
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
