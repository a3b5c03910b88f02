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
 *   - The serial console is a unix socket (`vmm/console.sock`, for
 *     keystrokes) whose output QEMU also appends to `console.out`; Flint
 *     tails that file. QEMU's stderr goes to `qemu.stderr`.
 *   - Unprivileged (docs/security.md, "VMM sandboxes"): QEMU runs as the
 *     runner definition's uid/gid (`setpriv`, no supplementary groups but
 *     the owner group of /dev/kvm when KVM needs it, no capabilities,
 *     no_new_privs) under its own seccomp filter (`-sandbox on` with every
 *     optional deny), inside a per-VM cgroup with the Firecracker driver's
 *     cpu/memory limits and a pids limit (vm-cgroup.ts). The wrapper joins the
 *     cgroup and drops privileges in the same process that then execs
 *     QEMU, so QEMU's pid is the one recorded and never runs unlimited.
 *   - Files, decided one by one: the workDir stays root's (0711), and so
 *     does everything root writes or reads there (`qemu.exit`, `qemu.stderr`),
 *     so a compromised QEMU cannot swap them for links. `console.out` and
 *     `qemu.pid` are made by Flint there and handed to the VM's uid (QEMU
 *     opens them; it cannot replace them). The sockets QEMU creates live in
 *     `vmm/`, the one directory the VM's uid owns. The disks come owned by
 *     that uid from the disk provisioner, the tap from host networking; the
 *     shared kernel and rootfs must be readable by it (checked, never
 *     chmodded).
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
import { chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Writable } from 'node:stream';
import { FlintError } from '../../core/errors/index.ts';
import { parseVmId } from '../../core/ids.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmmHandle, VmSpec } from '../../daemon/vm/ports.ts';
import { createVmCgroup, hostCgroupLayout, removeVmCgroup } from './vm-cgroup.ts';
import type { CgroupLayout } from './vm-cgroup.ts';
import { checkSharedReadable, modeAllows } from './firecracker-jail.ts';
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
  /** Memory the cgroup allows beyond the guest's RAM (QEMU itself, TCG's code cache, device buffers). Default 256 MiB. */
  readonly memoryOverheadMib?: number;
  /**
   * The host's cgroup layout; default: detected (vm-cgroup.ts). `null`: none,
   * QEMU runs without cgroup limits (a warning says so).
   */
  readonly cgroups?: CgroupLayout | null;
}

/** The one directory in the workDir that the VM's uid owns: the sockets QEMU creates. */
export const VMM_DIR = 'vmm';
export const QMP_SOCKET = `${VMM_DIR}/qemu.qmp`;
export const PID_FILE = 'qemu.pid';
export const CONSOLE_SOCKET = `${VMM_DIR}/console.sock`;
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
/**
 * Joins the cgroups (the `cgroup.procs` files before `--`), then execs the
 * rest: one process from here to QEMU, so the pid QEMU writes is this one.
 * Exit 125 when a cgroup cannot be joined.
 */
const JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
/** QEMU's own seccomp filter, with every optional deny (QEMU ≥ 2.11). */
export const SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';
/** Tasks a QEMU may have beyond one per vCPU: main loop, RCU, I/O workers (the block thread pool alone grows to 64). */
export const PIDS_OVERHEAD = 128;
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
  let warnedRoot = false;
  let warnedNoCgroups = false;
  const overheadMib = opts.memoryOverheadMib ?? 256;
  const layout = (): Promise<CgroupLayout | undefined> => opts.cgroups === undefined ? hostCgroupLayout() : Promise.resolve(opts.cgroups ?? undefined);

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
      cmd = qemuArgs(spec, { accel, qmpSocket, pidFile, arch, console: { socket: consoleSocket, file: consoleFile }, sandbox: SANDBOX, ...(khz === undefined ? {} : { tscKhz: khz }) });
    } catch (err) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { vmId: spec.id } });
    }

    const { uid, gid } = spec;
    if (uid === 0 && !warnedRoot) {
      warnedRoot = true;
      logger.warn({ vmId: spec.id }, 'QEMU runs as root: set `uid`/`gid` of the runner definition to an unprivileged user');
    }
    for (const [what, path] of [['kernel', spec.kernel], ...(spec.initrd === undefined ? [] : [['initrd', spec.initrd]]), ['base rootfs', spec.drives.rootfs]] as const) {
      await checkSharedReadable(what, path, uid, gid);
    }
    await checkSearchable(spec.workDir, uid, gid);
    const groups = accel === 'kvm' ? await kvmGroups(uid, gid) : [];
    await prepareVmmFiles(spec.workDir, uid, gid);

    const cg = await layout();
    let procsFiles: string[] = [];
    if (cg === undefined) {
      if (!warnedNoCgroups) {
        warnedNoCgroups = true;
        logger.warn({ vmId: spec.id }, 'no cgroup hierarchy with the cpu, memory and pids controllers: QEMU runs without cgroup limits');
      }
    } else {
      const limits = { vcpus: spec.vcpus, memoryMib: spec.memoryMib, overheadMib, pidsMax: spec.pidsMax ?? spec.vcpus + PIDS_OVERHEAD };
      try {
        procsFiles = await createVmCgroup(cg, spec.id, limits);
      } catch (err) {
        await removeVmCgroup(cg, spec.id).catch(() => undefined);
        throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: could not create its cgroup: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err, details: { vmId: spec.id }, hint: 'Flint must run as root with the cgroup file system writable (/sys/fs/cgroup).',
        });
      }
    }
    logger.debug({ vmId: spec.id, accel, binary: cmd.binary, uid, gid, cgroups: procsFiles }, 'starting QEMU');

    // Own session, stdio not tied to Flint: the VM survives Flint's death.
    const stderrFd = openSync(stderrFile, 'w', 0o600);
    const child = spawn('sh', ['-c', WRAPPER, 'flint-qemu', exitFile, ...vmmCommand(procsFiles, dropPrivileges(uid, gid, groups), cmd.binary, cmd.args)], {
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
        const hint = e.code === 127 ? `Install QEMU (apt-get install ${arch === 'x86_64' ? 'qemu-system-x86' : 'qemu-system-arm'}) and setpriv (util-linux).` : undefined;
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
    for (const f of [QMP_SOCKET, PID_FILE, CONSOLE_SOCKET, CONSOLE_FILE, EXIT_FILE, STDERR_FILE, VMM_DIR]) await rm(join(workDir, f), { force: true, recursive: true });
    const cg = await layout();
    if (cg !== undefined && parseVmId(id)) {
      for (const { dir, error } of await removeVmCgroup(cg, id)) logger.warn({ vmId: id, dir, err: error }, 'could not remove the VM\'s cgroup');
    }
  }

  return { kind: 'qemu', start, adopt, cleanup };
}

/**
 * The command the wrapper runs: join the cgroups, drop to the VM's uid/gid,
 * exec QEMU (pure; one process all the way, see JOIN).
 */
export function vmmCommand(procsFiles: readonly string[], drop: readonly string[], binary: string, args: readonly string[]): string[] {
  return ['sh', '-c', JOIN, 'flint-qemu-join', ...procsFiles, '--', ...drop, binary, ...args];
}

/**
 * `setpriv` to the VM's uid/gid: real, effective and saved ids, only the
 * given supplementary groups, no inheritable capabilities (a non-root uid
 * keeps none anyway), no_new_privs.
 */
export function dropPrivileges(uid: number, gid: number, groups: readonly number[]): string[] {
  if (!Number.isInteger(uid) || uid < 0 || !Number.isInteger(gid) || gid < 0) throw new RangeError(`bad uid/gid ${uid}/${gid}`);
  return ['setpriv', '--reuid', String(uid), '--regid', String(gid),
    ...(groups.length === 0 ? ['--clear-groups'] : ['--groups', groups.join(',')]),
    '--inh-caps=-all', '--no-new-privs', '--'];
}

/** The supplementary group the VM's uid needs to open /dev/kvm read-write (none when its uid/gid or "other" suffice). */
async function kvmGroups(uid: number, gid: number): Promise<number[]> {
  const st = await stat('/dev/kvm').catch(() => undefined);
  if (st === undefined || (modeAllows(st, uid, gid, false) && modeAllows(st, uid, gid, true))) return [];
  if (modeAllows(st, uid, st.gid, false) && modeAllows(st, uid, st.gid, true)) return [st.gid];
  throw new FlintError('FLINT_ERR_VM_START_FAILED', `/dev/kvm (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o777).toString(8)}) cannot be opened by the VM's uid ${uid}`, {
    hint: 'Make /dev/kvm read-writable by its group (the `kvm` group on Debian: mode 0660), or set `accel: tcg`.',
    details: { uid, gid },
  });
}

/**
 * QEMU opens the disks and creates its sockets by path, as the VM's uid:
 * every directory above the workDir must let that uid pass (search, `x`;
 * never read or write). Flint never changes those modes itself.
 */
async function checkSearchable(workDir: string, uid: number, gid: number): Promise<void> {
  if (uid === 0) return;
  for (let dir = dirname(workDir); ; dir = dirname(dir)) {
    const st = await stat(dir).catch(() => undefined);
    const bit = st === undefined ? 0 : st.uid === uid ? 0o100 : st.gid === gid ? 0o010 : 0o001;
    if (st !== undefined && (st.mode & bit) === 0) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `the VM's uid ${uid} / gid ${gid} cannot reach its work dir ${workDir}: ${dir} (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o777).toString(8)}) does not let it pass`, {
        hint: `QEMU runs as the runner's uid/gid and opens the VM's disks there: \`chmod o+x ${dir}\` (search only, no listing), or \`chgrp ${gid} ${dir} && chmod g+x ${dir}\`.`,
        details: { workDir, uid, gid, dir },
      });
    }
    if (dir === dirname(dir)) return;
  }
}

/**
 * The files QEMU opens or creates as the VM's uid: `vmm/` for its sockets,
 * and `console.out` and `qemu.pid`, made here in root's workDir so that
 * QEMU can write them but never replace them.
 */
async function prepareVmmFiles(workDir: string, uid: number, gid: number): Promise<void> {
  const dir = join(workDir, VMM_DIR);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  await chown(dir, uid, gid);
  for (const f of [CONSOLE_FILE, PID_FILE]) {
    const path = join(workDir, f);
    // 'wx': a fresh file; anything in its place was removed above.
    await writeFile(path, '', { flag: 'wx', mode: 0o600 });
    await chown(path, uid, gid);
  }
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
