/**
 * Installation access tokens: fetched on demand, cached, refreshed ahead of
 * expiry, dropped when GitHub rejects them.
 *
 * Why not @octokit/auth-app's own cache: in auth-app 8.x it keeps every
 * token for a fixed 59 minutes regardless of the `expires_at` GitHub sent,
 * and on a 401 it only retries the same token for 5 s (replication delay);
 * it never fetches a new one. A token that expires early (GitHub Enterprise
 * settings, a revoked installation token, the simulator's short TTL) would
 * fail every request until the process restarts. This source honours
 * `expires_at` with a refresh margin and can be told a token was rejected.
 *
 * Invariants:
 * - At most one fetch is in flight; concurrent callers share it.
 * - A token is handed out only while `now < refreshAt`, where
 *   refreshAt = expiry − min(refreshMargin, lifetime / 2) on the local clock.
 * - If a refresh fails for a transient reason while the cached token has
 *   not yet expired, the cached token is used (the margin exists for exactly this: GitHub being
 *   briefly unavailable must not stop Flint); the next `get` tries again.
 * - `expires_at` is GitHub's clock; when the response carries a `Date`
 *   header the expiry is moved onto the local clock by the difference, so a
 *   skewed host clock neither keeps a dead token nor refreshes constantly.
 * - The token itself never leaves this module except as the return value.
 */

/** What one token request returned. */
export interface FetchedToken {
  readonly token: string;
  /** ISO time from GitHub's `expires_at`. */
  readonly expiresAt: string;
  /** The response's `Date` header (GitHub's clock), when present. */
  readonly serverDate?: string | undefined;
}

export interface InstallationTokenOptions {
  /** Requests a new installation token from GitHub. */
  readonly fetch: () => Promise<FetchedToken>;
  /** Milliseconds since the epoch (injected so tests control time). */
  readonly now: () => number;
  /** Refresh this long before expiry (capped at half the token's lifetime). Default 5 minutes. */
  readonly refreshMarginMs?: number;
  /** Told when a token was fetched (no token in the arguments). */
  readonly onRefresh?: (info: { readonly expiresAt: string; readonly lifetimeMs: number; readonly reason: 'none' | 'expiring' | 'rejected' }) => void;
  /** Which refresh failures may fall back to the still-valid cached token (default: all). */
  readonly transient?: (err: unknown) => boolean;
  /** Told when a refresh failed and the still-valid cached token is used instead. */
  readonly onStale?: (info: { readonly error: unknown; readonly validForMs: number }) => void;
}

export interface InstallationTokenSource {
  /** A token that is valid for at least the refresh margin (or half its lifetime). */
  get(): Promise<string>;
  /** Forget `token` (GitHub answered 401 with it) so the next `get` fetches a new one. */
  reject(token: string): void;
  /** Forget any cached token (e.g. the installation changed). */
  clear(): void;
}

export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000;

interface Cached {
  readonly token: string;
  readonly refreshAt: number;
  /** Local time at which GitHub stops accepting the token. */
  readonly expiry: number;
}

export function createInstallationTokenSource(opts: InstallationTokenOptions): InstallationTokenSource {
  const margin = opts.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  let cached: Cached | undefined;
  let inflight: Promise<string> | undefined;
  let nextReason: 'none' | 'expiring' | 'rejected' = 'none';

  async function refresh(): Promise<string> {
    const reason = nextReason;
    let fetched: FetchedToken;
    try {
      fetched = await opts.fetch();
    } catch (err) {
      const validFor = cached === undefined ? 0 : cached.expiry - opts.now();
      if (cached === undefined || validFor <= 0 || opts.transient?.(err) === false) throw err;
      opts.onStale?.({ error: err, validForMs: validFor });
      return cached.token;
    }
    const receivedAt = opts.now();
    const expiry = localExpiry(fetched, receivedAt);
    const lifetime = Math.max(0, expiry - receivedAt);
    const refreshAt = expiry - Math.min(margin, lifetime / 2);
    cached = { token: fetched.token, refreshAt, expiry };
    nextReason = 'expiring';
    opts.onRefresh?.({ expiresAt: fetched.expiresAt, lifetimeMs: lifetime, reason });
    return fetched.token;
  }

  return {
    get(): Promise<string> {
      if (cached !== undefined && opts.now() < cached.refreshAt) return Promise.resolve(cached.token);
      if (inflight === undefined) {
        inflight = refresh().finally(() => {
          inflight = undefined;
        });
      }
      return inflight;
    },
    reject(token: string): void {
      // Only the token that failed is dropped: a concurrent request may have
      // already replaced it with a fresh one, which must survive.
      if (cached?.token === token) {
        cached = undefined;
        nextReason = 'rejected';
      }
    },
    clear(): void {
      cached = undefined;
      nextReason = 'none';
    },
  };
}

/** GitHub's expiry moved onto the local clock (see the module comment). */
function localExpiry(fetched: FetchedToken, receivedAt: number): number {
  const expiresAt = Date.parse(fetched.expiresAt);
  if (Number.isNaN(expiresAt)) return receivedAt; // unusable: treat as already expired, next get refetches
  const serverNow = fetched.serverDate === undefined ? Number.NaN : Date.parse(fetched.serverDate);
  if (Number.isNaN(serverNow)) return expiresAt;
  // The Date header has whole seconds and is truncated, so the server's
  // "now" may be up to 1 s earlier than the truth: count that second off.
  return receivedAt + (expiresAt - serverNow) - 1000;
}
