/**
 * A whole Flint in its own process, for tests that kill it: runs
 * `startFlint` on the configuration it is given, prints `URL <webhook base>`
 * once it serves, logs (JSON lines) to `logFile`, and closes on SIGTERM.
 *
 *   tsx test/vm/flint-child.ts '{"config":{…},"guestExtras":{…},"logFile":"…"}'
 */
import { createWriteStream } from 'node:fs';
import { createLogger } from '../../src/adapters/log/logger.ts';
import type { FlintConfig } from '../../src/config/types.ts';
import { startFlint } from '../../src/entrypoints/flint.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as { config: FlintConfig; guestExtras: Record<string, string>; logFile: string; secret: string }; // written by the test that spawns us
const logger = createLogger({ level: 'info', destination: createWriteStream(opts.logFile, { flags: 'a' }), secrets: new Set([opts.secret]) });
const flint = await startFlint({ tickMs: 300, reconcileMs: 2000, staleRunnersMs: 2000, config: opts.config, logger, guestExtras: opts.guestExtras });
process.stdout.write(`URL ${flint.url}\n`);
process.once('SIGTERM', () => {
  void flint.close().then(() => process.exit(0), () => process.exit(1));
});
