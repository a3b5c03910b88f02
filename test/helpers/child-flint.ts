/**
 * A whole Flint in a child process (test/vm/flint-child.ts), for tests and
 * benchmarks that kill it with SIGKILL and start another on the same state.
 *
 *   const child = await startChildFlint(setup.closeFirst, { config, guestExtras, logFile, secret });
 *   child.proc.kill('SIGKILL'); await exited(child.proc);
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { FlintConfig } from '../../src/config/types.ts';
import type { ChildFlintOptions } from '../vm/flint-child.ts';

const CHILD = new URL('../vm/flint-child.ts', import.meta.url).pathname;

export interface ChildFlintArgs {
  readonly config: FlintConfig;
  readonly guestExtras: Readonly<Record<string, string>>;
  /** Flint's log (JSON lines), appended to by every child. */
  readonly logFile: string;
  readonly secret: string;
  readonly flint?: ChildFlintOptions;
  /** More environment for the child (not sent to it as settings), e.g. secrets as an operator's `{env: VARIABLE}` would hold them. */
  readonly env?: Readonly<Record<string, string>>;
  /** Runs the child in the network namespace of this process (`nsenter -t <pid> -n`), e.g. a fleet host's. */
  readonly netnsPid?: number;
}

/** Resolves once the process has ended (at once if it already has). */
export function exited(proc: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r();
    else proc.once('exit', () => r());
  });
}

/**
 * Starts a Flint child process; resolves with its webhook URL once it
 * serves. A child still running at the end is stopped (`closeFirst`) with
 * SIGTERM, which stops its VMs too (they would outlive a SIGKILL), and
 * killed if it has not ended within a minute.
 */
export async function startChildFlint(closeFirst: (close: () => unknown) => void, args: ChildFlintArgs): Promise<{ proc: ChildProcess; url: string; statusUrl: string | undefined }> {
  // The arguments hold the App's key and the webhook secret: on stdin, never on a command line.
  const { env, netnsPid, ...settings } = args;
  const node = [process.execPath, '--import', 'tsx', CHILD];
  // nsenter enters the namespace and execs node: the child's pid is Flint's own, as a signal to it needs.
  const [cmd, ...argv] = netnsPid === undefined ? node : ['nsenter', '-t', String(netnsPid), '-n', '--', ...node];
  if (cmd === undefined) throw new Error('no command');
  const proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  proc.stdin?.end(JSON.stringify(settings));
  closeFirst(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const kill = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    await exited(proc);
    clearTimeout(kill);
  });
  const { url, statusUrl } = await new Promise<{ url: string; statusUrl: string | undefined }>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^URL (\S+)\n/m.exec(out);
      if (m?.[1] !== undefined) resolve({ url: m[1], statusUrl: /^STATUS (\S+)\n/m.exec(out)?.[1] });
    });
    proc.once('exit', (code, signal) => reject(new Error(`Flint exited before it served (code ${code}, signal ${signal})`)));
  });
  return { proc, url, statusUrl };
}
