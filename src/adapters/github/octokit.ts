/**
 * The Octokit class Flint talks to GitHub with: REST endpoint methods,
 * retries of server and network errors with backoff (plugin-retry),
 * GitHub's rate-limit rules (plugin-throttling), a timeout per attempt and
 * log lines for every wait. Authentication is a hook passed in by the
 * caller (src/adapters/github/auth.ts), installed innermost so that every
 * attempt, retries included, carries a current credential.
 *
 * Hook order, innermost first (Octokit installs the auth hook in its
 * constructor, then plugins in the order given to `Octokit.plugin`):
 *   auth → attempt (timeout, log) → retry → throttling
 * so a retry re-runs auth and the timeout, and a rate-limit wait sits
 * outside the retry budget.
 */
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import type { Octokit as CoreOctokit } from '@octokit/core';
import type { EndpointDefaults, OctokitResponse, RequestOptions } from '@octokit/types';
import type { GitHubLog } from './log.ts';
import type { AuthHook } from './auth.ts';
import { messageOf, redactUrl, statusOf } from './errors.ts';

export interface OctokitSettings {
  /** REST base URL (config `github.apiUrl`), without a trailing slash. */
  readonly baseUrl: string;
  readonly log: GitHubLog;
  readonly auth: AuthHook;
  /** Keys the rate limiters (concurrency, write spacing); Octokits with the same id in one process share them. */
  readonly limiterId: string;
  /** Retries after a 5xx or network error. Default 3. */
  readonly retries?: number;
  /** Backoff unit: retry n waits n² units. Default 1000 ms (1 s, 4 s, 9 s). */
  readonly retryBaseMs?: number;
  /** Longest rate-limit wait Flint sits through (seconds); longer ones fail with FLINT_ERR_GITHUB_RATE_LIMITED. Default 60. */
  readonly maxRateLimitWaitSeconds?: number;
  /** How many rate-limit waits one request may sit through. Default 2. */
  readonly maxRateLimitRetries?: number;
  /** Timeout of one attempt (a hung connection or server); timed-out attempts are retried like network errors. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** The HTTP layer (global fetch unless a test injects one). */
  readonly fetch?: typeof fetch;
  readonly userAgent?: string;
}

function octokitClass(attempt: AttemptSettings) {
  return Octokit.plugin(attemptPlugin(attempt), retry, throttling);
}
export type FlintOctokit = InstanceType<ReturnType<typeof octokitClass>>;

/**
 * Status codes plugin-retry must leave alone: client errors are final, 401
 * is the auth hook's business (one re-auth), and 403/429 rate limits are
 * plugin-throttling's (it knows how long to wait).
 */
const DO_NOT_RETRY = [400, 401, 403, 404, 409, 410, 422, 429, 451];

interface AttemptSettings {
  readonly log: GitHubLog;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly requestTimeoutMs: number;
  /** Rate-limit windows (by their reset time) already warned about; one warning per window. */
  readonly warnedWindows: Set<string>;
}

/** Below this share of the hourly budget left, Flint warns (once per window). */
const LOW_BUDGET = 0.1;

/**
 * Warns when GitHub's rate-limit headers say the budget is nearly spent, so
 * an operator can lengthen loop intervals before requests start to wait.
 */
function watchBudget(settings: AttemptSettings, headers: Readonly<Record<string, string | number | undefined>>): void {
  const limit = Number(headers['x-ratelimit-limit']);
  const remaining = Number(headers['x-ratelimit-remaining']);
  const reset = String(headers['x-ratelimit-reset'] ?? '');
  const resource = String(headers['x-ratelimit-resource'] ?? 'core');
  if (!(limit > 0) || !Number.isFinite(remaining) || remaining >= limit * LOW_BUDGET) return;
  const window = `${resource}:${reset}`;
  if (settings.warnedWindows.has(window)) return;
  if (settings.warnedWindows.size >= 64) settings.warnedWindows.clear(); // old windows are over; keep the set small
  settings.warnedWindows.add(window);
  const resetAt = Number(reset) > 0 ? new Date(Number(reset) * 1000).toISOString() : undefined;
  settings.log.warn({ resource, remaining, limit, resetAt },
    'GitHub API budget nearly spent; lengthen Flint\'s loop intervals or share the App with fewer tools');
}

type RequestOpts = Required<EndpointDefaults>;

function attemptPlugin(settings: AttemptSettings) {
  return (octokit: CoreOctokit): void => {
    octokit.hook.wrap('request', (request, opts) => attempt(settings, request, opts));
  };
}

/** One attempt of a request: its own timeout, and a log line when it fails. */
async function attempt(
  settings: AttemptSettings,
  request: (opts: RequestOpts) => Promise<OctokitResponse<unknown>> | OctokitResponse<unknown>,
  opts: RequestOpts,
): Promise<OctokitResponse<unknown>> {
  const n = readRetryCount(opts.request);
  // A fresh signal per attempt: a hung connection costs one timeout, then
  // plugin-retry tries again (fetch's TimeoutError becomes a status-500 RequestError).
  opts.request = { ...opts.request, signal: AbortSignal.timeout(settings.requestTimeoutMs) };
  try {
    const res = await request(opts);
    watchBudget(settings, res.headers);
    return res;
  } catch (err) {
    const status = statusOf(err);
    const where = { method: opts.method, url: redactUrl(opts.url), status, attempt: n + 1 };
    if (status !== undefined && status >= 500 && n < settings.retries) {
      const waitMs = (n + 1) ** 2 * settings.retryBaseMs;
      settings.log.warn({ ...where, waitMs, error: messageOf(err) }, 'GitHub request failed; retrying after backoff');
    } else if (status !== undefined && status >= 500) {
      settings.log.error({ ...where, error: messageOf(err) }, 'GitHub request failed; retries exhausted');
    } else {
      settings.log.debug(where, 'GitHub request answered with an error');
    }
    throw err;
  }
}

export function createOctokit(s: OctokitSettings): FlintOctokit {
  const maxWait = s.maxRateLimitWaitSeconds ?? 60;
  const maxRateRetries = s.maxRateLimitRetries ?? 2;
  const onLimit = (kind: 'primary' | 'secondary') =>
    (retryAfter: number, opts: Required<EndpointDefaults>, _octokit: unknown, retryCount: number): boolean => {
      const where = { method: opts.method, url: redactUrl(opts.url), retryAfterSeconds: retryAfter, waits: retryCount };
      if (retryAfter > maxWait || retryCount >= maxRateRetries) {
        s.log.warn({ ...where, maxWaitSeconds: maxWait }, `GitHub ${kind} rate limit reached; not waiting (wait too long or too many waits)`);
        return false;
      }
      s.log.warn(where, `GitHub ${kind} rate limit reached; waiting before retrying`);
      return true;
    };
  const request: RequestOptions['request'] = s.fetch === undefined ? {} : { fetch: s.fetch };
  const FlintOctokitClass = octokitClass({
    log: s.log,
    retries: s.retries ?? 3,
    retryBaseMs: s.retryBaseMs ?? 1000,
    requestTimeoutMs: s.requestTimeoutMs ?? 30_000,
    warnedWindows: new Set(),
  });
  return new FlintOctokitClass({
    baseUrl: s.baseUrl.replace(/\/+$/, ''),
    userAgent: s.userAgent ?? 'flint',
    authStrategy: () => s.auth,
    request,
    // Octokit's request log writes every answer at info and every error
    // answer at error ("GET /x - 404 …"), including the 404s Flint expects
    // (a runner already gone). Flint logs failures itself, with context, so
    // both are debug here. Only the message is passed on: Octokit's extra
    // arguments carry request options.
    log: {
      debug: (msg: string) => s.log.debug({}, msg),
      info: (msg: string) => s.log.debug({}, msg),
      warn: (msg: string) => s.log.warn({}, msg),
      error: (msg: string) => s.log.debug({}, msg),
    },
    retry: { retries: s.retries ?? 3, retryAfterBaseValue: s.retryBaseMs ?? 1000, doNotRetry: DO_NOT_RETRY },
    throttle: {
      id: s.limiterId,
      onRateLimit: onLimit('primary'),
      onSecondaryRateLimit: onLimit('secondary'),
    },
  });
}

function readRetryCount(r: unknown): number {
  if (typeof r !== 'object' || r === null || !('retryCount' in r)) return 0;
  const n = r.retryCount;
  return typeof n === 'number' ? n : 0;
}
