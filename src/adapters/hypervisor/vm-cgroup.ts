/**
 * Per-VM cgroups for VMMs that Flint starts itself (QEMU): the same limits
 * the jailer puts on Firecracker (cpu.max, memory.max, pids.max), on the
 * cgroup hierarchy the host has.
 *
 *   - cgroup v2 (unified, with the cpu, memory and pids controllers): the
 *     VM's cgroup is `<cgroup2 mount>/flint/<vmId>`, beside the jailer's
 *     `<mount>/firecracker/<vmId>` and, like it, outside the cgroup of
 *     Flint's own systemd unit. A VM therefore outlives a restart of the
 *     unit, and the unit needs no `Delegate=` (v2 lets a cgroup that holds
 *     processes, such as the unit's, hand no controllers to children).
 *   - cgroup v1 (legacy or hybrid hosts, where the controllers sit in v1
 *     hierarchies): one cgroup per controller, `<controller mount><Flint's
 *     own cgroup there>/flint/<vmId>`. v1 has no rule against nesting
 *     below a cgroup with processes, so any limit the host put on Flint
 *     stays over its VMs too. Limits: cpu.cfs_quota_us/cfs_period_us,
 *     memory.limit_in_bytes, pids.max.
 *
 * The VMM joins by writing its own pid to every `cgroup.procs` before it
 * execs (qemu.ts's wrapper), so it never runs a moment unlimited.
 * Names are only ever Flint VM ids: nothing else is created or removed.
 */
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseVmId } from '../../core/ids.ts';
import { cgroupSettings, parseMounts, VMM_CONTROLLERS } from './cgroup.ts';
import type { VmmCgroupLimits } from './cgroup.ts';

/** Where VM cgroups go on this host. */
export type CgroupLayout =
  | { readonly version: 2; readonly root: string }
  | { readonly version: 1; readonly cpu: string; readonly memory: string; readonly pids: string };

export const CGROUP_PARENT = 'flint';
const CONTROLLERS = VMM_CONTROLLERS;

/**
 * The layout from /proc/mounts, /proc/self/cgroup and the root's
 * `cgroup.controllers` (pure). v2 wins when it has all three controllers;
 * otherwise v1 when every controller has a v1 hierarchy; else none.
 */
export function cgroupLayout(mounts: string, selfCgroup: string, v2Controllers: (root: string) => string | undefined): CgroupLayout | undefined {
  const rows = parseMounts(mounts);
  for (const m of rows) {
    if (m.type !== 'cgroup2') continue;
    const root = m.dir;
    const have = (v2Controllers(root) ?? '').trim().split(/\s+/);
    if (CONTROLLERS.every((c) => have.includes(c))) return { version: 2, root };
  }
  // v1: "<id>:<controller list>:<path>" lines name Flint's own cgroup per hierarchy.
  const own = new Map<string, string>();
  for (const line of selfCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m?.[1]) for (const c of m[1].split(',')) own.set(c, m[2] ?? '/');
  }
  const dirs: Partial<Record<(typeof CONTROLLERS)[number], string>> = {};
  for (const m of rows) {
    if (m.type !== 'cgroup') continue;
    for (const c of CONTROLLERS) if (m.options.includes(c) && dirs[c] === undefined) dirs[c] = join(m.dir, own.get(c) ?? '/').replace(/(.)\/$/, '$1');
  }
  if (dirs.cpu !== undefined && dirs.memory !== undefined && dirs.pids !== undefined) return { version: 1, cpu: dirs.cpu, memory: dirs.memory, pids: dirs.pids };
  return undefined;
}

/** The VM's cgroup directories (one on v2, one per controller on v1). */
export function vmCgroupDirs(layout: CgroupLayout, vmId: string): string[] {
  if (!parseVmId(vmId)) throw new RangeError(`not a Flint VM id: ${JSON.stringify(vmId)}`);
  const bases = layout.version === 2 ? [layout.root] : [layout.cpu, layout.memory, layout.pids];
  return bases.map((b) => join(b, CGROUP_PARENT, vmId));
}

/** The files to write, in order, with their values (pure): the jailer's settings (cgroup.ts), plus no swap on v2. */
export function limitWrites(layout: CgroupLayout, vmId: string, limits: VmmCgroupLimits): Array<[string, string]> {
  const dirs = vmCgroupDirs(layout, vmId);
  const [cpu, memory, pids] = layout.version === 2 ? [dirs[0], dirs[0], dirs[0]] : dirs;
  const dirOf = (file: string): string => (file.startsWith('cpu.') ? cpu : file.startsWith('memory.') ? memory : pids) ?? '';
  const writes = cgroupSettings(layout.version, limits).map(({ file, value }): [string, string] => [join(dirOf(file), file), value]);
  // No swap beyond the limit: a guest must not spill to the host's swap.
  if (layout.version === 2) writes.splice(2, 0, [join(dirs[0] ?? '', 'memory.swap.max'), '0']);
  return writes;
}

/** The host's layout, read once per process. */
let detected: Promise<CgroupLayout | undefined> | undefined;
export function hostCgroupLayout(): Promise<CgroupLayout | undefined> {
  detected ??= (async () => {
    const [mounts, self] = await Promise.all([readFile('/proc/mounts', 'utf8').catch(() => ''), readFile('/proc/self/cgroup', 'utf8').catch(() => '')]);
    const controllers = new Map<string, string>();
    for (const m of parseMounts(mounts)) {
      if (m.type === 'cgroup2') controllers.set(m.dir, await readFile(join(m.dir, 'cgroup.controllers'), 'utf8').catch(() => ''));
    }
    return cgroupLayout(mounts, self, (root) => controllers.get(root));
  })();
  return detected;
}

/**
 * Creates the VM's cgroup with its limits; returns the `cgroup.procs`
 * files the VMM must join. On v2 the parent gets the controllers enabled
 * for its children first (and the root for the parent).
 */
export async function createVmCgroup(layout: CgroupLayout, vmId: string, limits: VmmCgroupLimits): Promise<string[]> {
  const dirs = vmCgroupDirs(layout, vmId);
  if (layout.version === 2) {
    const parent = join(layout.root, CGROUP_PARENT);
    await mkdir(parent, { recursive: true });
    const enable = CONTROLLERS.map((c) => `+${c}`).join(' ');
    for (const dir of [layout.root, parent]) {
      const on = (await readFile(join(dir, 'cgroup.subtree_control'), 'utf8')).trim().split(/\s+/);
      if (!CONTROLLERS.every((c) => on.includes(c))) await writeFile(join(dir, 'cgroup.subtree_control'), enable);
    }
  }
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  for (const [file, value] of limitWrites(layout, vmId, limits)) {
    try {
      await writeFile(file, value);
    } catch (err) {
      // memory.swap.max is absent when the kernel has no swap accounting: nothing to limit then.
      if (!(file.endsWith('memory.swap.max') && (err as NodeJS.ErrnoException).code === 'ENOENT')) throw err;
    }
  }
  return dirs.map((d) => join(d, 'cgroup.procs'));
}

/**
 * Removes the VM's cgroup (idempotent). The caller ends the VMM first; a
 * process still inside (its pid file lost, say) is killed: everything in
 * the VM's cgroup belongs to that VM. Returns the directories that could
 * not be removed.
 */
export async function removeVmCgroup(layout: CgroupLayout, vmId: string): Promise<Array<{ dir: string; error: string }>> {
  const failed: Array<{ dir: string; error: string }> = [];
  for (const dir of vmCgroupDirs(layout, vmId)) {
    // A process that just exited may still be leaving the cgroup: a few tries.
    for (let i = 0; ; i++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || i >= 100) {
          failed.push({ dir, error: (err as Error).message });
          break;
        }
        if (i % 10 === 0) await killMembers(dir);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  return failed;
}

async function killMembers(dir: string): Promise<void> {
  const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 1);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
