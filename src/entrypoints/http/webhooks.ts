/**
 * The webhook intake on the network: the intake (daemon/intake) on the
 * state database's intake store, behind the HTTP server (server.ts),
 * listening on the config's `address` (listen.ts). The composition root
 * (entrypoints/flint.ts) owns the database and says what `/healthz` reports.
 */
import type { FlintConfig } from '../../config/types.ts';
import type { Logger } from '../../adapters/log/logger.ts';
import { createIntake } from '../../daemon/intake/intake.ts';
import type { IntakeDeps } from '../../daemon/intake/intake.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';
import { buildServer } from './server.ts';
import type { ServerDeps } from './server.ts';
import { listen } from './listen.ts';

export interface WebhookOptions {
  readonly config: FlintConfig;
  readonly logger: Logger;
  readonly store: IntakeStore;
  /** Milliseconds since the epoch. */
  readonly clock: () => number;
  readonly health: NonNullable<ServerDeps['health']>;
  readonly maxBodyBytes?: number;
  /** See IntakeDeps.onAccepted: a job moved (e.g. poke the scheduler). */
  readonly onAccepted?: IntakeDeps['onAccepted'];
}

export interface WebhookIntake {
  readonly url: string;
  /** Stops accepting, lets requests in flight finish (each is answered only once committed), flushes the last group commit. */
  close(): Promise<void>;
}

export async function startWebhooks(options: WebhookOptions): Promise<WebhookIntake> {
  const { config, logger, store } = options;
  const intake = createIntake({
    store, runners: config.runners, secrets: config.github.webhookSecrets, clock: options.clock, logger,
    ...(options.onAccepted === undefined ? {} : { onAccepted: options.onAccepted }),
  });
  const server = buildServer({
    intake, logger, health: options.health,
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
  });
  const listening = await listen(server, config.address);
  let closing: Promise<void> | undefined;
  return {
    url: listening.url,
    close() {
      closing ??= (async () => {
        await listening.close();
        await intake.flush();
      })();
      return closing;
    },
  };
}
