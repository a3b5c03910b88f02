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
  /** The command's module: its `run`, and its usage text, printed with every usage error. */
  readonly load: () => Promise<{ run: (argv: string[], io: CommandIo) => Promise<number>; HELP: string }>;
}

export const commands: readonly Command[] = [
  { words: ['config', 'check'], summary: 'Validate a configuration file and summarise it', load: () => import('./commands/config-check.ts') },
  { words: ['serve'], summary: 'Run Flint: take webhooks, schedule runners, supervise VMs', load: () => import('./commands/serve.ts') },
  { words: ['run'], summary: 'Boot one VM from a runner definition (--interactive: console on this terminal)', load: () => import('./commands/run.ts') },
  { words: ['demo'], summary: 'Run Flint end to end on embedded defaults against the GitHub simulator', load: () => import('./commands/demo.ts') },
  { words: ['app', 'create'], summary: 'Register Flint\'s GitHub App (App-manifest flow) and write it into the configuration', load: () => import('./commands/app-create.ts') },
  { words: ['doctor'], summary: 'Check this host and the GitHub App for everything flint serve needs', load: () => import('./commands/doctor.ts') },
  { words: ['service', 'install'], summary: 'Write a hardened systemd unit for flint serve', load: () => import('./commands/service-install.ts') },
  { words: ['image', 'build'], summary: 'Build guest kernels and root filesystems', load: () => import('./commands/image-build.ts') },
  { words: ['status'], summary: 'What the running Flint is doing: definitions, VMs, jobs, loops, fleet', load: async () => (await import('./commands/admin.ts')).status },
  { words: ['vms'], summary: 'Live VMs of the running Flint', load: async () => (await import('./commands/admin.ts')).vms },
  { words: ['hosts'], summary: 'The fleet\'s hosts: heartbeat, capacity, VMs, leader (PostgreSQL store)', load: async () => (await import('./commands/admin.ts')).hosts },
  { words: ['jobs'], summary: 'Recent jobs with their timings and outcome (--since)', load: async () => (await import('./commands/admin.ts')).jobs },
  { words: ['logs'], summary: 'A VM\'s console log (--follow: until the VM ends)', load: async () => (await import('./commands/admin.ts')).logs },
  { words: ['drain'], summary: 'Start no runners for a definition (or --host); idle ones go', load: async () => (await import('./commands/admin.ts')).drain },
  { words: ['resume'], summary: 'Undo a drain of a definition (or --host)', load: async () => (await import('./commands/admin.ts')).resume },
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
  let mod: Awaited<ReturnType<Command['load']>>;
  try {
    mod = await command.load();
  } catch (err) {
    return reportFatal(err, io);
  }
  try {
    return await mod.run(argv.slice(command.words.length), io);
  } catch (err) {
    const usage = usageProblem(err);
    if (usage === undefined) return reportFatal(err, io);
    io.stderr.write(`flint ${command.words.join(' ')}: ${usage}\n\n${mod.HELP}`);
    return 2;
  }
}

/**
 * The message of an error that is the caller's bad usage: Flint's own
 * FLINT_ERR_USAGE, or an unknown option or missing value found by node's
 * argument parser (util.parseArgs). Anything else is not a usage error.
 */
function usageProblem(err: unknown): string | undefined {
  if (isFlintError(err, 'FLINT_ERR_USAGE')) return `${err.code}: ${err.message}`;
  const code = (err as { code?: unknown } | null)?.code; // node's errors carry a string code
  if (err instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) return `FLINT_ERR_USAGE: ${err.message}`;
  return undefined;
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
