/**
 * The "redeliver" loop: webhook deliveries GitHub failed to make (Flint
 * down, a network fault, a 5xx) are asked for again through the App's
 * deliveries API, so a lost `queued`, `in_progress` or `completed` is
 * repaired by GitHub's own news rather than only by the scans.
 *
 * Each pass lists the failed `workflow_job` deliveries since its high-water
 * mark (kept in the store, so a restart resumes where the last pass ended;
 * never further back than `maxAgeMs`), oldest first, and for each event
 * (GUID) that has no successful attempt:
 *   - skips it when Flint already stored that GUID (GitHub recorded a
 *     timeout, but the delivery had reached Flint);
 *   - skips it when Flint already asked to redeliver that attempt or a
 *     newer one, or gave up after `maxAttempts` redeliveries;
 *   - otherwise asks GitHub to redeliver it, at most `maxPerPass` per pass.
 *
 * The mark is taken from Flint's clock and the listing filters on GitHub's
 * `delivered_at`, so each pass looks `overlapMs` further back than the mark:
 * that covers clock skew and a delivery GitHub records only when its 10 s
 * timeout ends. What the overlap lists twice is skipped by the checks above.
 */
import { startLoop } from './loop.ts';
import type { Loop } from './loop.ts';
import { isFlintError } from '../core/errors/index.ts';
import type { GitHubPort, WebhookDelivery } from './ports/github.ts';
import type { IntakeStore, TruthStore } from './ports/store.ts';
import type { Logger } from './vm/supervisor.ts';

export const REDELIVER_MARK = 'redeliver';

export interface RedeliverSettings {
  readonly intervalMs: number;
  /** Most redeliveries asked for in one pass. */
  readonly maxPerPass: number;
  /** Redeliveries of one event before Flint gives up on it. */
  readonly maxAttempts: number;
  /** How far back the first pass (and a resumed one) looks at most. */
  readonly maxAgeMs: number;
  /** How much earlier than the mark each pass looks again. */
  readonly overlapMs: number;
}

export const REDELIVER_DEFAULTS: RedeliverSettings = {
  intervalMs: 2 * 60_000,
  maxPerPass: 20,
  maxAttempts: 3,
  // GitHub keeps deliveries for 3 days; older news is covered by the
  // missed-webhooks and job-truth loops, which ask GitHub directly.
  maxAgeMs: 24 * 3_600_000,
  overlapMs: 5 * 60_000,
};

export interface RedeliverDeps {
  readonly github: Pick<GitHubPort, 'listFailedDeliveries' | 'redeliver'>;
  readonly store: Pick<IntakeStore, 'getDelivery' | 'listUnparsable'>;
  readonly truth: Pick<TruthStore, 'getMark' | 'setMark' | 'getRedelivery' | 'putRedelivery' | 'pruneTruth'>;
  readonly settings: RedeliverSettings;
  readonly clock: { now(): number };
  readonly logger: Logger;
  /** Passes run only while this answers true (the fleet's leader; loop.ts `gate`). */
  readonly gate?: () => boolean;
}

export interface RedeliverPass {
  /** GitHub ids of the attempts Flint asked to redeliver. */
  readonly redelivered: readonly number[];
  /** Failed events skipped because Flint already has them. */
  readonly alreadyStored: number;
  /** Failed events left for a later pass by the per-pass cap. */
  readonly deferred: number;
}

/** Errors that say "GitHub is not answering now": end the pass, try again later. Anything else is about this one delivery. */
const transient = (err: unknown): boolean =>
  isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE') || isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED')
  || isFlintError(err, 'FLINT_ERR_GITHUB_AUTH_FAILED') || isFlintError(err, 'FLINT_ERR_GITHUB_APP_NOT_INSTALLED');

export async function redeliverFailed(deps: RedeliverDeps): Promise<RedeliverPass> {
  const s = deps.settings;
  const now = deps.clock.now();
  const mark = await deps.truth.getMark(REDELIVER_MARK);
  const since = Math.max((mark ?? Number.NEGATIVE_INFINITY) - s.overlapMs, now - s.maxAgeMs);
  const failed = (await deps.github.listFailedDeliveries({ since: new Date(since) }))
    .filter((d) => d.event === 'workflow_job')
    .sort((a, b) => a.id - b.id);
  const kept = failed.length === 0 ? new Set<string>() : new Set((await deps.store.listUnparsable()).map((u) => u.deliveryId));
  const redelivered: number[] = [];
  let alreadyStored = 0;
  let deferredFrom: WebhookDelivery | undefined;
  let deferred = 0;
  for (const d of failed) {
    if (kept.has(d.guid) || (await deps.store.getDelivery(d.guid)) !== undefined) {
      alreadyStored++;
      continue;
    }
    const before = await deps.truth.getRedelivery(d.guid);
    if (before !== undefined && (before.deliveryId >= d.id || before.attempts >= s.maxAttempts)) continue;
    if (redelivered.length >= s.maxPerPass) {
      deferredFrom ??= d;
      deferred++;
      continue;
    }
    const record = { guid: d.guid, deliveryId: d.id, attempts: (before?.attempts ?? 0) + 1, lastAt: now };
    try {
      await deps.github.redeliver(d.id);
    } catch (err) {
      if (transient(err)) throw err;
      // GitHub refused this one (too old, gone): count the attempt, so that
      // a delivery GitHub will never redeliver is given up on, not retried forever.
      await deps.truth.putRedelivery(record);
      deps.logger.warn({ guid: d.guid, deliveryId: d.id, code: isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL', err: err instanceof Error ? err.message : String(err) },
        'redeliver: GitHub refused to redeliver a failed delivery');
      continue;
    }
    // Recorded after GitHub accepted: a crash in between only means one more
    // redelivery of the same event, which the intake drops as a duplicate.
    await deps.truth.putRedelivery(record);
    redelivered.push(d.id);
    if (record.attempts >= s.maxAttempts) {
      deps.logger.warn({ guid: d.guid, event: d.event, action: d.action, attempts: record.attempts },
        'redeliver: asked for this delivery the last time; if it fails again, the job-truth and missed-webhooks loops repair its job');
    }
  }
  // Everything before the first deferred delivery is dealt with; without
  // one, everything listed is.
  await deps.truth.setMark(REDELIVER_MARK, deferredFrom === undefined ? now : Math.min(now, Date.parse(deferredFrom.deliveredAt)));
  // GitHub forgets deliveries after 3 days; records older than twice the window are no use.
  await deps.truth.pruneTruth(now - 2 * s.maxAgeMs);
  if (redelivered.length > 0 || deferred > 0) {
    deps.logger.info({ redelivered: redelivered.length, deferred, alreadyStored }, 'redeliver: asked GitHub to redeliver failed webhook deliveries');
  }
  return { redelivered, alreadyStored, deferred };
}

/** The redeliver loop: `redeliverFailed` every interval (first pass at start: a restart asks at once for what failed while Flint was down). */
export function startRedeliver(deps: RedeliverDeps): Loop {
  return startLoop({ name: 'redeliver', intervalMs: deps.settings.intervalMs, runAtStart: true, run: () => redeliverFailed(deps), logger: deps.logger, now: () => deps.clock.now(),
    ...(deps.gate === undefined ? {} : { gate: deps.gate }) });
}
