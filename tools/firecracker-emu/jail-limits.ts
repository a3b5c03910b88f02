/**
 * What the emulated jailer does for real to the process that becomes
 * Firecracker, in the real jailer's order (`src/jailer/src/env.rs`,
 * `cgroup.rs`, `resource_limits.rs`):
 *
 *   1. resource limits: `--resource-limit fsize=…` and `no-file=…` (no-file
 *      2048 when not given) as soft and hard limits of the jailer itself,
 *      which Firecracker inherits. Node has no setrlimit, so `prlimit`
 *      (util-linux) sets them on the jailer's own pid.
 *   2. cgroups, when `--cgroup` is given: `<hierarchy>/<parent>/<id>` is
 *      created, for v2 every controller named is enabled in
 *      `cgroup.subtree_control` from the hierarchy's root down to the
 *      parent, each value is written, and the jailer's own pid is moved in
 *      — so the forked Firecracker, and QEMU under it, start inside.
 *
 * Differences, on purpose: the pid goes to `cgroup.procs` under v1 too (the
 * real jailer writes `tasks`, which moves one thread: right for the
 * single-threaded jailer, wrong for Node), and cpuset files are not copied
 * down from the parent cgroup (Flint sets none).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { osErrorText } from './api.ts';

export class LimitError extends Error {}

export interface ResourceLimits {
  /** Bytes, as given on the command line (may exceed 2^53). */
  readonly fsize?: string;
  readonly noFile: string;
}

/** The real jailer's default for no-file. */
export const DEFAULT_NO_FILE = '2048';

export function applyResourceLimits(limits: ResourceLimits, pid = process.pid): void {
  const args = ['--pid', String(pid), `--nofile=${limits.noFile}:${limits.noFile}`];
  if (limits.fsize !== undefined) args.push(`--fsize=${limits.fsize}:${limits.fsize}`);
  try {
    execFileSync('prlimit', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const what = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    throw new LimitError(`Failed to set limit for resource: ${what}`);
  }
}

interface Mount {
  readonly dir: string;
  readonly type: string;
  readonly options: readonly string[];
}

function mounts(): Mount[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f.length >= 4).map((f) => ({
    dir: f[1]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), // length checked above
    type: f[2]!,
    options: f[3]!.split(','),
  }));
}

function write(path: string, value: string): void {
  try {
    writeFileSync(path, `${value}\n`);
  } catch (err) {
    throw new LimitError(`Failed to write to ${path}: ${osErrorText(err)}`);
  }
}

function mkdir(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    throw new LimitError(`Failed to create directory ${path}: ${osErrorText(err)}`);
  }
}

/** The controller a cgroup file belongs to: the part before the first dot. */
function controllerOf(file: string): string {
  return file.slice(0, file.indexOf('.'));
}

/**
 * Creates the VM's cgroup(s), writes the values and moves `pid` in.
 * Returns the cgroup directories made.
 */
export function applyCgroups(
  version: 1 | 2,
  parent: string,
  id: string,
  settings: ReadonlyArray<{ file: string; value: string }>,
  pid = process.pid,
): string[] {
  if (settings.length === 0) return [];
  const all = mounts();
  if (version === 2) {
    const root = all.find((m) => m.type === 'cgroup2')?.dir;
    if (root === undefined) throw new LimitError('Hierarchy not found: cgroupsv2 hierarchy missing');
    const offered = (existsSync(join(root, 'cgroup.controllers')) ? readFileSync(join(root, 'cgroup.controllers'), 'utf8') : '').trim().split(/\s+/);
    for (const s of settings) {
      const c = controllerOf(s.file);
      if (!offered.includes(c)) throw new LimitError(`Controller ${c} is unavailable`);
    }
    const dir = join(root, parent, id);
    mkdir(dir);
    // Enable each controller from the root down to the parent (the leaf itself holds the process).
    const steps = parent.split('/').filter((p) => p !== '');
    const controllers = [...new Set(settings.map((s) => controllerOf(s.file)))];
    let at = root;
    for (let i = 0; i <= steps.length; i++) {
      for (const c of controllers) write(join(at, 'cgroup.subtree_control'), `+${c}`);
      if (i < steps.length) at = join(at, steps[i]!); // i < length
    }
    for (const s of settings) write(join(dir, s.file), s.value);
    write(join(dir, 'cgroup.procs'), String(pid));
    return [dir];
  }
  const dirs = new Map<string, string>();
  for (const s of settings) {
    const c = controllerOf(s.file);
    const m = all.find((x) => x.type === 'cgroup' && x.options.includes(c));
    if (m === undefined) throw new LimitError(`Controller ${c} is unavailable`);
    const dir = join(m.dir, parent, id);
    if (!dirs.has(dir)) mkdir(dir);
    dirs.set(dir, dir);
    write(join(dir, s.file), s.value);
  }
  for (const dir of dirs.keys()) write(join(dir, 'cgroup.procs'), String(pid));
  return [...dirs.keys()];
}
