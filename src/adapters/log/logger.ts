/**
 * Flint's logger: pino, JSON lines, with secrets kept out (redact.ts).
 *
 *   const log = createLogger({ level: config.logLevel, secrets: new Set([...config.github.webhookSecrets]) });
 *
 * Three guards, each enough on its own for its kind of leak:
 *   1. pino `redact` paths for the well-known places (headers.authorization,
 *      privateKey, webhookSecret, token, encoded_jit_config, FLINT_JITCONFIG…);
 *   2. formatters that copy every logged object and child binding with
 *      secret-named keys replaced at any depth, errors included;
 *   3. a last pass over the finished line for PEM keys, credentials, GitHub
 *      tokens, JWTs and the literal values in `secrets` (a Set the caller may
 *      add to later, e.g. when the private key is loaded).
 */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { FlintError } from '../../core/errors/index.ts';
import type { LogLevel } from '../../config/types.ts';
import { REDACTED, redactDeep, scrubText } from './redact.ts';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where lines go; default stdout. Anything with write(string) will do (tests collect lines). */
  readonly destination?: DestinationStream | { write(line: string): unknown };
  /** Literal secret values to blank out wherever they appear. Read at every write. */
  readonly secrets?: ReadonlySet<string>;
  /** Fixed fields on every line (e.g. { instance: 'h7k2' }); default none. */
  readonly base?: Record<string, unknown>;
}

/** Well-known secret places, for pino's own redaction (one wildcard level is what pino supports). */
export const REDACT_PATHS: readonly string[] = [
  'privateKey', 'webhookSecret', 'webhookSecrets', 'previousWebhookSecret', 'token', 'jitConfig', 'encoded_jit_config', 'FLINT_JITCONFIG', 'authorization', 'password',
  '*.privateKey', '*.webhookSecret', '*.webhookSecrets', '*.previousWebhookSecret', '*.token', '*.jitConfig', '*.encoded_jit_config', '*.FLINT_JITCONFIG', '*.authorization', '*.password',
  'headers.authorization', 'headers.Authorization', '*.headers.authorization', '*.headers.Authorization',
  'req.headers.authorization', 'request.headers.authorization', 'env.FLINT_JITCONFIG', 'github.privateKey', 'github.webhookSecrets',
];

export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets ?? new Set<string>();
  // redactDeep returns an object for an object input; the formatters get objects from pino.
  const redactObject = (o: object): Record<string, unknown> => redactDeep(o) as Record<string, unknown>;
  return pino(
    {
      level: options.level,
      base: options.base ?? null,
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      serializers: {
        err: (e: unknown) => redactDeep(e),
        error: (e: unknown) => redactDeep(e),
      },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: redactObject,
        log: redactObject,
      },
      hooks: {
        streamWrite: (line: string) => scrubText(line, secrets),
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // pino accepts any object with write(string); the DestinationStream type asks for no more.
    (options.destination ?? pino.destination({ dest: 1, sync: true })) as DestinationStream,
  );
}

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * The level to log at: `--log-level LEVEL` (or `--log-level=LEVEL`) in argv
 * wins over the configured level. Throws FLINT_ERR_USAGE for an unknown level.
 */
export function logLevelFrom(argv: readonly string[], configured: LogLevel): LogLevel {
  let value: string | undefined;
  argv.forEach((a, i) => {
    if (a === '--log-level') value = argv[i + 1] ?? '';
    else if (a.startsWith('--log-level=')) value = a.slice('--log-level='.length);
  });
  if (value === undefined) return configured;
  const level = LEVELS.find((l) => l === value?.toLowerCase());
  if (level === undefined) throw new FlintError('FLINT_ERR_USAGE', `--log-level: "${value}" is not one of ${LEVELS.join(', ')}`);
  return level;
}
