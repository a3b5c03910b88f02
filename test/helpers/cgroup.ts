/**
 * Reading the limits a process runs under, for tests that check the VMM's
 * limits for real: its rlimits from /proc/<pid>/limits, and its cgroup
 * files, found through /proc/<pid>/cgroup in the hierarchy the host uses.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupHost } from '../../src/adapters/hypervisor/cgroup.ts';

/** Soft and hard limit of one line of /proc/<pid>/limits, e.g. "Max open files". */
export function rlimit(pid: number, name: string): { soft: string; hard: string } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith(name));
  if (line === undefined) throw new Error(`no "${name}" in /proc/${pid}/limits`);
  const [soft, hard] = line.slice(name.length).trim().split(/\s+/);
  return { soft: soft ?? '', hard: hard ?? '' };
}

/** The directory of `pid`'s cgroup that holds `controller`'s files. */
export function cgroupDirOf(pid: number, host: CgroupHost, controller: 'cpu' | 'memory' | 'pids'): string {
  if (host.version === 'none') throw new Error('no cgroup hierarchy on this host');
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').map((l) => l.split(':'));
  const line = host.version === 2
    ? lines.find((f) => f[0] === '0' && f[1] === '')
    : lines.find((f) => (f[1] ?? '').split(',').includes(controller));
  if (line === undefined || line[2] === undefined) throw new Error(`pid ${pid} has no cgroup for ${controller}`);
  return join(host.version === 2 ? host.mount : host.mounts[controller], line.slice(2).join(':'));
}

/** One cgroup file of `pid`, trimmed. */
export function cgroupValue(pid: number, host: CgroupHost, file: string): string {
  const controller = file.slice(0, file.indexOf('.')) as 'cpu' | 'memory' | 'pids'; // the tests name files of these three controllers
  return readFileSync(join(cgroupDirOf(pid, host, controller), file), 'utf8').trim();
}
