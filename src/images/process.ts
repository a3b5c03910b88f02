/**
 * Running the long external programs an image build needs (tar, make,
 * debootstrap, mkfs), with their output kept out of the terminal but the
 * last lines at hand when they fail.
 */
import { spawn } from 'node:child_process';
import { FlintError } from '../core/errors/index.ts';

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called with every output line (stdout and stderr), e.g. for progress. */
  readonly onLine?: (line: string) => void;
  /** Lines of output kept for the error message when the program fails. */
  readonly tailLines?: number;
  readonly nice?: boolean;
}

export async function runProgram(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<void> {
  const tail: string[] = [];
  const keep = opts.tailLines ?? 30;
  const [file, argv] = opts.nice ? ['nice', ['-n', '10', cmd, ...args]] : [cmd, [...args]];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > keep) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => {
      reject(new FlintError('FLINT_ERR_PREREQUISITE_MISSING', `cannot run ${cmd}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new FlintError('FLINT_ERR_IMAGE_STEP_FAILED', `${cmd} ${args.slice(0, 3).join(' ')}… failed (${signal ?? `exit ${code}`}); last output:\n${tail.join('\n')}`));
    });
  });
}
