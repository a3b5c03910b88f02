/**
 * HostProcesses (daemon/vm/host-processes.ts) on Linux's /proc: a VMM is
 * found by its command line, killed with SIGKILL, and a process is told
 * apart from a later one with its pid by its start time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cmdlineNamesVm } from '../../daemon/vm/host-processes.ts';
import type { HostProcesses } from '../../daemon/vm/host-processes.ts';

export class ProcHostProcesses implements HostProcesses {
  private readonly proc: string;
  private readonly ownPids: ReadonlySet<number>;
  /** This process's owner tag: its pid and start time never change, so /proc is read once, not per VM. */
  private ownTag: string | undefined;

  constructor(proc = '/proc') {
    this.proc = proc;
    this.ownPids = new Set([process.pid, process.ppid]);
  }

  findVm(vmId: string): number[] {
    const out: number[] = [];
    for (const name of readdirSync(this.proc)) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (this.ownPids.has(pid)) continue;
      let raw: string;
      try {
        raw = readFileSync(`${this.proc}/${name}/cmdline`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      if (raw.length === 0) continue; // kernel thread or zombie
      if (cmdlineNamesVm(raw.split('\0'), vmId) && this.isAlive(pid)) out.push(pid);
    }
    return out;
  }

  kill(pid: number): void {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ESRCH: already gone.
    }
  }

  isAlive(pid: number): boolean {
    const f = this.statFields(pid);
    // Field 3 is the state.
    return f !== undefined && f[0] !== 'Z' && f[0] !== 'X';
  }

  self(): string {
    this.ownTag ??= `${process.pid}:${this.statFields(process.pid)?.[19] ?? '0'}`;
    return this.ownTag;
  }

  isOwnerAlive(owner: string): boolean {
    const m = /^(\d+):(\d+)$/.exec(owner);
    if (m === null) return false;
    const pid = Number(m[1]);
    const f = this.statFields(pid);
    // Same pid AND same start time (field 22): the pid was not reused.
    return f !== undefined && f[0] !== 'Z' && f[0] !== 'X' && f[19] === m[2];
  }

  /** /proc/<pid>/stat from field 3 on (the command name, field 2, may contain spaces). */
  private statFields(pid: number): string[] | undefined {
    try {
      const stat = readFileSync(`${this.proc}/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  }
}
