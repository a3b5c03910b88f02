/**
 * A HypervisorDriver whose "VMs" live in this process: no child process, no
 * VMM, a console that is a stream the test writes to. For load on the
 * daemon (bench/burst.ts: a thousand VMs in seconds), where the per-VM
 * process of FakeDriver would measure `fork`, not Flint. Tests of the
 * supervisor's kill and sweep paths want FakeDriver, whose VMMs are real
 * processes.
 *
 * What a guest does is the caller's `guest` function: it gets the VM's
 * spec, can print console lines (markers included) and ends the VMM with
 * `exit`. `stop()` ends it at once, as a guest that powers off would.
 */
import { PassThrough } from 'node:stream';
import type { HypervisorDriver, RunningVm, VmExit, VmSpec } from '../../src/daemon/vm/ports.ts';

/**
 * The pid these VMs report: above any kernel's pid_max (at most 2^22), so a
 * signal the supervisor sends to it (its kill backstop) reaches nothing.
 * Never -1 or 0: kill(2) reads those as "every process" and "my group".
 */
export const NO_PROCESS = 2 ** 31 - 1;

export interface InstantGuest {
  readonly spec: VmSpec;
  /** Prints one console line (CR LF, as a serial console does). Ignored once the VM ended. */
  say(line: string): void;
  /** Ends the VMM with this exit; later calls are ignored. */
  exit(exit?: VmExit): void;
  /** True once the VMM ended (exit or stop). */
  readonly ended: boolean;
}

export class InstantDriver implements HypervisorDriver {
  readonly kind: 'qemu' | 'firecracker';
  /** Every start call, in order: the VM's id and when it was asked for (epoch ms). */
  readonly starts: { readonly id: string; readonly at: number }[] = [];
  readonly cleaned: string[] = [];
  private readonly guest: (g: InstantGuest) => void;
  private readonly now: () => number;

  constructor(guest: (g: InstantGuest) => void, options: { kind?: 'qemu' | 'firecracker'; now?: () => number } = {}) {
    this.guest = guest;
    this.kind = options.kind ?? 'qemu';
    this.now = options.now ?? Date.now;
  }

  async start(spec: VmSpec): Promise<RunningVm> {
    this.starts.push({ id: spec.id, at: this.now() });
    const console = new PassThrough();
    const consoleInput = new PassThrough();
    consoleInput.resume();
    let settle: (e: VmExit) => void = () => undefined;
    const exited = new Promise<VmExit>((resolve) => { settle = resolve; });
    let ended = false;
    const exit = (e: VmExit = { code: 0, signal: null }): void => {
      if (ended) return;
      ended = true;
      console.end();
      settle(e);
    };
    const guest: InstantGuest = {
      spec,
      say: (line) => { if (!ended) console.write(`${line}\r\n`); },
      exit,
      get ended() { return ended; },
    };
    // After the caller has attached to the console, as a real guest's first
    // output comes after its VMM started.
    setImmediate(() => this.guest(guest));
    return {
      id: spec.id, pid: NO_PROCESS, handle: { pid: NO_PROCESS, startTime: '', controlSocket: '', consoleFile: '' }, console, consoleInput, exited,
      async stop(): Promise<VmExit> {
        exit({ code: null, signal: 'SIGTERM' });
        return exited;
      },
    };
  }

  /** In-memory guests do not outlive their process: nothing to take over. */
  async adopt(): Promise<null> {
    return null;
  }

  async cleanup(id: string): Promise<void> {
    this.cleaned.push(id);
  }
}
