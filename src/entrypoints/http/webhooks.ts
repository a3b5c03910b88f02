/**
 * The webhook intake on the network: the intake (daemon/intake) on the
 * state database's intake store, behind the request handler (server.ts),
 * listening as the config says (listen.ts: plain HTTP, HTTPS with the
 * operator's files, or HTTPS by ACME with its certificate-renewal loop). The composition root
 * (entrypoints/flint.ts) owns the database and says what `/healthz` reports.
 */
import type { FlintConfig } from '../../config/types.ts';
import type { Logger } from '../../adapters/log/logger.ts';
import { createIntake } from '../../daemon/intake/intake.ts';
import type { IntakeDeps } from '../../daemon/intake/intake.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';
import type { Loop } from '../../daemon/loop.ts';
import { buildRequestHandler } from './server.ts';
import type { ServerDeps } from './server.ts';
import { describePlan, listenPlan } from '../../config/listen-plan.ts';
import { startListening } from './listen.ts';
import type { ListenOptions } from './listen.ts';

export interface WebhookOptions {
  readonly config: FlintConfig;
  readonly logger: Logger;
  readonly store: IntakeStore;
  /** Milliseconds since the epoch. */
  readonly clock: () => number;
  readonly health: NonNullable<ServerDeps['health']>;
  /** `GET /readyz`, `GET /metrics` and the deliveries observer (server.ts). */
  readonly ready?: ServerDeps['ready'];
  readonly metrics?: ServerDeps['metrics'];
  readonly observer?: ServerDeps['observer'];
  readonly maxBodyBytes?: number;
  /** See IntakeDeps.onAccepted: a job moved (e.g. observe its wait). */
  readonly onAccepted?: IntakeDeps['onAccepted'];
  /** See IntakeDeps.onCommitted: jobs may have moved (poke the scheduler). */
  readonly onCommitted?: IntakeDeps['onCommitted'];
  /** Listener overrides (tests): the ACME client, other ports, the renewal timers. */
  readonly listen?: Pick<ListenOptions, 'issuer' | 'ports' | 'timers'>;
}

export interface WebhookIntake {
  readonly url: string;
  /** How it listens, for the start-up log (e.g. "HTTPS via ACME for …"). */
  readonly tls: string;
  /** The listener's loops (certificate-renewal, tls-files), for the status of every loop. */
  readonly loops: readonly Loop[];
  /** Stops accepting, lets requests in flight finish (each is answered only once committed), flushes the last group commit. */
  close(): Promise<void>;
}

export async function startWebhooks(options: WebhookOptions): Promise<WebhookIntake> {
  const { config, logger, store } = options;
  const intake = createIntake({
    store, runners: config.runners, secrets: config.github.webhookSecrets, clock: options.clock, logger,
    ...(options.onAccepted === undefined ? {} : { onAccepted: options.onAccepted }),
    ...(options.onCommitted === undefined ? {} : { onCommitted: options.onCommitted }),
  });
  const handler = buildRequestHandler({
    intake, logger, health: options.health,
    ...(options.ready === undefined ? {} : { ready: options.ready }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.observer === undefined ? {} : { observer: options.observer }),
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
  });
  const plan = listenPlan(config);
  const listening = await startListening({ plan, handler, stateDir: config.stateDir, logger, now: options.clock, ...options.listen });
  let closing: Promise<void> | undefined;
  return {
    url: listening.url,
    tls: describePlan(plan),
    loops: listening.loops,
    close() {
      closing ??= (async () => {
        await listening.close();
        await intake.flush();
      })();
      return closing;
    },
  };
}
