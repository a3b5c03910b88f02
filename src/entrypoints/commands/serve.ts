/**
 * `flint serve --config FILE [--log-level L]`: parses its arguments, loads
 * the configuration, starts Flint through the composition root
 * (entrypoints/flint.ts: `startFlint`, or `startWebhooksOnly` under
 * `--webhooks-only`) and waits for a stop signal. It opens nothing itself.
 *
 * Shutdown (SIGTERM / SIGINT): first a drain (flint.ts, daemon/drain.ts):
 * no new VM, idle runners removed, busy runners given up to `shutdownGrace`
 * to finish their jobs while the intake keeps taking webhooks; a second
 * signal, or the first one under `--now`, stops at once. Then flint.ts
 * stops the loops and VMs, stops accepting connections, lets requests in
 * flight finish (their deliveries are committed before they are
 * answered), flushes the last group commit and closes the database.
 */
import { FlintError } from '../../core/errors/index.ts';
import { configFileWarning, referencedFileWarnings } from '../../config/file-mode.ts';
import { DEFAULT_CONFIG_PATH, loadConfigFile, parseConfigFile } from '../../config/load.ts';
import { nodeHostProbe } from '../../config/host-probe.ts';
import type { ConfigProblem } from '../../config/problems.ts';
import { checkUsable, type HostProbe } from '../../config/usable.ts';
import { createLogger, logLevelFrom } from '../../adapters/log/logger.ts';
import type { Synchronous } from '../../adapters/store/db.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../http/server.ts';
import { DEFAULT_SYNCHRONOUS, startFlint, startWebhooksOnly } from '../flint.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint serve [--config FILE] [--log-level LEVEL] [--db-sync FULL|NORMAL] [--webhook-body-limit BYTES] [--webhooks-only] [--now]

Runs Flint: takes GitHub webhooks on POST /webhook (health: GET /healthz),
schedules runners for queued jobs and supervises their VMs. address host:443
serves HTTPS with a certificate obtained and renewed by ACME (port 80 answers
the challenges), tls: serves your own certificate, any other port plain HTTP
(docs/operations.md, "HTTPS").

  --config FILE              configuration (default: $FLINT_CONFIG or ${DEFAULT_CONFIG_PATH})
  --log-level LEVEL          trace, debug, info, warn, error, fatal or silent (overrides logLevel)
  --db-sync FULL|NORMAL      SQLite durability of acknowledged webhooks (default ${DEFAULT_SYNCHRONOUS};
                             see docs/webhooks.md)
  --webhook-body-limit BYTES largest webhook body taken (default ${DEFAULT_MAX_BODY_BYTES})
  --webhooks-only            take and store webhooks but start no VMs and call no GitHub API
                             (to check the App's webhook setup before the host is ready)
  --now                      the first SIGTERM/SIGINT stops at once instead of draining

SIGTERM or SIGINT drains: no new runners, idle runners removed, busy runners
get up to shutdownGrace (config, default 30m) to finish their jobs, then
what is left is stopped. A second SIGTERM or SIGINT stops at once (running
jobs fail). Under systemd, set TimeoutStopSec above shutdownGrace
(docs/operations.md, "Stopping Flint").
`;

interface Args {
  readonly config: string | undefined;
  readonly synchronous: Synchronous;
  readonly maxBodyBytes: number;
  readonly webhooksOnly: boolean;
  readonly now: boolean;
  readonly help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let config: string | undefined;
  let synchronous: Synchronous = DEFAULT_SYNCHRONOUS;
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  let help = false;
  let webhooksOnly = false;
  let now = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new FlintError('FLINT_ERR_USAGE', `${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') help = true;
    else if (flag === '--webhooks-only') webhooksOnly = true;
    else if (flag === '--now') now = true;
    else if (flag === '--config' || flag === '-c') config = value();
    else if (flag === '--log-level') value(); // read by logLevelFrom
    else if (flag === '--db-sync') {
      const v = value().toUpperCase();
      if (v !== 'FULL' && v !== 'NORMAL') throw new FlintError('FLINT_ERR_USAGE', `--db-sync is FULL or NORMAL, not ${v}`);
      synchronous = v;
    } else if (flag === '--webhook-body-limit') {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v < 1024) throw new FlintError('FLINT_ERR_USAGE', '--webhook-body-limit is a number of bytes, at least 1024');
      maxBodyBytes = v;
    } else throw new FlintError('FLINT_ERR_USAGE', `unknown option ${a}`);
  }
  return { config, synchronous, maxBodyBytes, webhooksOnly, now, help };
}

/** What `flint config check` would call not usable on this host yet: missing or unreadable kernels, images and binaries, a key that does not parse. */
export function unusableOnThisHost(path: string, env: Readonly<Record<string, string | undefined>>, probe: HostProbe = nodeHostProbe): ConfigProblem[] {
  const parsed = parseConfigFile(path, env);
  return parsed.ok ? checkUsable(parsed.config, parsed, probe) : [];
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const path = args.config ?? io.env.FLINT_CONFIG ?? DEFAULT_CONFIG_PATH;
  const config = loadConfigFile(path, io.env);
  const logger = createLogger({ level: logLevelFrom(argv, config.logLevel), secrets: new Set([...config.github.webhookSecrets, ...(config.status?.token === undefined ? [] : [config.status.token]), ...(config.store?.postgres?.password === undefined ? [] : [config.store.postgres.password])]), destination: io.stdout });
  const readable = configFileWarning(path);
  for (const w of [...(readable === undefined ? [] : [readable]), ...referencedFileWarnings(config)]) logger.warn({ code: w.code, hint: w.hint }, w.message);
  if (!args.webhooksOnly) {
    // Started anyway (the files may be on their way), but the operator hears
    // at once why every launch of a definition will fail, not only from its
    // launch errors and back-off.
    for (const p of unusableOnThisHost(path, io.env)) {
      logger.warn({ code: p.code, key: p.path, hint: p.hint }, `${p.message}: VMs that need it cannot start until this is fixed (\`flint config check\` lists every such setting)`);
    }
  }
  const options = { config, logger, synchronous: args.synchronous, maxBodyBytes: args.maxBodyBytes };
  const serving: Stoppable = args.webhooksOnly ? await startWebhooksOnly(options) : await startFlint(options);
  await stopOnSignals(serving, process, { now: args.now, logger });
  return 0;
}

/** What a stop signal acts on: a running Flint (drains) or the webhook intake alone (closes). */
export interface Stoppable {
  close(): Promise<void>;
  drain?(): Promise<unknown>;
}

/** What stopOnSignals logs with (pino's logger satisfies it). */
export interface StopLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Where stop signals come from (the process; an EventEmitter in tests). */
export interface SignalSource {
  on(event: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
}

/**
 * Waits for SIGTERM or SIGINT, then stops `serving`: the first signal
 * drains (unless `now`), a second one stops at once. Resolves once stopped;
 * the handlers stay on until then, so no signal falls back to Node's
 * default (die without cleaning up).
 */
export function stopOnSignals(serving: Stoppable, source: SignalSource, options: { readonly now: boolean; readonly logger: StopLogger }): Promise<void> {
  const { logger } = options;
  return new Promise<void>((resolve, reject) => {
    let signals = 0;
    const finish = (err?: unknown): void => {
      source.off('SIGTERM', on);
      source.off('SIGINT', on);
      if (err === undefined) resolve();
      else reject(err instanceof Error ? err : new Error(String(err)));
    };
    const stopped = (p: Promise<unknown>): void => { p.then(() => finish(), finish); };
    function on(signal: NodeJS.Signals): void {
      signals += 1;
      if (signals === 1 && !options.now && serving.drain !== undefined) {
        logger.info({ signal }, 'flint serve: draining: no new runners; busy runners may finish their jobs (send the signal again to stop at once)');
        stopped(serving.drain());
      } else if (signals === 1 || signals === 2) {
        logger.warn({ signal }, 'flint serve: stopping at once');
        stopped(serving.close());
      }
      // Later signals: already stopping at once.
    }
    source.on('SIGTERM', on);
    source.on('SIGINT', on);
  });
}
