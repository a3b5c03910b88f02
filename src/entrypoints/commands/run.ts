/**
 * `flint run [--interactive] <runner> [--config FILE] [--env KEY=VALUE]…`
 *
 * Boots ONE VM from a runner definition — no GitHub, no HTTP. With
 * --interactive the VM's serial console is on this terminal (raw mode; keys
 * go to the guest, Ctrl-C included); Ctrl-] leaves, which stops the VM.
 * Without it the console is copied to stdout and the command ends when the
 * guest powers off. SIGINT, SIGTERM and SIGHUP stop the VM in both modes.
 * The VM is torn down completely before the command returns.
 *
 * Exit status: 0 the VM ended `stopped`, 1 it ended `failed`, 2 usage.
 */
import { DEFAULT_CONFIG_PATH, loadConfigFile } from '../../config/load.ts';
import type { FlintConfig, RunnerConfig } from '../../config/types.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { Logger, VmHandle, VmSupervisor } from '../../daemon/vm/supervisor.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint run [--interactive] <runner> [--config FILE] [--env KEY=VALUE]...

Boots one VM from the runner definition named <runner>, with no GitHub and no HTTP.

  --interactive, -i  put the VM's serial console on this terminal; leave with Ctrl-]
                     (which stops the VM)
  --config FILE      configuration file (default: $FLINT_CONFIG or ${DEFAULT_CONFIG_PATH})
  --env KEY=VALUE    add an entry to the guest's config drive (repeatable), e.g.
                     --env FLINT_RUNNER_COMMAND=/bin/sh (values show in the host's
                     process list: never pass a secret this way)

The original form \`flint --config FILE --interactive <runner>\` works too.
The VM and everything it used are removed when it ends. Exit status: 0 the VM
ended normally, 1 it failed, 2 bad usage.
`;

/** Ctrl-] — the detach key of telnet and QEMU's monitor; never needed inside a guest shell. */
export const DETACH_KEY = 0x1d;

interface Args {
  readonly runner: string | undefined;
  readonly config: string | undefined;
  readonly interactive: boolean;
  readonly env: Record<string, string>;
  readonly help: boolean;
}

export function parseRunArgs(argv: readonly string[]): Args {
  let runner: string | undefined;
  let config: string | undefined;
  let interactive = false;
  let help = false;
  const env: Record<string, string> = {};
  const value = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined) throw new FlintError('FLINT_ERR_USAGE', `${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--interactive' || a === '-i') interactive = true;
    else if (a === '--config' || a === '-c') config = value(++i, a);
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else if (a === '--env' || a.startsWith('--env=')) {
      const kv = a === '--env' ? value(++i, a) : a.slice('--env='.length);
      const eq = kv.indexOf('=');
      if (eq <= 0 || !/^[A-Z_][A-Z0-9_]*$/.test(kv.slice(0, eq))) {
        throw new FlintError('FLINT_ERR_USAGE', `--env takes KEY=VALUE with an upper-case KEY, not "${kv.slice(0, 40)}"`);
      }
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a.startsWith('-')) throw new FlintError('FLINT_ERR_USAGE', `unknown option ${a}`);
    else if (runner === undefined) runner = a;
    else throw new FlintError('FLINT_ERR_USAGE', 'flint run takes one runner name');
  }
  return { runner, config, interactive, env, help };
}

export function findRunner(config: FlintConfig, name: string): RunnerConfig {
  const exact = config.runners.find((r) => r.name === name);
  if (exact !== undefined) return exact;
  const folded = config.runners.filter((r) => r.name.toLowerCase() === name.toLowerCase());
  if (folded.length === 1 && folded[0] !== undefined) return folded[0];
  const names = config.runners.map((r) => `"${r.name}"`).join(', ') || 'none';
  throw new FlintError('FLINT_ERR_VM_UNKNOWN_RUNNER', `no runner named "${name}" in ${config.source} (runners: ${names})`);
}

/** The terminal a session talks to; the process's own by default, a test's otherwise. */
export interface Terminal {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly output: { write(chunk: Buffer | string): unknown };
  readonly status: { write(chunk: string): unknown };
  /** Subscribes to SIGINT/SIGTERM/SIGHUP; returns the unsubscribe. */
  onSignal(listener: (signal: string) => void): () => void;
}

export function processTerminal(): Terminal {
  return {
    input: process.stdin,
    output: process.stdout,
    status: process.stderr,
    onSignal(listener) {
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      const handlers = signals.map((s) => { const h = () => listener(s); process.on(s, h); return [s, h] as const; });
      return () => { for (const [s, h] of handlers) process.off(s, h); };
    },
  };
}

/**
 * Boots one VM and connects it to the terminal until it ends. Always leaves
 * the terminal as it found it and the VM torn down.
 */
export async function runSession(supervisor: VmSupervisor, runner: RunnerConfig, env: Readonly<Record<string, string>>, term: Terminal,
  options: { interactive: boolean }): Promise<number> {
  const { interactive } = options;
  let handle: VmHandle | undefined;
  let leaving: string | undefined;
  const leave = (why: string) => {
    if (leaving !== undefined) return;
    leaving = why;
    term.status.write(`\r\nflint: ${why}; stopping the VM…\r\n`);
    void handle?.stop(why);
  };
  const offSignal = term.onSignal((s) => leave(`${s} received`));
  const raw = interactive && term.input.isTTY === true && typeof term.input.setRawMode === 'function';
  const onInput = (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const k = buf.indexOf(DETACH_KEY);
    if (k === -1) {
      handle?.writeConsole(buf);
      return;
    }
    if (k > 0) handle?.writeConsole(buf.subarray(0, k));
    leave('Ctrl-] pressed');
  };
  try {
    handle = await supervisor.launch(runner, env, interactive ? { maxLifetimeMs: null } : {});
    handle.onConsole((c) => term.output.write(c));
    term.status.write(`flint: VM ${handle.id} of runner "${runner.name}" starting (${runner.hypervisor})${interactive ? '; leave with Ctrl-]' : ''}\r\n`);
    if (leaving !== undefined) void handle.stop(leaving);
    if (interactive) {
      if (raw) term.input.setRawMode?.(true);
      term.input.on('data', onInput);
      term.input.resume();
    }
    const { record, code } = await handle.ended;
    term.status.write(`\r\nflint: VM ${record.id} ${record.state}${record.reason === null ? '' : ` (${record.reason})`}${code === undefined ? '' : ` [${code}]`}\r\n`);
    return record.state === 'stopped' ? 0 : 1;
  } finally {
    offSignal();
    if (interactive) {
      term.input.off('data', onInput);
      if (raw) term.input.setRawMode?.(false);
      term.input.pause();
    }
  }
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const args = parseRunArgs(argv);
  if (args.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (args.runner === undefined) throw new FlintError('FLINT_ERR_USAGE', 'flint run needs the name of a runner definition (see --help)');
  const config = loadConfigFile(args.config ?? io.env.FLINT_CONFIG ?? DEFAULT_CONFIG_PATH, io.env);
  const runner = findRunner(config, args.runner);
  const logger = stderrLogger(io);
  // Loaded only now: --help and usage errors never open SQLite or load drivers.
  const { buildVmSystem } = await import('../vm-system.ts');
  // With a PostgreSQL store the VM's record goes there, as `flint serve`'s
  // do: the VM id sequence is shared with the daemon of the same instance,
  // so the two never make the same VM id (and tap, and directory).
  const postgres = config.store?.postgres === undefined ? undefined
    : await (await import('../../adapters/store/postgres/index.ts')).openPostgresStores(config.store.postgres);
  let system: Awaited<ReturnType<typeof buildVmSystem>>;
  try {
    system = await buildVmSystem(config, logger, postgres === undefined ? {} : { vmStore: postgres.vms });
  } catch (err) {
    await postgres?.close();
    throw err;
  }
  try {
    return await runSession(system.supervisor, runner, args.env, processTerminal(), { interactive: args.interactive });
  } finally {
    await system.supervisor.shutdown('flint run ends');
    system.close();
    await postgres?.close();
  }
}

/**
 * Only warnings and errors reach the terminal during a session (the console
 * owns it); they go to stderr as one line each, with \r for raw mode.
 */
function stderrLogger(io: CommandIo): Logger {
  const line = (level: string) => (obj: object, msg: string) => {
    io.stderr.write(`\r\nflint ${level}: ${msg} ${JSON.stringify(obj)}\r\n`);
  };
  return { debug: () => {}, info: () => {}, warn: line('warn'), error: line('error') };
}
