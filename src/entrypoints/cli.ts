/**
 * The `flint` command line: a thin dispatcher. Each command lives in its own
 * module under `commands/` and is imported only when it runs, so that
 * `flint config check` never loads SQLite or the hypervisor drivers.
 */
import { FlintError, isFlintError } from '../core/errors/index.ts';
import type { CommandIo } from './io.ts';
import { processIo } from './io.ts';

export interface Command {
  /** Words that select the command, e.g. ['config', 'check']. */
  readonly words: readonly string[];
  readonly summary: string;
  readonly load: () => Promise<{ run: (argv: string[], io: CommandIo) => Promise<number> }>;
}

export const commands: readonly Command[] = [
  { words: ['config', 'check'], summary: 'Validate a configuration file and summarise it', load: () => import('./commands/config-check.ts') },
  { words: ['serve'], summary: 'Run Flint: take webhooks, schedule runners, supervise VMs', load: () => import('./commands/serve.ts') },
  { words: ['run'], summary: 'Boot one VM from a runner definition (--interactive: console on this terminal)', load: () => import('./commands/run.ts') },
  { words: ['demo'], summary: 'Run Flint end to end on embedded defaults against the GitHub simulator', load: () => import('./commands/demo.ts') },
  { words: ['image', 'build'], summary: 'Build guest kernels and root filesystems', load: () => import('./commands/image-build.ts') },
];

function usage(): string {
  const lines = commands.map((c) => `  flint ${c.words.join(' ').padEnd(16)} ${c.summary}`);
  return [
    'Usage: flint <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'The original form `flint --interactive <runner>` is the same as `flint run --interactive <runner>`.',
    'Run `flint <command> --help` for the options of one command.',
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CommandIo = processIo()): Promise<number> {
  // The reference system's form: `flint [--config FILE] --interactive RUNNER`.
  if (argv.includes('--interactive') && argv[0] !== 'run') {
    argv = ['run', ...argv];
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout.write(usage());
    return argv.length === 0 ? 2 : 0;
  }
  const command = commands.find((c) => c.words.every((w, i) => argv[i] === w));
  if (command === undefined) {
    io.stderr.write(`flint: unknown command "${argv.join(' ')}"\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(argv.slice(command.words.length), io);
  } catch (err) {
    return reportFatal(err, io);
  }
}

/** Print an error the way every command does: code, message, what to do next. */
export function reportFatal(err: unknown, io: CommandIo): number {
  if (isFlintError(err)) {
    io.stderr.write(`flint: ${err.code}: ${err.message}\n  hint: ${err.hint}\n`);
    return err.code === 'FLINT_ERR_USAGE' ? 2 : 1;
  }
  const wrapped = new FlintError('FLINT_ERR_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  io.stderr.write(`flint: ${wrapped.code}: ${wrapped.message}\n  hint: ${wrapped.hint}\n`);
  if (err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return 1;
}
