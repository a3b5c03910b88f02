/**
 * Launch health of a runner definition: back-off after failed launches.
 *
 * A launch fails when the VM's host side cannot be prepared, the VMM does
 * not start, the guest never reports its runner started, or the JIT runner
 * cannot be registered. A definition whose launches fail (a broken kernel
 * path, a bad image, a GitHub permission missing) must not be relaunched
 * at once and forever: each round registers a JIT runner and deletes it
 * again, which burns the App's rate limit whatever the length of the queue.
 *
 *   healthy      no failure since the last success; launches as planned
 *   backing-off  1 … unhealthyAfter−1 consecutive failed rounds: nothing is
 *                launched before `nextAttemptAt`, then one probe at a time
 *   unhealthy    unhealthyAfter or more: the same, with the delay at its cap
 *
 * The first success (a runner that came online) makes it healthy again.
 *
 * Failures are counted per ROUND, not per VM: the VMs launched together
 * before a failure was recorded usually fail for the same reason, and a
 * burst of fifty identical failures is one piece of news, not fifty. Each
 * launch remembers the `round` it was started in; a failure reported by a
 * launch of an earlier round only refreshes `lastError`.
 *
 * Pure: the clock reading and the random sample are arguments.
 */

export type HealthState = 'healthy' | 'backing-off' | 'unhealthy';

export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly initialMs: number;
  /** Cap of the delay; an unhealthy definition is retried at this pace. */
  readonly maxMs: number;
  /** Fraction of the delay taken off at random (0 … 1): delay ∈ [(1 − jitter)·d, d]. */
  readonly jitter: number;
  /** Consecutive failed rounds after which the definition is unhealthy (≥ 1). */
  readonly unhealthyAfter: number;
}

/**
 * 10 s, 20 s, … up to 5 min. With one probe per delay, an unhealthy
 * definition costs at most two GitHub calls (register, delete) every
 * 2.5 min, whatever the queue.
 */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 10_000, maxMs: 5 * 60_000, jitter: 0.5, unhealthyAfter: 3 };

export interface LaunchError {
  /** Catalogue code (FLINT_ERR_…). */
  readonly code: string;
  readonly hint: string;
  readonly message: string;
  /** Epoch ms. */
  readonly at: number;
}

export interface DefinitionHealth {
  readonly state: HealthState;
  readonly consecutiveFailures: number;
  readonly lastError: LaunchError | undefined;
  /** Epoch ms before which nothing is launched; undefined while healthy. */
  readonly nextAttemptAt: number | undefined;
  /** Bumped at every counted failure and at recovery; launches carry the round they started in. */
  readonly round: number;
}

export const HEALTHY: DefinitionHealth = { state: 'healthy', consecutiveFailures: 0, lastError: undefined, nextAttemptAt: undefined, round: 0 };

/**
 * The delay after `failures` consecutive failed rounds (≥ 1): exponential
 * from `initialMs`, capped at `maxMs` (at once from `unhealthyAfter` on),
 * less a random share of up to `jitter` so that definitions broken together
 * do not retry in step. `random` is a sample of [0, 1).
 */
export function backoffDelayMs(failures: number, policy: BackoffPolicy, random: number): number {
  const n = Math.max(1, Math.floor(failures));
  const ceiling = n >= policy.unhealthyAfter
    ? policy.maxMs
    // 2 ** 40 is far beyond any cap: keeps the power finite for huge counts.
    : Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n - 1, 40));
  const r = Math.min(Math.max(random, 0), 1);
  const jitter = Math.min(Math.max(policy.jitter, 0), 1);
  return Math.round(ceiling * (1 - jitter * r));
}

function stateOf(failures: number, policy: BackoffPolicy): HealthState {
  if (failures === 0) return 'healthy';
  return failures >= policy.unhealthyAfter ? 'unhealthy' : 'backing-off';
}

/** A launch started in round `launchedInRound` failed with `error` at `error.at`. */
export function recordLaunchFailure(
  h: DefinitionHealth,
  error: LaunchError,
  launchedInRound: number,
  policy: BackoffPolicy,
  random: number,
): DefinitionHealth {
  // Same round as a failure already counted: news, not a new failure.
  if (launchedInRound < h.round) return h.state === 'healthy' ? h : { ...h, lastError: error };
  const failures = h.consecutiveFailures + 1;
  return {
    state: stateOf(failures, policy),
    consecutiveFailures: failures,
    lastError: error,
    nextAttemptAt: error.at + backoffDelayMs(failures, policy, random),
    round: h.round + 1,
  };
}

/** A runner of this definition came online: the definition works. */
export function recordLaunchSuccess(h: DefinitionHealth): DefinitionHealth {
  if (h.state === 'healthy') return h;
  // lastError stays for the status surfaces ("last failed at …").
  return { state: 'healthy', consecutiveFailures: 0, lastError: h.lastError, nextAttemptAt: undefined, round: h.round + 1 };
}

/**
 * How many VMs of the definition may be launched now: no limit while
 * healthy; while backing off, none before `nextAttemptAt` and then one probe
 * at a time (`starting` counts the launches still in flight).
 */
export function launchAllowance(h: DefinitionHealth, now: number, starting: number): number {
  if (h.state === 'healthy') return Number.POSITIVE_INFINITY;
  if (h.nextAttemptAt !== undefined && now < h.nextAttemptAt) return 0;
  return starting > 0 ? 0 : 1;
}
