/**
 * The cgroup limits of one VMM, and which cgroup hierarchy of this host can
 * hold them.
 *
 * A VMM (its threads and, for QEMU, its helper threads) gets three limits,
 * all derived from its runner definition:
 *
 *   - CPU: as many full CPUs as the guest has vCPUs (n × 100 ms per 100 ms);
 *   - memory: the guest's RAM plus an overhead for the VMM itself;
 *   - tasks: `pidsMax` threads and processes, so that a VMM taken over by
 *     its guest cannot fork-bomb the host.
 *
 * cgroup v2 is the target. Hosts that still run the v1 ("hybrid") layout
 * keep cpu, memory and pids in v1 hierarchies and leave the v2 mount without
 * those controllers; there the same limits are expressed in v1 files.
 * `detectCgroupHost` reads /proc/mounts and the hierarchies' own files to
 * tell which applies, and says why when neither does (a container with a
 * read-only /sys/fs/cgroup, say) so the caller can warn and go on without.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The controllers the limits need. */
export const VMM_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

export interface VmmCgroupLimits {
  readonly vcpus: number;
  /** Guest RAM in MiB. */
  readonly memoryMib: number;
  /** MiB allowed beyond the guest's RAM. */
  readonly overheadMib: number;
  readonly pidsMax: number;
}

export type CgroupVersion = 1 | 2;

/** CFS period: 100 ms, the kernel's default. */
const PERIOD_US = 100000;

/** cgroup v2 `cpu.max` for n vCPUs: n full CPUs per 100 ms period. */
export function cpuMax(vcpus: number): string {
  return `${vcpus * PERIOD_US} ${PERIOD_US}`;
}

export function memoryMax(memoryMib: number, overheadMib: number): string {
  return String((memoryMib + overheadMib) * 1024 * 1024);
}

/** The cgroup files and values for one VMM, in the order they are written (pure). */
export function cgroupSettings(version: CgroupVersion, l: VmmCgroupLimits): Array<{ file: string; value: string }> {
  if (version === 2) {
    return [
      { file: 'cpu.max', value: cpuMax(l.vcpus) },
      { file: 'memory.max', value: memoryMax(l.memoryMib, l.overheadMib) },
      { file: 'pids.max', value: String(l.pidsMax) },
    ];
  }
  return [
    // The period first: the quota is read against it.
    { file: 'cpu.cfs_period_us', value: String(PERIOD_US) },
    { file: 'cpu.cfs_quota_us', value: String(l.vcpus * PERIOD_US) },
    { file: 'memory.limit_in_bytes', value: memoryMax(l.memoryMib, l.overheadMib) },
    { file: 'pids.max', value: String(l.pidsMax) },
  ];
}

export interface Mount {
  readonly dir: string;
  readonly type: string;
  readonly options: readonly string[];
}

/** /proc/mounts lines, with the octal escapes of the mount point undone. */
export function parseMounts(text: string): Mount[] {
  return text.split('\n').map((l) => l.split(' ')).filter((f) => f.length >= 4).map((f) => ({
    dir: f[1]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), // length checked above
    type: f[2]!,
    options: f[3]!.split(','),
  }));
}

export type CgroupHost =
  | { readonly version: 2; readonly mount: string }
  | { readonly version: 1; readonly mounts: Readonly<Record<(typeof VMM_CONTROLLERS)[number], string>> }
  | { readonly version: 'none'; readonly reason: string };

/** Injected file access, so the decision is tested on fake trees. */
export interface CgroupFs {
  readFile(path: string): Promise<string>;
  /** Resolves when `path` is writable by this process. */
  writable(path: string): Promise<void>;
}

const realFs: CgroupFs = {
  readFile: (p) => readFile(p, 'utf8'),
  writable: (p) => access(p, constants.W_OK),
};

/**
 * Which hierarchy can hold the VMM's limits: a writable cgroup v2 mount
 * whose root offers cpu, memory and pids; else writable v1 hierarchies for
 * each of them; else none, with the reason in words.
 */
export async function detectCgroupHost(fs: CgroupFs = realFs, mountsFile = '/proc/mounts'): Promise<CgroupHost> {
  let mounts: Mount[];
  try {
    mounts = parseMounts(await fs.readFile(mountsFile));
  } catch (err) {
    return { version: 'none', reason: `cannot read ${mountsFile}: ${(err as Error).message}` };
  }
  const problems: string[] = [];
  for (const m of mounts.filter((x) => x.type === 'cgroup2')) {
    const offered = (await fs.readFile(join(m.dir, 'cgroup.controllers')).catch(() => '')).trim().split(/\s+/);
    const missing = VMM_CONTROLLERS.filter((c) => !offered.includes(c));
    if (missing.length > 0) {
      problems.push(`the cgroup v2 hierarchy at ${m.dir} offers no ${missing.join(', ')} controller`);
      continue;
    }
    try {
      await fs.writable(m.dir);
      return { version: 2, mount: m.dir };
    } catch (err) {
      problems.push(`the cgroup v2 hierarchy at ${m.dir} is not writable (${(err as { code?: string }).code ?? (err as Error).message})`);
    }
  }
  const v1: Partial<Record<(typeof VMM_CONTROLLERS)[number], string>> = {};
  for (const c of VMM_CONTROLLERS) {
    const m = mounts.find((x) => x.type === 'cgroup' && x.options.includes(c));
    if (m === undefined) continue;
    try {
      await fs.writable(m.dir);
      v1[c] = m.dir;
    } catch (err) {
      problems.push(`the cgroup v1 ${c} hierarchy at ${m.dir} is not writable (${(err as { code?: string }).code ?? (err as Error).message})`);
    }
  }
  if (v1.cpu !== undefined && v1.memory !== undefined && v1.pids !== undefined) {
    return { version: 1, mounts: { cpu: v1.cpu, memory: v1.memory, pids: v1.pids } };
  }
  if (problems.length === 0) problems.push('no cgroup hierarchy is mounted');
  return { version: 'none', reason: problems.join('; ') };
}

/** Every directory a VMM's cgroup may have on this host, for `<parent>/<id>`. */
export function cgroupDirs(host: CgroupHost, parent: string, id: string): string[] {
  if (host.version === 2) return [join(host.mount, parent, id)];
  if (host.version === 1) return [...new Set(Object.values(host.mounts))].map((m) => join(m, parent, id));
  return [];
}
