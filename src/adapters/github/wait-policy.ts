/**
 * How long Flint waits after GitHub said "not now", decided from GitHub's
 * own headers (GitHub REST docs, "Rate limits for the REST API" and "Best
 * practices for using the REST API"):
 *
 * - `retry-after` present (429, a 403 secondary limit, sometimes a 503):
 *   wait that many seconds.
 * - `x-ratelimit-remaining: 0` (the primary limit is spent): wait until
 *   `x-ratelimit-reset` (epoch seconds).
 * - a secondary limit (403/429) with neither header: wait at least one
 *   minute, doubling for every further secondary limit met in a row.
 * - 5xx, a failed connection, a timed-out attempt: bounded exponential
 *   back-off with jitter.
 * - anything else is an answer, not an outage: no wait.
 *
 * `classify` is pure (headers and clock in, decision out). A wait too long
 * to sit through becomes a `RateLimitBlock` (errors.ts) carrying the time
 * GitHub lets Flint ask again; the client refuses every call before then
 * without sending it.
 */
import { headersOf, messageOf, statusOf } from './errors.ts';

export { ClientClosed, RateLimitBlock } from './errors.ts';

/** GitHub's advice for a secondary limit that names no wait. */
export const SECONDARY_DEFAULT_WAIT_MS = 60_000;

/** The reset is in whole seconds and clocks differ a little: ask one second after it. */
const RESET_CUSHION_MS = 1000;

export type WaitDecision =
  | { readonly kind: 'final' }
  | { readonly kind: 'transient' }
  | {
    readonly kind: 'rate-limit';
    readonly limit: 'primary' | 'secondary';
    /** Epoch ms from which GitHub accepts requests again. */
    readonly retryAt: number;
    /** Which header said so (for the log line). */
    readonly source: 'retry-after' | 'x-ratelimit-reset' | 'default';
  };


/**
 * What an error means for waiting. `secondaryStreak` is how many secondary
 * limits without a `retry-after` this request already met (the default
 * minute doubles with each).
 */
export function classify(err: unknown, now: number, secondaryStreak = 0): WaitDecision {
  const status = statusOf(err);
  // No status: not an answer nor a failed connection (Octokit gives those
  // status 500) but Flint's own verdict, e.g. from the auth hook: final.
  if (status === undefined) return { kind: 'final' };
  const h = headersOf(err);
  const retryAfter = parseRetryAfter(h['retry-after'], now);
  if (status === 403 || status === 429) {
    const primary = h['x-ratelimit-remaining'] === '0';
    const secondary = !primary && (status === 429 || retryAfter !== undefined || /secondary rate limit/i.test(messageOf(err)));
    if (!primary && !secondary) return { kind: 'final' }; // a plain 403: a permission
    const limit = primary ? 'primary' : 'secondary';
    if (retryAfter !== undefined) return { kind: 'rate-limit', limit, retryAt: retryAfter, source: 'retry-after' };
    const reset = Number(h['x-ratelimit-reset']);
    if (primary && Number.isFinite(reset) && reset > 0) {
      return { kind: 'rate-limit', limit, retryAt: Math.max(now, reset * 1000 + RESET_CUSHION_MS), source: 'x-ratelimit-reset' };
    }
    return { kind: 'rate-limit', limit, retryAt: now + SECONDARY_DEFAULT_WAIT_MS * 2 ** Math.min(secondaryStreak, 6), source: 'default' };
  }
  if (status >= 500) return { kind: 'transient' };
  return { kind: 'final' };
}

/** `retry-after` as epoch ms: delta-seconds (GitHub's form) or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return now + Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(now, at);
}

/**
 * The back-off before retry `n` (0-based) after a 5xx or network error:
 * base × 2ⁿ capped at `maxMs`, then "equal jitter" — half fixed, half
 * random — so the wait is never zero and many clients do not retry in step.
 */
export function backoffMs(n: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** n);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
