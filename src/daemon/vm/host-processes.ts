/**
 * The port for finding and killing VMM processes a crashed Flint left
 * behind, by what their command line says (the implementation on /proc is
 * adapters/host/proc-host-processes.ts). Used only by the start-up sweep.
 *
 * A process belongs to a VM when one of its arguments names the VM id as a
 * whole word of a path or option: `--id <vm id>` (jailer), `…/vms/<vm id>/…`
 * (QEMU drives, sockets). A log viewer like `tail …/consoles/<vm id>.log`
 * does not match (".log" follows the id), and neither does Flint itself.
 */
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
