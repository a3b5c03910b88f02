/**
 * The host side of the emulated Firecracker: paths as the jailed process
 * sees them, permission checks as the jailer's uid/gid, the tap check, and
 * booting the planned VM with QEMU.
 *
 * The emulator is not chrooted (it needs node and QEMU from the host), so it
 * resolves every API path inside the jail root itself and refuses anything
 * that leaves it, and it checks file access against the file's own owner
 * and mode for the jail's uid/gid — what the jailed Firecracker, which owns
 * every directory of its jail, would meet.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { realpathSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { qemuArgs } from '../../src/adapters/hypervisor/qemu-args.ts';
import type { QemuAccel } from '../../src/adapters/hypervisor/qemu-args.ts';
import { hostTscKhz } from '../../src/adapters/hypervisor/qemu-host.ts';
import type { VmSpec } from '../../src/daemon/vm/ports.ts';
import type { BootPlan, RateLimiterState, TokenBucketState, VmmHost } from './api.ts';

/** A bucket's sustained rate per second; undefined when Firecracker would not limit (size or refill time 0). */
function perSecond(b: TokenBucketState | undefined): number | undefined {
  if (b === undefined || b.size === 0 || b.refillTimeMs === 0) return undefined;
  return Math.max(1, Math.round((b.size * 1000) / b.refillTimeMs));
}

/**
 * QEMU's block throttling for a Firecracker drive rate limiter: the
 * bandwidth bucket's rate as `throttling.bps-total`, the ops bucket's as
 * `throttling.iops-total` (each a sustained rate; the buckets' burst
 * allowances are not reproduced). Empty when nothing is limited.
 */
export function qemuThrottling(r: RateLimiterState | undefined): string {
  const bps = perSecond(r?.bandwidth);
  const iops = perSecond(r?.ops);
  return `${bps !== undefined ? `,throttling.bps-total=${bps}` : ''}${iops !== undefined ? `,throttling.iops-total=${iops}` : ''}`;
}

/** Adds each drive's throttling to its `-drive id=vdX,…` argument (qemuArgs names them vda, vdb, vdc in order). */
export function withThrottling(args: readonly string[], limiters: ReadonlyArray<RateLimiterState | undefined>): string[] {
  return args.map((a, i) => {
    if (args[i - 1] !== '-drive') return a;
    const m = /^id=vd([a-z]),/.exec(a);
    if (!m) return a;
    return a + qemuThrottling(limiters[m[1]!.charCodeAt(0) - 'a'.charCodeAt(0)]); // the regex captured one letter
  });
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Resolves `path` (as seen inside the jail) to a host path inside `root`, following symlinks inside the jail only. */
export function resolveInJail(root: string, path: string): string {
  const inside = normalize(isAbsolute(path) ? path : `/${path}`);
  const candidate = join(root, inside);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch (err) {
    throw errno((err as { code?: string }).code ?? 'ENOENT', `cannot resolve ${path}`);
  }
  const rel = relative(realpathSync(root), real);
  if (rel.startsWith('..') || isAbsolute(rel)) throw errno('ENOENT', `${path} leaves the jail`);
  return real;
}

/** Would a process with exactly (uid, gid) and no supplementary groups get this access? */
export function canAccess(hostPath: string, uid: number, gid: number, write: boolean): boolean {
  if (uid === 0) return true;
  const st = statSync(hostPath);
  const shift = st.uid === uid ? 6 : st.gid === gid ? 3 : 0;
  const bits = (st.mode >> shift) & 0o7;
  return (bits & 0o4) !== 0 && (!write || (bits & 0o2) !== 0);
}

export interface JailHostOptions {
  readonly id: string;
  readonly root: string;
  readonly uid: number;
  readonly gid: number;
  readonly accel: QemuAccel;
  /** Called once when the VM process has ended (exit code of QEMU, or null on a signal). */
  readonly onVmExit: (code: number | null) => void;
}

/** QMP: one connection, capabilities negotiation, one command. */
function qmpCommand(socket: string, command: object): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const conn = connect(socket);
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error('QMP did not answer in time'));
    }, 5000);
    conn.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event !== undefined) continue;
        if (msg.error) {
          clearTimeout(timer);
          conn.destroy();
          reject(new Error(msg.error.desc ?? 'QMP error'));
          return;
        }
        if (stage === 0 && msg.QMP !== undefined) {
          stage = 1;
          conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (stage === 1 && msg.return !== undefined) {
          stage = 2;
          conn.write(JSON.stringify(command) + '\n');
        } else if (stage === 2 && msg.return !== undefined) {
          clearTimeout(timer);
          conn.end();
          resolvePromise();
        }
      }
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function createJailHost(opts: JailHostOptions): VmmHost & { readonly qemu: () => ChildProcess | undefined } {
  let child: ChildProcess | undefined;
  const qmpSocket = resolve(opts.root, 'qemu-qmp.sock');

  return {
    qemu: () => child,
    openInJail(path, write) {
      const host = resolveInJail(opts.root, path);
      if (statSync(host).isDirectory()) throw errno('EISDIR', `${path} is a directory`);
      if (!canAccess(host, opts.uid, opts.gid, write)) throw errno('EACCES', `${path}: permission denied`);
      return host;
    },
    checkTap(name) {
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) return 'Invalid argument (os error 22)';
      // Asked through netlink (`ip`), not /sys: sysfs shows the namespace it was mounted in, not ours.
      let info: Array<{ linkinfo?: { info_kind?: string; info_data?: { type?: string } } }>;
      try {
        info = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as typeof info; // ip -j prints a JSON array
      } catch {
        return 'No such device (os error 19)';
      }
      const kind = info[0]?.linkinfo;
      if (kind?.info_kind !== 'tun' || kind.info_data?.type !== 'tap') return 'Invalid argument (os error 22)';
      return undefined;
    },
    async boot(plan: BootPlan) {
      const [rootfs, scratch, config, ...extra] = plan.drives;
      // The emulator boots the guest contract's machine only; anything else is a driver bug worth failing on.
      if (!rootfs || !scratch || !config || extra.length > 0) {
        throw new Error(`emulator boots the guest contract's three drives only, got ${plan.drives.length}`);
      }
      if (!rootfs.root || !rootfs.readOnly || scratch.readOnly || !config.readOnly) {
        throw new Error('emulator expects drives rootfs (root, read-only), scratch (read-write), config (read-only)');
      }
      const [net, ...moreNets] = plan.nets;
      if (!net || moreNets.length > 0 || net.mac === undefined) {
        throw new Error('emulator expects exactly one network interface with a guest_mac');
      }
      const spec: VmSpec = {
        id: opts.id,
        vcpus: plan.vcpus,
        memoryMib: plan.memoryMib,
        smt: plan.smt,
        kernel: plan.kernel,
        ...(plan.initrd !== undefined ? { initrd: plan.initrd } : {}),
        kernelArgs: plan.kernelArgs,
        drives: { rootfs: rootfs.hostPath, scratch: scratch.hostPath, config: config.hostPath },
        net: { tap: net.tap, mac: net.mac },
        workDir: opts.root,
        uid: opts.uid,
        gid: opts.gid,
      };
      // TCG guests on microvm need the TSC frequency on their command line (see qemu-args.ts).
      const tscKhz = await hostTscKhz();
      const cmd = qemuArgs(spec, { accel: opts.accel, qmpSocket, ...(tscKhz !== undefined ? { tscKhz } : {}) });
      // Disk rate limiters become QEMU block throttling; the network ones are recorded only
      // (QEMU has no rate limit on a tap netdev; docs/firecracker.md, "The emulator").
      const args = withThrottling(cmd.args, [rootfs.rateLimiter, scratch.rateLimiter, config.rateLimiter]);
      // setpriv --pdeathsig: QEMU dies with the emulator, as the guest dies with Firecracker.
      // Serial console on the emulator's own stdin/stdout: the driver reads Firecracker's stdout.
      const proc = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd.binary, ...args], { stdio: 'inherit' });
      child = proc;
      await new Promise<void>((ok, fail) => {
        proc.once('spawn', ok);
        proc.once('error', fail);
      });
      proc.once('exit', (code) => opts.onVmExit(code));
    },
    async ctrlAltDel() {
      if (!child || child.exitCode !== null) throw new Error('the VM is not running');
      // The QEMU driver's graceful stop (src/adapters/hypervisor/qemu.ts): Ctrl-Alt-Del on the
      // i8042, plus the ACPI power button for guests whose kernel finds no i8042 on microvm.
      await qmpCommand(qmpSocket, {
        execute: 'send-key',
        arguments: { keys: ['ctrl', 'alt', 'delete'].map((k) => ({ type: 'qcode', data: k })) },
      });
      await qmpCommand(qmpSocket, { execute: 'system_powerdown' }).catch(() => undefined);
    },
  };
}
