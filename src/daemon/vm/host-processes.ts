/**
 * Finding and killing VMM processes a crashed Flint left behind, by what
 * their command line says. Used only by the start-up sweep.
 *
 * A process belongs to a VM when one of its arguments names the VM id as a
 * whole word of a path or option: `--id <vm id>` (jailer), `…/vms/<vm id>/…`
 * (QEMU drives, sockets). A log viewer like `tail …/consoles/<vm id>.log`
 * does not match (".log" follows the id), and neither does Flint itself.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface HostProcesses {
  /** Pids of live (non-zombie) processes whose command line names `vmId`. */
  findVm(vmId: string): number[];
  /** Sends SIGKILL; ignores a process that is already gone. */
  kill(pid: number): void;
  /** False once the process is gone or a zombie. */
  isAlive(pid: number): boolean;
  /** This process as `<pid>:<start time>`: unique on the host across pid reuse. */
  self(): string;
  /** True while the process named by `self()` of some process is still that process and alive. */
  isOwnerAlive(owner: string): boolean;
}

/** True when `args` (a NUL-separated /proc cmdline) names `vmId` as a word. */
export function cmdlineNamesVm(args: readonly string[], vmId: string): boolean {
  // VM ids are [a-z0-9-] only (see core/ids.ts), so no escaping is needed,
  // but escape anyway: this function must never be a regex injection.
  const id = vmId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const word = new RegExp(`(^|[/=,:])${id}($|[/,:])`);
  return args.some((a) => word.test(a));
}

export class ProcHostProcesses implements HostProcesses {
  private readonly proc: string;
  private readonly ownPids: ReadonlySet<number>;

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
    return `${process.pid}:${this.statFields(process.pid)?.[19] ?? '0'}`;
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
