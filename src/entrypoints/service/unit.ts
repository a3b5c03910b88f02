/**
 * The systemd unit `flint service install` writes: a pure function of the
 * configuration and where node and flint live, so the unit is reviewed in
 * tests and with `--dry-run`, and verified with `systemd-analyze verify`.
 *
 * Why each setting (docs/operations.md, "flint service install"):
 *
 * - Flint runs as root: the jailer must start as root to chroot, make the
 *   jail's device nodes, join cgroups and then drop to the VM's uid/gid;
 *   taps, bridges and nftables need CAP_NET_ADMIN. What root may do is cut
 *   down to the capabilities below (CapabilityBoundingSet).
 * - NoNewPrivileges=yes is compatible: the jailer drops privileges with
 *   setuid()/setgid() as root, which the flag allows; it forbids only gaining
 *   privileges through set-uid binaries or file capabilities at execve, which
 *   neither Flint, the jailer, Firecracker nor QEMU rely on (Firecracker sets
 *   the flag on itself before loading its seccomp filters anyway).
 * - KillMode=process: SIGTERM, and the final SIGKILL, reach Flint alone.
 *   Flint drains and stops its VMs itself; if Flint crashes or is restarted,
 *   the VMM processes are left running for the next start to adopt instead
 *   of being killed with the unit's other processes.
 * - TimeoutStopSec = shutdownGrace + a minute: the drain lets busy jobs
 *   finish for up to shutdownGrace, then stops what is left.
 * - ProtectSystem=strict; writable are the state dir (database, VM work
 *   dirs, the jailer's chroot base <stateDir>/jail, ACME files) and the run
 *   dir (bridge claims): StateDirectory= / RuntimeDirectory= when they lie
 *   under /var/lib and /run (systemd makes them; the runtime directory is
 *   preserved across restarts), ReadWritePaths= otherwise. /dev, /proc and /sys stay as they are:
 *   Flint needs /dev/kvm and /dev/net/tun, writes net.ipv4.ip_forward and
 *   the jailer writes cgroup files. For the same reason the unit sets no
 *   DevicePolicy, PrivateDevices, ProtectKernelTunables,
 *   ProtectControlGroups or ProtectClock (which would close the device list).
 * - ProtectHome and PrivateTmp are on unless a configured path lives there.
 */
import { posix } from 'node:path';
import type { FlintConfig } from '../../config/types.ts';
import { DEFAULTS } from '../../config/defaults.ts';

/** What the unit is made from. */
export interface UnitInput {
  /** Absolute path of the node binary that runs Flint. */
  readonly node: string;
  /** Absolute path of Flint's launcher (bin/flint.mjs). */
  readonly flint: string;
  /** Absolute path of the configuration file. */
  readonly configFile: string;
  readonly config: Pick<FlintConfig, 'stateDir' | 'runDir' | 'shutdownGraceSeconds' | 'address' | 'tls' | 'runners' | 'acme'> & {
    readonly github: Pick<FlintConfig['github'], 'privateKeyFile'>;
  };
}

/** Time the drain's final step gets after shutdownGrace: stop what is left (10 s stop grace each), close the store. */
export const STOP_MARGIN_SECONDS = 60;

/** Capabilities Flint (as root) and the programs it starts need; everything else is dropped from the bounding set. */
export const CAPABILITIES: readonly (readonly [string, string])[] = [
  ['CAP_NET_ADMIN', 'taps, bridges, addresses, nftables, neighbour entries'],
  ['CAP_SYS_ADMIN', 'the jailer: mount namespace, bind mounts, pivot_root, entering network namespaces'],
  ['CAP_SYS_CHROOT', 'the jailer: chroot into the jail'],
  ['CAP_MKNOD', 'the jailer: /dev/kvm, /dev/net/tun and /dev/userfaultfd inside the jail'],
  ['CAP_SETUID', 'the jailer, setpriv (QEMU): drop to the VM\'s uid'],
  ['CAP_SETGID', 'the jailer, setpriv (QEMU): drop to the VM\'s gid'],
  ['CAP_CHOWN', 'hand jail files, disks and the config drive to the VM\'s uid/gid'],
  ['CAP_FOWNER', 'set modes on files handed to the VM\'s uid'],
  ['CAP_DAC_OVERRIDE', 'reach files of the VM\'s uid in its work dir and jail for teardown'],
  ['CAP_SYS_RESOURCE', 'the jailer: resource limits of the VMM'],
  ['CAP_KILL', 'stop VMM processes that run as the VM\'s uid'],
  ['CAP_NET_BIND_SERVICE', 'listen on ports 443 and 80'],
];

/** Where systemd hides or replaces a directory for ProtectHome= and PrivateTmp=. */
const HOME_DIRS = ['/home', '/root', '/run/user'];
const TMP_DIRS = ['/tmp', '/var/tmp'];
const under = (path: string, dirs: readonly string[]): boolean => dirs.some((d) => path === d || path.startsWith(`${d}/`));

/** systemd's time span for a number of seconds, in the largest unit that is exact. */
export function timeSpan(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}min`;
  return `${seconds}s`;
}

/** A path as one systemd word: quoted when it holds spaces or quotes; '%' escaped as '%%'. */
function word(s: string): string {
  const e = s.replace(/%/g, '%%');
  return /[\s"'\\]/.test(e) ? `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : e;
}

export function renderUnit(input: UnitInput): string {
  const { config } = input;
  const grace = config.shutdownGraceSeconds ?? DEFAULTS.shutdownGraceSeconds;
  const readPaths = [
    input.node, input.flint, input.configFile,
    ...config.runners.flatMap((r) => [r.kernel, r.initrd ?? '', r.filesystem, r.jailer, r.firecracker]),
    config.github.privateKeyFile ?? '', config.tls?.certFile ?? '', config.tls?.keyFile ?? '', config.acme.caFile ?? '',
  ].filter((p) => p !== '');
  const writePaths = [config.stateDir, config.runDir];
  // Directories systemd makes and opens for writing itself; the rest must exist (the install makes them).
  const stateDirectory = relativeTo('/var/lib', config.stateDir);
  const runtimeDirectory = relativeTo('/run', config.runDir);
  const otherWrites = directoriesToMake(config);
  const all = [...readPaths, ...writePaths];
  // ProtectHome=read-only still lets Flint read images kept in a home directory; only a state dir there needs it off.
  const protectHome = writePaths.some((p) => under(p, HOME_DIRS)) ? 'no' : readPaths.some((p) => under(p, HOME_DIRS)) ? 'read-only' : 'yes';
  const privateTmp = all.some((p) => under(p, TMP_DIRS)) ? 'no' : 'yes';
  const exec = [input.node, input.flint, 'serve', '--config', input.configFile].map(word).join(' ');
  const caps = CAPABILITIES.map(([c]) => c).join(' ');
  return [
    `# Written by \`flint service install\` for ${input.configFile}.`,
    '# Why each setting: docs/operations.md, "flint service install". Rewrite it after',
    '# changing stateDir, runDir, shutdownGrace or file paths in the configuration.',
    '[Unit]',
    'Description=Flint: GitHub Actions jobs in throw-away microVMs',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${exec}`,
    'Restart=on-failure',
    'RestartSec=5s',
    '# The drain: busy jobs get shutdownGrace to finish, then what is left is stopped.',
    `# shutdownGrace (${timeSpan(grace)}) + ${timeSpan(STOP_MARGIN_SECONDS)}:`,
    `TimeoutStopSec=${timeSpan(grace + STOP_MARGIN_SECONDS)}`,
    '# Signals reach Flint alone: it stops its VMs itself, and VMs outlive a crash or restart.',
    'KillMode=process',
    'LimitNOFILE=1048576',
    '',
    '# Root, cut down: the jailer starts as root and drops to each VM\'s uid/gid.',
    'NoNewPrivileges=yes',
    ...CAPABILITIES.map(([c, why]) => `# ${c}: ${why}`),
    `CapabilityBoundingSet=${caps}`,
    'ProtectSystem=strict',
    ...(stateDirectory === undefined ? [] : [`StateDirectory=${word(stateDirectory)}`]),
    // Preserved across restarts: the bridge claims there belong to VMs that outlive a restart.
    ...(runtimeDirectory === undefined ? [] : [`RuntimeDirectory=${word(runtimeDirectory)}`, 'RuntimeDirectoryPreserve=yes']),
    ...(otherWrites.length === 0 ? [] : [`ReadWritePaths=${otherWrites.map(word).join(' ')}`]),
    `ProtectHome=${protectHome}`,
    `PrivateTmp=${privateTmp}`,
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'SystemCallArchitectures=native',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** `path` relative to `base` when it lies strictly below it. */
function relativeTo(base: string, path: string): string | undefined {
  const rel = posix.relative(base, posix.normalize(path));
  return rel === '' || rel.startsWith('..') || posix.isAbsolute(rel) ? undefined : rel;
}

/** The directories the unit expects to exist before it starts (systemd makes the others). */
export function directoriesToMake(config: Pick<FlintConfig, 'stateDir' | 'runDir'>): string[] {
  return [relativeTo('/var/lib', config.stateDir) === undefined ? config.stateDir : undefined, relativeTo('/run', config.runDir) === undefined ? config.runDir : undefined]
    .filter((p) => p !== undefined);
}

/** `flint.service` in `dir`. */
export function unitPath(dir: string): string {
  return posix.join(dir, 'flint.service');
}
