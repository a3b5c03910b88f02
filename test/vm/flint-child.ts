/**
 * A whole Flint in its own process, for tests that kill it: runs
 * `startFlint` on the configuration it is given, prints `URL <webhook base>`
 * once it serves (after `STATUS <status page base>` when it has one), logs (JSON lines) to `logFile`, and closes on SIGTERM.
 *
 *   echo '{"config":{…},"guestExtras":{…},"logFile":"…","flint":{…}}' | tsx test/vm/flint-child.ts
 *
 * The settings come on stdin, not as an argument: they hold the App's
 * private key and the webhook secret, which no command line may show.
 *
 * `flint` (optional): more options of startFlint that JSON can carry (loop
 * intervals, jobTruth, redeliver, backoff, fleet timings).
 */
import { createWriteStream } from 'node:fs';
import { text } from 'node:stream/consumers';
import { createLogger } from '../../src/adapters/log/logger.ts';
import type { FlintConfig } from '../../src/config/types.ts';
import { startFlint } from '../../src/entrypoints/flint.ts';
import type { FlintOptions } from '../../src/entrypoints/flint.ts';

export type ChildFlintOptions = Pick<FlintOptions, 'tickMs' | 'reconcileMs' | 'staleRunnersMs' | 'jobTruth' | 'redeliver' | 'backoff' | 'fleet'>;

const opts = JSON.parse(await text(process.stdin)) as { config: FlintConfig; guestExtras: Record<string, string>; logFile: string; secret: string; flint?: ChildFlintOptions }; // written by the test that spawns us
const logger = createLogger({ level: 'info', destination: createWriteStream(opts.logFile, { flags: 'a' }), secrets: new Set([opts.secret]) });
const flint = await startFlint({ tickMs: 300, reconcileMs: 2000, staleRunnersMs: 2000, ...opts.flint, config: opts.config, logger, guestExtras: opts.guestExtras });
// The status page's line first: the parent reads both once it sees URL.
if (flint.statusUrl !== undefined) process.stdout.write(`STATUS ${flint.statusUrl}\n`);
process.stdout.write(`URL ${flint.url}\n`);
process.once('SIGTERM', () => {
  void flint.close().then(() => process.exit(0), () => process.exit(1));
});
