/**
 * A token bucket of GitHub API requests per hour, on an injected clock.
 *
 * The missed-jobs scan spends from it across its passes. The bucket holds
 * at most `burst` requests and refills at `(perHour - burst)` an hour, so
 * that a full bucket plus an hour of refill is exactly `perHour`: no
 * window of one hour spends more than the configured budget, give or take
 * the last request group (below).
 *
 * The cost of a scan step is only known after it ran (a repository with
 * three runs in progress costs more than an idle one, and a 304 costs
 * nothing), so spending is settled afterwards and may leave the bucket in
 * debt; a step may start only while at least one request is available.
 * Invariant (property-tested): over any window of T ms, what is spent is at
 * most `burst + refillPerMs·T + (largest single spend − 1)`.
 */

export interface BudgetPolicy {
  /** Requests an hour the scan may spend. */
  readonly perHour: number;
  /** Most requests the bucket holds (what a pass after a long pause may spend at once). */
  readonly burst: number;
}

export interface BudgetState {
  /** Requests available; negative while a step that overran is being paid back. */
  readonly tokens: number;
  /** Clock reading the tokens were last brought up to date at. */
  readonly at: number;
}

const HOUR_MS = 3_600_000;

/** The policy for a budget of `perHour` requests: a burst of five minutes' worth (at least 1). */
export function budgetPolicy(perHour: number): BudgetPolicy {
  if (!(perHour >= 1)) throw new RangeError(`a request budget must be at least 1 an hour, not ${perHour}`);
  return { perHour, burst: Math.max(1, Math.floor(perHour / 12)) };
}

/** Refill rate in requests per ms: the hour's budget less the burst, so burst + one hour = perHour. */
export function refillPerMs(p: BudgetPolicy): number {
  return Math.max(p.perHour - p.burst, 0) / HOUR_MS;
}

/** A full bucket at `now`: a starting Flint may sweep a first burst at once. */
export function fullBudget(p: BudgetPolicy, now: number): BudgetState {
  return { tokens: p.burst, at: now };
}

/** The bucket brought up to `now`. A clock that went backwards refills nothing. */
export function refill(p: BudgetPolicy, s: BudgetState, now: number): BudgetState {
  if (now <= s.at) return s;
  return { tokens: Math.min(p.burst, s.tokens + (now - s.at) * refillPerMs(p)), at: now };
}

/** Whether a step may start at `now`: at least one whole request is available. */
export function canSpend(p: BudgetPolicy, s: BudgetState, now: number): boolean {
  return refill(p, s, now).tokens >= 1;
}

/** Settles `cost` requests spent at `now` (0 for answers GitHub did not count, such as a 304). */
export function spend(p: BudgetPolicy, s: BudgetState, cost: number, now: number): BudgetState {
  if (!(cost >= 0)) throw new RangeError(`a spend must be a count of requests, not ${cost}`);
  const r = refill(p, s, now);
  return { tokens: r.tokens - cost, at: r.at };
}

/** Milliseconds from `now` until a step may start again (0 if it may now). */
export function msUntilSpendable(p: BudgetPolicy, s: BudgetState, now: number): number {
  const r = refill(p, s, now);
  if (r.tokens >= 1) return 0;
  const rate = refillPerMs(p);
  return rate === 0 ? Number.POSITIVE_INFINITY : Math.ceil((1 - r.tokens) / rate);
}
