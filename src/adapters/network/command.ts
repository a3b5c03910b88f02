/**
 * Runs host networking programs (ip, nft). No shell is involved: arguments
 * go to execFile as an array, so a bridge name can never become a command.
 * The narrow `CommandRunner` interface is the seam tests and other
 * implementations plug into.
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** Resolves with the output on exit code 0; rejects with a CommandError otherwise. */
  run(program: string, args: readonly string[], options?: { input?: string }): Promise<CommandResult>;
}

export class CommandError extends Error {
  readonly program: string;
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(program: string, args: readonly string[], exitCode: number | null, stderr: string, cause?: unknown) {
    super(`${program} ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no error output'}`, cause === undefined ? undefined : { cause });
    this.name = 'CommandError';
    this.program = program;
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** sbin directories are not on every service manager's PATH; ip and nft live there. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function systemCommandRunner(options: { timeoutMs?: number } = {}): CommandRunner {
  const timeout = options.timeoutMs ?? 15_000;
  const path = [...(process.env.PATH ?? '/usr/bin:/bin').split(':'), ...SBIN].join(':');
  return {
    run(program, args, opts = {}) {
      return new Promise((resolve, reject) => {
        const child = execFile(program, [...args], { timeout, env: { PATH: path, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
          if (err) {
            // execFile's error carries the exit code as a number, or a string
            // like 'ENOENT' when the program could not be started at all.
            const code = typeof err.code === 'number' ? err.code : null;
            const why = typeof err.code === 'string' ? `${stderr}${err.code === 'ENOENT' ? `${program} not found` : err.message}` : stderr;
            reject(new CommandError(program, args, code, why, err));
            return;
          }
          resolve({ stdout, stderr });
        });
        if (opts.input !== undefined) child.stdin?.end(opts.input);
      });
    },
  };
}
