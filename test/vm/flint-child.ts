/**
 * A whole Flint in its own process, for tests that kill it: runs
 * `startFlint` on the configuration it is given, prints `URL <webhook base>`
 * once it serves, logs (JSON lines) to `logFile`, and closes on SIGTERM.
 *
 *   tsx test/vm/flint-child.ts '{"config":{…},"guestExtras":{…},"logFile":"…","flint":{…}}'
 *
 * `flint` (optional): more options of startFlint that JSON can carry (loop
 * intervals, jobTruth, redeliver, backoff).
 */
import { createWriteStream } from 'node:fs';
import { createLogger } from '../../src/adapters/log/logger.ts';
import type { FlintConfig } from '../../src/config/types.ts';
import { startFlint } from '../../src/entrypoints/flint.ts';
import type { FlintOptions } from '../../src/entrypoints/flint.ts';

export type ChildFlintOptions = Pick<FlintOptions, 'tickMs' | 'reconcileMs' | 'staleRunnersMs' | 'jobTruth' | 'redeliver' | 'backoff'>;

const opts = JSON.parse(process.argv[2] ?? '{}') as { config: FlintConfig; guestExtras: Record<string, string>; logFile: string; secret: string; flint?: ChildFlintOptions }; // written by the test that spawns us
const logger = createLogger({ level: 'info', destination: createWriteStream(opts.logFile, { flags: 'a' }), secrets: new Set([opts.secret]) });
const flint = await startFlint({ tickMs: 300, reconcileMs: 2000, staleRunnersMs: 2000, ...opts.flint, config: opts.config, logger, guestExtras: opts.guestExtras });
process.stdout.write(`URL ${flint.url}\n`);
process.once('SIGTERM', () => {
  void flint.close().then(() => process.exit(0), () => process.exit(1));
});
