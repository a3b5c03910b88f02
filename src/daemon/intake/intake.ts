/**
 * Webhook intake: verify, parse, persist — and nothing else. The reply
 * never waits on GitHub or on a VM (the reference system booted the VM
 * inside the request); the scheduler acts later on what the store holds.
 *
 *   headers ──readDeliveryHeaders──▶ (body read by the HTTP layer, size-limited)
 *   body ──verifySignature──▶ parseDelivery ──▶ routing ──▶ group commit ──▶ reply
 *                                   └─ cannot parse ──▶ group commit (kept unparsable) ──▶ reply
 *
 * A rejected delivery (bad headers or signature) never reaches the store.
 * A signed delivery Flint cannot parse is GitHub's news all the same: it is
 * kept whole, changes no job, and can be replayed after a fix (replay.ts).
 * Pings and events Flint does not act on are answered and not stored.
 */
import { FlintError } from '../../core/errors/index.ts';
import type { DeliveryOutcome, JobAction } from '../../core/jobs.ts';
import { mostSpecificServing } from '../../core/labels.ts';
import type { IntakeStore, JobDelivery, UnparsableDelivery } from '../ports/store.ts';
import { createGroupCommit } from './group-commit.ts';
import type { DeliveryHeaders } from './parse-delivery.ts';
import { keptHeaders, parseDelivery } from './parse-delivery.ts';
import { verifySignature } from './verify-signature.ts';

/** The logger calls the intake makes (pino's signature; a pino logger fits). */
export interface IntakeLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface IntakeDeps {
  readonly store: IntakeStore;
  /** Runner definitions, in configuration order (only name and labels are used). */
  readonly runners: readonly { readonly name: string; readonly labels: readonly string[] }[];
  /** Webhook secrets: the current one first, then the previous one during a rotation; none refuses every delivery. Never logged. */
  readonly secrets: readonly string[];
  /** Milliseconds since the epoch. */
  readonly clock: () => number;
  readonly logger: IntakeLogger;
  /** Largest group-commit batch. */
  readonly maxBatch?: number;
  /**
   * Called after a workflow_job delivery was committed and moved its job
   * (outcome `accepted`), e.g. to wake the scheduler without waiting for its
   * next tick. Must not throw; it runs after the reply is decided.
   */
  readonly onAccepted?: (job: { readonly jobId: number; readonly action: JobAction; readonly definition: string }) => void;
  /**
   * Called once a batch holding a workflow_job delivery for a runner
   * definition is committed and visible to reads — on SQLite under FULL
   * before its fsync, so before the deliveries are acknowledged (the store's
   * `ingest`, `committed`). For the scheduler's wake-up: it reads the jobs
   * from the store, and acting on a job a power loss could still take back
   * is safe (the VM goes with it; GitHub, unanswered, redelivers). Must not
   * throw.
   */
  readonly onCommitted?: () => void;
}

export type IntakeResult =
  | { readonly kind: 'rejected'; readonly error: FlintError }
  | { readonly kind: 'pong'; readonly deliveryId: string; readonly zen: string | undefined }
  | { readonly kind: 'not-handled'; readonly deliveryId: string; readonly event: string; readonly action: string | undefined }
  | { readonly kind: 'recorded'; readonly deliveryId: string; readonly jobId: number; readonly outcome: DeliveryOutcome }
  /** Signed but not parsable: kept (or already kept: `duplicate`) for inspection and replay; no job changed. */
  | { readonly kind: 'kept-unparsable'; readonly deliveryId: string; readonly outcome: 'kept' | 'duplicate'; readonly error: FlintError }
  /** The store could not commit; nothing was kept (GitHub will show the delivery as failed and it can be redelivered). */
  | { readonly kind: 'store-failed'; readonly deliveryId: string; readonly error: FlintError };

export interface Intake {
  receive(headers: DeliveryHeaders, body: Uint8Array): Promise<IntakeResult>;
  /** Waits until every delivery received so far is committed (graceful shutdown). */
  flush(): Promise<void>;
}

export function createIntake(deps: IntakeDeps): Intake {
  const { store, runners, secrets, clock, logger } = deps;
  // No secret (every runner definition is in scale-set mode): no signature verifies, every delivery is refused.
  const batchOptions = deps.maxBatch === undefined ? {} : { maxBatch: deps.maxBatch };
  // Once a batch is committed (before its fsync, on SQLite) the next batch
  // may commit, and the scheduler hears of jobs that may have moved — the
  // hook outside the store's call stack, once the commit's own code returned.
  const { onCommitted } = deps;
  const batcher = createGroupCommit<JobDelivery, DeliveryOutcome>((batch, next) => {
    const moved = onCommitted !== undefined && batch.some((d) => d.definition !== undefined) ? onCommitted : undefined;
    return store.ingest(batch, () => {
      next();
      if (moved !== undefined) queueMicrotask(moved);
    });
  }, batchOptions);
  // A second group commit for the rare unparsable delivery: as durable as a
  // parsed one (committed before the reply) without slowing the main batches.
  const keeper = createGroupCommit<UnparsableDelivery, 'kept' | 'duplicate'>((batch) => store.keepUnparsable(batch), batchOptions);

  const storeFailed = (deliveryId: string, err: unknown, what: string): IntakeResult => {
    const error = err instanceof FlintError ? err : new FlintError('FLINT_ERR_STORE_WRITE_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
    logger.error({ delivery: deliveryId, code: error.code, reason: error.message }, what);
    return { kind: 'store-failed', deliveryId, error };
  };

  const keepUnparsable = async (headers: DeliveryHeaders, body: Uint8Array, error: FlintError): Promise<IntakeResult> => {
    let outcome: 'kept' | 'duplicate';
    try {
      outcome = await keeper.submit({
        deliveryId: headers.deliveryId, event: headers.event, receivedAt: clock(), headers: keptHeaders(headers), body,
        error: { code: error.code, message: error.message },
      });
    } catch (err) {
      return storeFailed(headers.deliveryId, err, 'could not keep unparsable webhook delivery');
    }
    // Error level: GitHub's news did not reach the job table; someone should look.
    if (outcome === 'kept') {
      logger.error({ delivery: headers.deliveryId, event: headers.event, code: error.code, reason: error.message },
        'signed webhook delivery could not be parsed; kept for replay (no job changed)');
    }
    return { kind: 'kept-unparsable', deliveryId: headers.deliveryId, outcome, error };
  };

  const reject = (headers: DeliveryHeaders, error: FlintError): IntakeResult => {
    logger.warn({ delivery: headers.deliveryId, event: headers.event, code: error.code, reason: error.message }, 'webhook delivery rejected');
    return { kind: 'rejected', error };
  };

  return {
    async receive(headers, body) {
      const signedBy = verifySignature(secrets, body, headers.signature);
      if (signedBy < 0) {
        const why = headers.signature === undefined ? 'the delivery has no X-Hub-Signature-256 header' : 'the X-Hub-Signature-256 header does not match any configured webhook secret';
        return reject(headers, new FlintError('FLINT_ERR_WEBHOOK_BAD_SIGNATURE', why));
      }
      if (signedBy > 0) logger.debug({ delivery: headers.deliveryId }, 'delivery signed with the previous webhook secret');
      let parsed;
      try {
        parsed = parseDelivery(headers, body);
      } catch (err) {
        if (err instanceof FlintError) return keepUnparsable(headers, body, err);
        throw err;
      }
      switch (parsed.kind) {
        case 'ping':
          logger.info({ delivery: parsed.deliveryId, hookId: parsed.hookId }, 'webhook ping');
          return { kind: 'pong', deliveryId: parsed.deliveryId, zen: parsed.zen };
        case 'other':
          logger.debug({ delivery: parsed.deliveryId, event: parsed.event, action: parsed.action }, 'webhook event not handled');
          return { kind: 'not-handled', deliveryId: parsed.deliveryId, event: parsed.event, action: parsed.action };
        case 'workflow_job': {
          const { command } = parsed;
          const definition = mostSpecificServing(runners, command.job.labels)?.name;
          let outcome: DeliveryOutcome;
          try {
            outcome = await batcher.submit({ deliveryId: parsed.deliveryId, receivedAt: clock(), command, definition });
          } catch (err) {
            return storeFailed(parsed.deliveryId, err, 'could not record webhook delivery');
          }
          logger.debug({ delivery: parsed.deliveryId, job: command.job.id, action: command.action, definition, outcome }, 'workflow_job recorded');
          if (outcome === 'accepted' && definition !== undefined && deps.onAccepted !== undefined) {
            // The delivery is committed whatever the hook does; a failing hook is only logged.
            try {
              deps.onAccepted({ jobId: command.job.id, action: command.action, definition });
            } catch (err) {
              logger.error({ err, job: command.job.id }, 'onAccepted hook failed');
            }
          }
          return { kind: 'recorded', deliveryId: parsed.deliveryId, jobId: command.job.id, outcome };
        }
      }
    },
    flush: async () => {
      await Promise.all([batcher.flush(), keeper.flush()]);
    },
  };
}
