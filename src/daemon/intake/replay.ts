/**
 * Replays kept unparsable deliveries: each is parsed again from its stored
 * headers and raw body (with the parser of the running Flint, typically a
 * fixed one) and, when it parses now, recorded exactly as if it had just
 * arrived — same delivery id (so a redelivery from GitHub is still a
 * duplicate), same receipt time, routed to the most specific definition.
 *
 * The signature is not checked again: only deliveries whose signature was
 * valid on receipt are kept, and the secret may have been rotated since.
 *
 * Safe to repeat: a delivery recorded by a replay that crashed before
 * marking it is a `duplicate` the next time, and is then marked replayed.
 */
import { FlintError } from '../../core/errors/index.ts';
import type { DeliveryOutcome } from '../../core/jobs.ts';
import { mostSpecificServing } from '../../core/labels.ts';
import type { IntakeStore } from '../ports/store.ts';
import { parseDelivery, readDeliveryHeaders } from './parse-delivery.ts';

export interface ReplayDeps {
  readonly store: Pick<IntakeStore, 'listUnparsable' | 'updateUnparsable' | 'ingest'>;
  /** Runner definitions, in configuration order (only name and labels are used). */
  readonly runners: readonly { readonly name: string; readonly labels: readonly string[] }[];
  /** Milliseconds since the epoch. */
  readonly clock: () => number;
}

export type ReplayResult =
  | { readonly deliveryId: string; readonly result: 'recorded'; readonly jobId: number; readonly outcome: DeliveryOutcome }
  | { readonly deliveryId: string; readonly result: 'not-handled' }
  | { readonly deliveryId: string; readonly result: 'still-unparsable'; readonly error: FlintError };

/**
 * Replays every kept delivery still `unparsable` (or only those in `ids`)
 * and returns what became of each, oldest first.
 */
export async function replayUnparsable(deps: ReplayDeps, options: { readonly ids?: readonly string[] } = {}): Promise<readonly ReplayResult[]> {
  const wanted = options.ids === undefined ? undefined : new Set(options.ids);
  const pending = (await deps.store.listUnparsable({ state: 'unparsable' })).filter((u) => wanted === undefined || wanted.has(u.deliveryId));
  const results: ReplayResult[] = [];
  for (const u of pending) {
    let parsed;
    try {
      parsed = parseDelivery(readDeliveryHeaders(u.headers), u.body);
    } catch (err) {
      if (!(err instanceof FlintError)) throw err;
      await deps.store.updateUnparsable(u.deliveryId, { state: 'unparsable', at: deps.clock(), error: { code: err.code, message: err.message } });
      results.push({ deliveryId: u.deliveryId, result: 'still-unparsable', error: err });
      continue;
    }
    if (parsed.kind !== 'workflow_job') {
      await deps.store.updateUnparsable(u.deliveryId, { state: 'replayed', at: deps.clock(), outcome: 'not-handled' });
      results.push({ deliveryId: u.deliveryId, result: 'not-handled' });
      continue;
    }
    const { command } = parsed;
    const definition = mostSpecificServing(deps.runners, command.job.labels)?.name;
    const [outcome = 'duplicate'] = await deps.store.ingest([{ deliveryId: u.deliveryId, receivedAt: u.receivedAt, command, definition }]);
    await deps.store.updateUnparsable(u.deliveryId, { state: 'replayed', at: deps.clock(), outcome });
    results.push({ deliveryId: u.deliveryId, result: 'recorded', jobId: command.job.id, outcome });
  }
  return results;
}
