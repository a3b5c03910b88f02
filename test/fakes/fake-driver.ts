/**
 * A HypervisorDriver whose "VMM" is a real child process (node) that plays
 * a guest on its stdout: prints console markers on a timer, echoes console
 * input, powers off on SIGTERM (unless told to hang). Because it is a real
 * process, pids, /proc command lines, signals and exits behave as with a
 * real VMM — the supervisor's sweep and kill paths are exercised for real.
 *
 * Its command line names the VM's work dir (like QEMU's drive paths do), so
 * the start-up sweep can recognise it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { HypervisorDriver, RunningVm, VmExit, VmmHandle, VmSpec } from '../../src/daemon/vm/ports.ts';
import { isSameLiveProcess, signalIfSame, watchProcess } from '../../src/adapters/hypervisor/vmm-process.ts';

export interface FakeGuestScript {
  /** ms before "FLINT-MARKER booted"; null = never boots. */
  readonly bootMs: number | null;
  /** ms after boot before the runner starts; null = never. */
  readonly runnerStartMs?: number | null;
  /** ms the runner runs; null = forever (a hanging job). */
  readonly runnerRunMs?: number | null;
  readonly runnerExitCode?: number;
  /** Kill the VMM with this signal, afterMs after the booted marker (after its start if it never boots), as a crash would. */
  readonly crash?: { readonly afterMs: number; readonly signal: 'SIGSEGV' | 'SIGKILL' } | undefined;
  /** Ignore SIGTERM (a guest that will not power off). */
  readonly ignoreStop?: boolean;
}

const GUEST = String.raw`
const s = JSON.parse(process.argv[1]);
const out = (l) => process.stdout.write(l + '\r\n');
out('fake guest: kernel starting');
process.on('SIGTERM', () => { if (!s.ignoreStop) { out('fake guest: powering off'); process.exit(0); } });
process.stdin.on('data', (d) => out('echo: ' + d.toString().trim()));
const crash = () => { if (s.crash) setTimeout(() => process.kill(process.pid, s.crash.signal), s.crash.afterMs); };
if (s.bootMs === null) crash();
if (s.bootMs !== null) setTimeout(() => {
  out('FLINT-MARKER booted');
  crash();
  if (s.runnerStartMs === null || s.runnerStartMs === undefined) return;
  setTimeout(() => {
    out('FLINT-MARKER runner-started');
    if (s.runnerRunMs === null || s.runnerRunMs === undefined) return;
    setTimeout(() => { out('FLINT-MARKER runner-exited code=' + (s.runnerExitCode ?? 0)); process.exit(0); }, s.runnerRunMs);
  }, s.runnerStartMs);
}, s.bootMs);
setInterval(() => {}, 1 << 30);
`;

export class FakeDriver implements HypervisorDriver {
  readonly kind: 'qemu' | 'firecracker';
  script: FakeGuestScript;
  /** Make start() throw (a VMM that cannot start). */
  failStart = false;
  readonly started: VmSpec[] = [];
  readonly cleaned: string[] = [];
  /** Ids of the VMs adopt() took over. */
  readonly adopted: string[] = [];

  constructor(script: FakeGuestScript, kind: 'qemu' | 'firecracker' = 'qemu') {
    this.script = script;
    this.kind = kind;
  }

  async start(spec: VmSpec): Promise<RunningVm> {
    if (this.failStart) throw new Error('fake VMM refused to start');
    this.started.push(spec);
    const sock = join(spec.workDir, 'fake-vmm');
    mkdirSync(sock, { recursive: true });
    writeFileSync(join(sock, 'pid'), '');
    const child = spawn(process.execPath, ['-e', GUEST, JSON.stringify(this.script), sock], { stdio: ['pipe', 'pipe', 'inherit'] });
    // stdio is 'pipe', so these exist; pid exists once spawn succeeded (checked below).
    const { stdin, stdout } = child as unknown as { stdin: NonNullable<typeof child.stdin>; stdout: NonNullable<typeof child.stdout> };
    await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
    const exited = new Promise<VmExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    stdin.on('error', () => {});
    return {
      id: spec.id,
      pid: child.pid ?? -1,
      handle: { pid: child.pid ?? -1, startTime: '', controlSocket: join(sock, 'pid'), consoleFile: '' },
      console: stdout,
      consoleInput: stdin,
      exited,
      async stop(graceMs: number): Promise<VmExit> {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const exit = await exited;
        clearTimeout(t);
        return exit;
      },
    };
  }

  /**
   * Takes over any live process named by the handle (pid + start time), as
   * a real driver takes over a VMM a killed Flint left: its end is noticed
   * by polling /proc; stop() sends SIGTERM, then SIGKILL after the grace.
   * It has no console to read on (an empty stream), and its exit status is
   * unknown to the fake (reported as code 0).
   */
  async adopt(id: string, _workDir: string, handle: VmmHandle): Promise<RunningVm | null> {
    if (!(await isSameLiveProcess(handle.pid, handle.startTime))) return null;
    this.adopted.push(id);
    const watch = watchProcess(handle.pid, handle.startTime, 20);
    const console = new PassThrough();
    const exited = watch.gone.then((): VmExit => {
      console.end();
      return { code: 0, signal: null };
    });
    const consoleInput = new PassThrough();
    consoleInput.resume();
    return {
      id, pid: handle.pid, handle, console, consoleInput, exited,
      async stop(graceMs: number): Promise<VmExit> {
        await signalIfSame(handle.pid, handle.startTime, 'SIGTERM');
        const t = setTimeout(() => void signalIfSame(handle.pid, handle.startTime, 'SIGKILL'), graceMs);
        const exit = await exited;
        clearTimeout(t);
        return exit;
      },
    };
  }

  async cleanup(id: string, workDir: string): Promise<void> {
    this.cleaned.push(id);
    rmSync(join(workDir, 'fake-vmm'), { recursive: true, force: true });
  }
}
