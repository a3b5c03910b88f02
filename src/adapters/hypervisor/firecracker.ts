/**
 * The Firecracker driver: every VM runs in its own jail, started through
 * Firecracker's jailer (docs/firecracker.md).
 *
 *   1. Jail files: `<chrootBase>/<firecracker binary name>/<vm id>/root/`
 *      receives the kernel, initrd, base rootfs, scratch disk and config
 *      drive (hard link, else reflink, else copy — see firecracker-jail.ts)
 *      and an empty log file, owned by the jail's uid/gid.
 *   2. The jailer: `--id --exec-file --uid --gid --chroot-base-dir
 *      --cgroup-version 2 --cgroup cpu.max=… --cgroup memory.max=…
 *      --cgroup pids.max=… --resource-limit no-file=… --resource-limit
 *      fsize=… --new-pid-ns -- --api-sock /run/firecracker.socket
 *      --log-path /firecracker.log --level Info`. The cgroup limits follow
 *      the runner definition (cgroup.ts); on a host whose cpu, memory and
 *      pids controllers live in cgroup v1 hierarchies the same limits go
 *      as `--cgroup-version 1` files, and on a host with no writable
 *      hierarchy the VM runs without them, with a warning. fsize is the
 *      size of the largest disk Firecracker writes, so the guest can fill
 *      its scratch disk but no file grows beyond it. Seccomp stays on (never
 *      `--no-seccomp`). With --new-pid-ns the jailer forks Firecracker,
 *      writes `root/<binary name>.pid` and exits 0; Firecracker keeps the
 *      jailer's stdio. None of it is tied to Flint's process, so the VM
 *      outlives a crash of Flint: the jailer runs in its own session, its
 *      stdout (the serial console) and stderr go to `console.out` and
 *      `vmm.stderr` in the VM's workDir (Flint tails the console file), and
 *      its stdin is the FIFO `console.in`, which Firecracker holds open for
 *      reading and writing (so it never sees end-of-file when Flint dies).
 *   3. The API over the unix socket: machine-config, boot-source, the three
 *      drives in contract order, eth0, InstanceStart; the runner's rate
 *      limits ride on the drives and eth0 as Firecracker rate limiters.
 *   4. The end: Firecracker is not our child (the jailer's parent exited),
 *      so the driver watches its pid (and its start time, against pid
 *      reuse) by polling /proc; `adopt()` does the same for a Firecracker a
 *      previous Flint process started. Its exit code is read from Firecracker's own log file
 *      (`… exit_code=N`), never from the console, which the guest controls.
 *   5. Stop: SendCtrlAltDel, then SIGKILL after the grace period. Firecracker
 *      is pid 1 of its pid namespace, where SIGTERM without a handler is
 *      ignored, so there is no SIGTERM step.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FlintError } from '../../core/errors/index.ts';
import { parseVmId } from '../../core/ids.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmmHandle, VmSpec } from '../../daemon/vm/ports.ts';
import type { Logger } from '../../daemon/vm/supervisor.ts';
import { raceTimeout } from '../race-timeout.ts';
import { cgroupSettings, detectCgroupHost, parseMounts, VMM_CONTROLLERS } from './cgroup.ts';
import type { CgroupHost, CgroupVersion } from './cgroup.ts';
import { apiCall, rawApiCall } from './firecracker-api.ts';
import { checkSharedReadable, ownPerVmFile, placeFile } from './firecracker-jail.ts';
import type { Placement } from './firecracker-jail.ts';
import { FileTail, globalPollTimers } from './vmm-process.ts';
import type { PollTimers } from './vmm-process.ts';
import { vmmEnvironment } from './vmm-env.ts';

export interface FirecrackerDriverOptions {
  /** `--chroot-base-dir`; `<stateDir>/jail` so that hard links into the jails work. */
  readonly chrootBaseDir: string;
  readonly logger: Logger;
  /** Memory the cgroup allows beyond the guest's RAM (Firecracker itself, device buffers). Default 128 MiB. */
  readonly memoryOverheadMib?: number;
  /** `--resource-limit no-file`: open files of the VMM. Default 2048, the jailer's own default. */
  readonly openFilesMax?: number;
  /** Which cgroup hierarchy holds the VMM's limits; detected from /proc/mounts when absent. */
  readonly cgroupHost?: CgroupHost;
  /** How long the API socket may take to answer after the jailer ran. Default 15 s. */
  readonly socketTimeoutMs?: number;
  /** Timeout of one API request. Default 10 s. */
  readonly apiTimeoutMs?: number;
  /** Extra environment for the jailer (the real jailer clears its environment anyway). */
  readonly env?: Readonly<Record<string, string>>;
  /** How often the console file is read and Firecracker's pid checked. Default 100 ms. */
  readonly pollMs?: number;
  readonly timers?: PollTimers;
}

/** Per-VM files in the workDir (outside the jail). */
export const CONSOLE_FILE = 'console.out';
export const CONSOLE_FIFO = 'console.in';
export const STDERR_FILE = 'vmm.stderr';

/** The socket and log paths as Firecracker sees them inside its jail. */
export const API_SOCK_IN_JAIL = '/run/firecracker.socket';
export const LOG_IN_JAIL = '/firecracker.log';

/** Names of the files inside the jail root, as the API refers to them. */
export const JAIL_FILES = {
  kernel: 'vmlinux',
  initrd: 'initrd.img',
  rootfs: 'rootfs.ext4',
  scratch: 'scratch.ext4',
  config: 'config.drive',
} as const;

/** `pids.max` when the VmSpec names none (docs/firecracker.md, "Limits"). */
export const DEFAULT_PIDS_MAX = 512;
/** `no-file` when the driver is given none: the real jailer's own default. */
export const DEFAULT_OPEN_FILES_MAX = 2048;

export interface JailerLimits {
  /** The cgroup version to pass, or 'none' to pass no `--cgroup` (the host has no usable hierarchy). */
  readonly cgroup: CgroupVersion | 'none';
  readonly memoryOverheadMib: number;
  readonly openFilesMax: number;
  /** `--resource-limit fsize`: bytes; at least the largest file Firecracker writes (the scratch disk). */
  readonly fileSizeMax: number;
}

/** The jailer's command line for one VM (pure; exported for tests and docs). */
export function jailerArgs(spec: VmSpec, chrootBaseDir: string, limits: JailerLimits): string[] {
  if (!spec.firecracker) throw new RangeError('VmSpec has no firecracker binaries');
  const cgroups = limits.cgroup === 'none' ? [] : cgroupSettings(limits.cgroup, {
    vcpus: spec.vcpus,
    memoryMib: spec.memoryMib,
    overheadMib: limits.memoryOverheadMib,
    pidsMax: spec.pidsMax ?? DEFAULT_PIDS_MAX,
  }).flatMap((c) => ['--cgroup', `${c.file}=${c.value}`]);
  return [
    '--id', spec.id,
    '--exec-file', spec.firecracker.binary,
    '--uid', String(spec.uid),
    '--gid', String(spec.gid),
    '--chroot-base-dir', chrootBaseDir,
    '--cgroup-version', limits.cgroup === 1 ? '1' : '2',
    ...cgroups,
    '--resource-limit', `no-file=${limits.openFilesMax}`,
    '--resource-limit', `fsize=${limits.fileSizeMax}`,
    '--new-pid-ns',
    '--',
    '--api-sock', API_SOCK_IN_JAIL,
    '--log-path', LOG_IN_JAIL,
    '--level', 'Info',
  ];
}

/** Refill period of every token bucket: one second, so a bucket's size is the per-second rate. */
const REFILL_MS = 1000;

/** A Firecracker TokenBucket for `perSecond` units a second. */
function bucket(perSecond: number): { size: number; refill_time: number } {
  return { size: Math.round((perSecond * REFILL_MS) / 1000), refill_time: REFILL_MS };
}

/** Firecracker's RateLimiter object for a drive, or nothing when the runner sets no disk limit. */
export function driveRateLimiter(spec: VmSpec): { rate_limiter?: Record<string, unknown> } {
  const d = spec.rateLimits?.disk;
  if (d === undefined || (d.bytesPerSecond === undefined && d.opsPerSecond === undefined)) return {};
  return {
    rate_limiter: {
      ...(d.bytesPerSecond !== undefined ? { bandwidth: bucket(d.bytesPerSecond) } : {}),
      ...(d.opsPerSecond !== undefined ? { ops: bucket(d.opsPerSecond) } : {}),
    },
  };
}

/** rx (into the guest) and tx (out of it) rate limiters of the network interface. */
export function netRateLimiters(spec: VmSpec): { rx_rate_limiter?: Record<string, unknown>; tx_rate_limiter?: Record<string, unknown> } {
  const n = spec.rateLimits?.network;
  return {
    ...(n?.rxBytesPerSecond !== undefined ? { rx_rate_limiter: { bandwidth: bucket(n.rxBytesPerSecond) } } : {}),
    ...(n?.txBytesPerSecond !== undefined ? { tx_rate_limiter: { bandwidth: bucket(n.txBytesPerSecond) } } : {}),
  };
}

/** The API requests that configure and start one VM, in order (pure). */
export function configRequests(spec: VmSpec): Array<{ path: string; body: unknown }> {
  const jail = (name: string): string => `/${name}`;
  return [
    { path: '/machine-config', body: { vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: spec.smt } },
    {
      path: '/boot-source',
      body: {
        kernel_image_path: jail(JAIL_FILES.kernel),
        ...(spec.initrd !== undefined ? { initrd_path: jail(JAIL_FILES.initrd) } : {}),
        boot_args: spec.kernelArgs,
      },
    },
    // Contract order: vda rootfs (root, read-only), vdb scratch, vdc config (read-only).
    // Each drive gets the disk limits of its own.
    { path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: jail(JAIL_FILES.rootfs), is_root_device: true, is_read_only: true, ...driveRateLimiter(spec) } },
    { path: '/drives/scratch', body: { drive_id: 'scratch', path_on_host: jail(JAIL_FILES.scratch), is_root_device: false, is_read_only: false, ...driveRateLimiter(spec) } },
    { path: '/drives/config', body: { drive_id: 'config', path_on_host: jail(JAIL_FILES.config), is_root_device: false, is_read_only: true, ...driveRateLimiter(spec) } },
    { path: '/network-interfaces/eth0', body: { iface_id: 'eth0', host_dev_name: spec.net.tap, guest_mac: spec.net.mac.toLowerCase(), ...netRateLimiters(spec) } },
    { path: '/actions', body: { action_type: 'InstanceStart' } },
  ];
}

/** Firecracker's exit line in its log: "Firecracker exiting successfully. exit_code=0" (or with error). */
export function exitCodeFromLog(log: string): number | undefined {
  const matches = [...log.matchAll(/Firecracker exit\w* [^\n]*?exit_code=(\d+)/g)];
  const last = matches.at(-1);
  return last ? Number(last[1]) : undefined;
}

/** Field 22 of /proc/<pid>/stat (start time) and the state, or undefined when the process is gone. */
async function procStat(pid: number): Promise<{ state: string; start: string } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: parse after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', start: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function jailDirs(base: string, execName: string, id: string): { jailDir: string; root: string } {
  const jailDir = join(base, execName, id);
  return { jailDir, root: join(jailDir, 'root') };
}

/**
 * Mount points of every hierarchy a VM's cgroup may be in: the cgroup v2
 * ones and the v1 ones of the controllers Flint limits (the host's layout
 * may have changed since the VM started, so cleanup looks in all of them).
 */
async function cgroupMounts(): Promise<string[]> {
  try {
    const mounts = parseMounts(await readFile('/proc/mounts', 'utf8'));
    const dirs = mounts
      .filter((m) => m.type === 'cgroup2' || (m.type === 'cgroup' && VMM_CONTROLLERS.some((c) => m.options.includes(c))))
      .map((m) => m.dir);
    return [...new Set(dirs)];
  } catch {
    return [];
  }
}

/** Pids in a cgroup (v1 and v2 alike), none when it is gone. */
async function cgroupPids(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() !== '').map(Number);
}

/**
 * Removes a VM's cgroup. A cgroup can only be removed once empty, and the
 * VMM's last processes (its children, for the emulator QEMU) may still be
 * exiting when Firecracker is gone: wait a little, then kill what is left —
 * everything in this cgroup belongs to this VM — and remove it.
 */
async function removeCgroup(dir: string, waitMs = 5000): Promise<void> {
  const deadline = Date.now() + waitMs;
  let killed = false;
  for (;;) {
    const pids = await cgroupPids(dir);
    if (pids.length === 0) {
      try {
        await rmdir(dir);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || Date.now() > deadline + waitMs) throw err;
      }
    } else if (Date.now() > deadline && !killed) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch { /* gone already */ }
      }
      killed = true;
    } else if (Date.now() > deadline + waitMs) {
      throw new Error(`processes ${pids.join(', ')} are still in ${dir}`);
    }
    await sleep(50);
  }
}

export function createFirecrackerDriver(opts: FirecrackerDriverOptions): HypervisorDriver {
  const overhead = opts.memoryOverheadMib ?? 128;
  const openFilesMax = opts.openFilesMax ?? DEFAULT_OPEN_FILES_MAX;
  let cgroupHost: Promise<CgroupHost> | undefined;
  /** Detected once, on the first start; a host without a usable hierarchy is reported once. */
  const hostCgroups = (): Promise<CgroupHost> => {
    cgroupHost ??= (opts.cgroupHost !== undefined ? Promise.resolve(opts.cgroupHost) : detectCgroupHost()).then((h) => {
      if (h.version === 'none') {
        log.warn({ reason: h.reason }, 'VMs run without cgroup limits (CPU, memory, tasks): no writable cgroup hierarchy offers the cpu, memory and pids controllers; see docs/firecracker.md, "Limits"');
      } else {
        log.info({ cgroupVersion: h.version }, 'VMM limits go into cgroups');
      }
      return h;
    });
    return cgroupHost;
  };
  const socketTimeout = opts.socketTimeoutMs ?? 15000;
  const apiTimeout = opts.apiTimeoutMs ?? 10000;
  const log = opts.logger;
  const pollMs = opts.pollMs ?? 100;
  const timers = opts.timers ?? globalPollTimers;

  async function placeAll(spec: VmSpec, root: string): Promise<void> {
    const { uid, gid } = spec;
    const shared: Array<[string, string, string]> = [
      ['kernel', spec.kernel, JAIL_FILES.kernel],
      ...(spec.initrd !== undefined ? [['initrd', spec.initrd, JAIL_FILES.initrd] as [string, string, string]] : []),
      ['base rootfs', spec.drives.rootfs, JAIL_FILES.rootfs],
    ];
    const placements: Record<string, Placement> = {};
    for (const [what, src, name] of shared) {
      await checkSharedReadable(what, src, uid, gid);
      placements[name] = await placeFile(src, join(root, name));
    }
    const perVm: Array<[string, string, number]> = [
      [spec.drives.scratch, JAIL_FILES.scratch, 0o600],
      [spec.drives.config, JAIL_FILES.config, 0o400],
    ];
    for (const [src, name, mode] of perVm) {
      placements[name] = await placeFile(src, join(root, name));
      await ownPerVmFile(join(root, name), uid, gid, mode);
    }
    // Firecracker opens its log file; it must exist and be writable by the jail's uid.
    await writeFile(join(root, LOG_IN_JAIL.slice(1)), '', { mode: 0o600 });
    await ownPerVmFile(join(root, LOG_IN_JAIL.slice(1)), uid, gid, 0o600);
    const copied = Object.entries(placements).filter(([, p]) => p === 'copy').map(([n]) => n);
    const fields = { vmId: spec.id, placements };
    if (copied.length > 0) {
      log.warn({ ...fields, copied }, 'files copied into the jail (not on the jail\'s file system, no reflink): put the images on the same file system as the state directory');
    } else {
      log.info(fields, 'files placed in the jail');
    }
  }

  async function killAndWait(pid: number, start: string | undefined, waitMs: number): Promise<void> {
    const st = await procStat(pid);
    if (!st || (start !== undefined && st.start !== start)) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const now = await procStat(pid);
      if (!now || now.state === 'Z' || now.start !== st.start) return;
      await sleep(50);
    }
  }

  /**
   * A RunningVm over a live Firecracker: its console file tailed, its pid
   * polled (settles `exited` when gone), its exit code read from its log.
   */
  function running(id: string, workDir: string, handle: VmmHandle, consoleOffset: number): RunningVm {
    // The API socket is <jail root>/run/firecracker.socket.
    const root = dirname(dirname(handle.controlSocket));
    const consoleTail = new FileTail(handle.consoleFile, { offset: consoleOffset, intervalMs: pollMs, timers });
    const consoleInput = createWriteStream(join(workDir, CONSOLE_FIFO), { flags: 'r+' });
    consoleInput.on('error', () => { /* the VM's end is reported through exited */ });
    let killedWith: string | null = null;
    let ended = false;
    const exited = new Promise<VmExit>((resolve) => {
      const check = (): void => {
        void procStat(handle.pid).then(async (st) => {
          if (st && st.state !== 'Z' && st.start === handle.startTime) {
            timers.setTimeout(check, pollMs);
            return;
          }
          ended = true;
          await consoleTail.finish();
          consoleInput.destroy();
          let code: number | null = null;
          if (killedWith === null) {
            const text = await readFile(join(root, LOG_IN_JAIL.slice(1)), 'utf8').catch(() => '');
            code = exitCodeFromLog(text) ?? null;
          }
          resolve({ code, signal: killedWith ?? (code === null ? 'unknown (Firecracker logged no exit code)' : null) });
        });
      };
      check();
    });
    return {
      id,
      pid: handle.pid,
      handle,
      console: consoleTail,
      consoleInput,
      exited,
      async stop(graceMs: number): Promise<VmExit> {
        if (ended) return exited;
        await apiCall(id, handle.controlSocket, 'PUT', '/actions', { action_type: 'SendCtrlAltDel' }, Math.min(apiTimeout, Math.max(graceMs, 100))).catch((err: unknown) => {
          log.debug({ vmId: id, err: (err as Error).message }, 'SendCtrlAltDel not delivered');
        });
        const graceful = await raceTimeout(exited.then(() => true), graceMs, () => false);
        if (!graceful && !ended) {
          killedWith = 'SIGKILL';
          log.warn({ vmId: id, graceMs }, 'guest did not shut down in time; killing firecracker');
          await killAndWait(handle.pid, handle.startTime, 5000);
        }
        return exited;
      },
    };
  }

  return {
    kind: 'firecracker',

    async start(spec: VmSpec): Promise<RunningVm> {
      if (!spec.firecracker) throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: the runner names no jailer/firecracker binaries`);
      if (!parseVmId(spec.id)) throw new FlintError('FLINT_ERR_INTERNAL', `not a Flint VM id: ${spec.id}`);
      const execName = basename(spec.firecracker.binary);
      if (!execName.includes('firecracker')) {
        throw new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: the firecracker binary ${spec.firecracker.binary} has a name without "firecracker", which the jailer refuses`, {
          hint: 'Point the runner\'s `firecracker` at the Firecracker binary under a name containing "firecracker" (e.g. /usr/local/bin/firecracker).',
        });
      }
      const { jailDir, root } = jailDirs(opts.chrootBaseDir, execName, spec.id);
      // VM ids never repeat, so anything here is a leftover of a crash with this very id.
      await rm(jailDir, { recursive: true, force: true });
      await mkdir(root, { recursive: true, mode: 0o755 });

      let pid: number | undefined;
      let pidStart: string | undefined;
      const fail = async (err: unknown): Promise<never> => {
        if (pid !== undefined) await killAndWait(pid, pidStart, 5000);
        throw err;
      };

      try {
        await placeAll(spec, root);
      } catch (err) {
        return fail(err);
      }

      // fsize: Firecracker writes the scratch disk (and its log); no file it writes needs to outgrow the largest disk.
      const diskBytes = await Promise.all([spec.drives.scratch, spec.drives.config].map((f) => stat(f).then((st) => st.size, () => 0)));
      const args = jailerArgs(spec, opts.chrootBaseDir, {
        cgroup: (await hostCgroups()).version,
        memoryOverheadMib: overhead,
        openFilesMax,
        fileSizeMax: Math.max(...diskBytes, 1024 * 1024),
      });
      const consoleFile = join(spec.workDir, CONSOLE_FILE);
      const fifo = join(spec.workDir, CONSOLE_FIFO);
      const stderrFile = join(spec.workDir, STDERR_FILE);
      for (const f of [consoleFile, fifo, stderrFile]) await rm(f, { force: true });
      let stdio: [number, number, number];
      try {
        execFileSync('mkfifo', ['-m', '0600', fifo], { stdio: 'ignore' });
        // O_RDWR: opening never blocks, and the FIFO never reports end-of-file to Firecracker.
        stdio = [openSync(fifo, 'r+'), openSync(consoleFile, 'w', 0o600), openSync(stderrFile, 'w', 0o600)];
      } catch (err) {
        return fail(new FlintError('FLINT_ERR_VM_START_FAILED', `VM ${spec.id}: could not make its console files in ${spec.workDir}: ${(err as Error).message}`, { cause: err }));
      }
      // Own session, stdio on files: the VM survives Flint's death.
      const child = spawn(spec.firecracker.jailer, args, {
        detached: true,
        stdio,
        // PATH and the driver's own settings only: Flint's environment may hold secrets (vmm-env.ts).
        env: vmmEnvironment(process.env, opts.env),
      });
      for (const fd of stdio) closeSync(fd);
      const stderrText = async (): Promise<string> => (await readFile(stderrFile, 'utf8').catch(() => '')).slice(-8192).trim();
      const jailerExit = await new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      if (jailerExit.error || jailerExit.code !== 0) {
        const why = jailerExit.error ? jailerExit.error.message : `exit code ${jailerExit.code ?? `signal ${jailerExit.signal ?? '?'}`}`;
        return fail(new FlintError('FLINT_ERR_VM_JAILER_FAILED', `the jailer (${spec.firecracker.jailer}) failed for VM ${spec.id} (${why}): ${(await stderrText()) || 'no output'}`, {
          details: { vmId: spec.id, code: jailerExit.code, signal: jailerExit.signal },
        }));
      }

      // --new-pid-ns: the jailer's parent wrote Firecracker's pid and exited.
      const pidFile = join(root, `${execName}.pid`);
      try {
        pid = Number((await readFile(pidFile, 'utf8')).trim());
        if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad pid file content`);
        pidStart = (await procStat(pid))?.start;
      } catch (err) {
        return fail(new FlintError('FLINT_ERR_VM_JAILER_FAILED', `the jailer left no usable pid file ${pidFile} for VM ${spec.id}: ${(err as Error).message}`, { cause: err }));
      }
      const socket = join(root, API_SOCK_IN_JAIL.slice(1));
      const vm = running(spec.id, spec.workDir, { pid, startTime: pidStart ?? '', controlSocket: socket, consoleFile }, 0);
      let ended = false;
      void vm.exited.then(() => { ended = true; });

      // Wait for the API socket to answer.
      const deadline = Date.now() + socketTimeout;
      for (;;) {
        if (ended) return fail(new FlintError('FLINT_ERR_VM_START_FAILED', `Firecracker of VM ${spec.id} ended before its API answered: ${(await stderrText()) || 'no output'}`));
        if (existsSync(socket)) {
          const ok = await rawApiCall(socket, 'GET', '/', undefined, 1000).then((a) => a.status === 200, () => false);
          if (ok) break;
        }
        if (Date.now() > deadline) {
          return fail(new FlintError('FLINT_ERR_VM_START_FAILED', `Firecracker of VM ${spec.id} did not open its API socket within ${socketTimeout} ms`));
        }
        await sleep(50);
      }

      try {
        for (const r of configRequests(spec)) {
          await apiCall(spec.id, socket, 'PUT', r.path, r.body, apiTimeout);
        }
      } catch (err) {
        return fail(err);
      }
      log.info({ vmId: spec.id, pid, jail: jailDir }, 'firecracker vm started');
      return vm;
    },

    async adopt(id: string, workDir: string, handle: VmmHandle, consoleOffset = 0): Promise<RunningVm | null> {
      const st = await procStat(handle.pid);
      if (!st || st.state === 'Z' || st.start !== handle.startTime) return null;
      log.info({ vmId: id, pid: handle.pid }, 'firecracker of a previous Flint process adopted');
      return running(id, workDir, handle, consoleOffset);
    },

    async cleanup(id: string, _workDir: string): Promise<void> {
      // Only a Flint VM id: never a path, never another instance's or a foreign name.
      if (!parseVmId(id)) throw new FlintError('FLINT_ERR_INTERNAL', `refusing to clean up a jail for a non-Flint id: ${JSON.stringify(id)}`);
      let names: string[];
      try {
        names = await readdir(opts.chrootBaseDir);
      } catch {
        names = [];
      }
      // Every directory under the chroot base is a jail parent (one per Firecracker binary name):
      // the base is Flint's own, and only the entry named after this VM id is touched in each.
      const execNames = names;
      for (const execName of execNames) {
        const { jailDir, root } = jailDirs(opts.chrootBaseDir, execName, id);
        if (!existsSync(jailDir)) continue;
        // A Firecracker still running in this jail (crash of Flint): kill it first, if the pid still names this VM.
        const pidText = await readFile(join(root, `${execName}.pid`), 'utf8').catch(() => '');
        const pid = Number(pidText.trim());
        if (Number.isInteger(pid) && pid > 0) {
          const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          if (cmdline.split('\0').includes(id)) {
            log.warn({ vmId: id, pid }, 'killing a firecracker left running in its jail');
            await killAndWait(pid, undefined, 5000);
          }
        }
        await rm(jailDir, { recursive: true, force: true });
      }
      for (const mount of await cgroupMounts()) {
        for (const execName of execNames.length > 0 ? execNames : ['firecracker']) {
          const dir = join(mount, execName, id);
          if (!existsSync(dir)) continue;
          await removeCgroup(dir).catch((err: unknown) => log.warn({ vmId: id, dir, err: (err as Error).message }, 'could not remove the VM\'s cgroup'));
        }
      }
    },
  };
}
