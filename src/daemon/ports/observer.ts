/**
 * What Flint's moving parts tell the operator's instruments (metrics,
 * readiness) about events: small observer ports, so that the intake's HTTP
 * edge and the GitHub adapter report without knowing any metrics library.
 * The composition root implements them (entrypoints/http/metrics.ts,
 * entrypoints/http/readiness.ts). An observer must not throw and must not
 * block: it is called on the hot path.
 */

/**
 * How one attempt at a GitHub request ended. `rate-limited` is an answer
 * (GitHub is reachable, only limiting), `server-error` (5xx) and
 * `network-error` (no answer: refused, reset, timed out) are not.
 */
export type GitHubOutcome = 'ok' | 'client-error' | 'rate-limited' | 'server-error' | 'network-error';

export interface GitHubAnswer {
  readonly outcome: GitHubOutcome;
  /** HTTP status; undefined when no answer came. */
  readonly status: number | undefined;
  /** GitHub's rate-limit headers of the answer, when it carried them. */
  readonly rateLimit: { readonly resource: string; readonly remaining: number; readonly limit: number } | undefined;
}

export interface GitHubObserver {
  /** Called once per attempt (retries are attempts of their own). */
  answered(answer: GitHubAnswer): void;
}

/**
 * What became of one webhook delivery: a delivery outcome of the store
 * (`accepted`, `repeat`, `stale`, `ignored`, `duplicate`), `pong`,
 * `not-handled`, `unparsable`, or why it was refused (`bad-request`,
 * `bad-signature`, `too-large`, `unsupported-media-type`, `store-failed`).
 */
export type DeliveryResult =
  | 'accepted' | 'repeat' | 'stale' | 'ignored' | 'duplicate' | 'pong' | 'not-handled' | 'unparsable'
  | 'bad-request' | 'bad-signature' | 'too-large' | 'unsupported-media-type' | 'store-failed' | 'error';

export interface DeliveryObserver {
  delivery(result: DeliveryResult): void;
}
