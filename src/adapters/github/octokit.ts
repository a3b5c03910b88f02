/**
 * The Octokit class Flint talks to GitHub with: REST endpoint methods plus
 * Flint's own request policy (wait-policy.ts): a timeout per attempt,
 * back-off after 5xx and network errors, waits that follow GitHub's
 * rate-limit headers, write spacing and a bound on requests in flight, and
 * a log line for every wait. Authentication is a hook passed in by the
 * caller (src/adapters/github/auth.ts), installed innermost so that every
 * attempt, retries included, carries a current credential.
 *
 * Why not @octokit/plugin-retry and plugin-throttling: their waits run on
 * Bottleneck's wall-clock timers, which cannot be cancelled (a shutdown
 * waits them out) nor driven by a test's clock, and a wait too long to sit
 * through is forgotten once the call fails, so the next call asks GitHub
 * again. Here every wait runs on the injected timers, `close()` ends them
 * all, and a long rate limit blocks the identity until GitHub's stated time
 * (see `RequestPolicy`).
 *
 * Hook order: the policy wraps Octokit's request (auth hook included), so
 * every attempt, retries included, re-runs auth under its own timeout.
 */
import { Octokit } from '@octokit/rest';
import type { Octokit as CoreOctokit } from '@octokit/core';
import type { EndpointDefaults, OctokitResponse, RequestOptions } from '@octokit/types';
import type { GitHubLog } from './log.ts';
import type { AuthHook } from './auth.ts';
import { headersOf, messageOf, redactUrl, statusOf } from './errors.ts';
import type { GitHubAnswer, GitHubObserver } from '../../daemon/ports/observer.ts';
import { backoffMs, classify, ClientClosed, RateLimitBlock } from './wait-policy.ts';

/** Timers the policy waits on; the global ones unless a test injects its own. */
export interface GitHubTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: GitHubTimers = {
  // Not unref'd: a short command (`flint check`) waiting out a 5xx must not exit mid-wait. close() clears them.
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * What the Octokits of one client share: the clock, the timers, and the
 * switch that ends every wait and aborts every request in flight.
 */
export class ClientLifecycle {
  readonly now: () => number;
  readonly timers: GitHubTimers;
  readonly #abort = new AbortController();
  readonly #waits = new Set<{ readonly handle: unknown; readonly reject: (err: Error) => void }>();

  constructor(o: { now: () => number; timers: GitHubTimers }) {
    this.now = o.now;
    this.timers = o.timers;
  }

  get closed(): boolean { return this.#abort.signal.aborted; }
  get signal(): AbortSignal { return this.#abort.signal; }
  /** Waits in progress (tests check none is left armed). */
  get pendingWaits(): number { return this.#waits.size; }

  /** Resolves after `ms` on the injected timers; rejects with ClientClosed when the client closes first. */
  sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.reject(new ClientClosed());
    return new Promise<void>((resolve, reject) => {
      const entry = {
        handle: this.timers.setTimeout(() => {
          this.#waits.delete(entry);
          resolve();
        }, Math.max(0, ms)),
        reject,
      };
      this.#waits.add(entry);
    });
  }

  /** Ends every wait (its call fails with ClientClosed) and aborts every request in flight. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.#abort.abort(new ClientClosed());
    for (const w of this.#waits) {
      this.timers.clearTimeout(w.handle);
      w.reject(new ClientClosed());
    }
    this.#waits.clear();
  }
}

export interface OctokitSettings {
  /** REST base URL (config `github.apiUrl`), without a trailing slash. */
  readonly baseUrl: string;
  readonly log: GitHubLog;
  readonly auth: AuthHook;
  readonly lifecycle: ClientLifecycle;
  /** For the back-off jitter. Default Math.random. */
  readonly random?: () => number;
  /** Retries after a 5xx or network error. Default 3. */
  readonly retries?: number;
  /** Back-off unit: retry n waits about base × 2ⁿ (half of it random). Default 1000 ms. */
  readonly retryBaseMs?: number;
  /** Longest back-off. Default 30 s. */
  readonly retryMaxMs?: number;
  /** Longest rate-limit wait sat through inside a call (seconds); longer ones fail with FLINT_ERR_GITHUB_RATE_LIMITED. Default 60. */
  readonly maxRateLimitWaitSeconds?: number;
  /** How many rate-limit waits one request may sit through. Default 2. */
  readonly maxRateLimitRetries?: number;
  /** Timeout of one attempt (a hung connection or server); timed-out attempts are retried like network errors. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Spacing of writes (POST, PATCH, PUT, DELETE), as GitHub asks to avoid secondary limits. Default 1000 ms. */
  readonly writeSpacingMs?: number;
  /** Requests in flight at once. Default 10. */
  readonly maxConcurrent?: number;
  /** The HTTP layer (global fetch unless a test injects one). */
  readonly fetch?: typeof fetch;
  readonly userAgent?: string;
  /** Told how every attempt ended, with GitHub's rate-limit headers (metrics, readiness). */
  readonly observer?: GitHubObserver;
}

function octokitClass(policy: RequestPolicy) {
  return Octokit.plugin(policyPlugin(policy));
}
export type FlintOctokit = InstanceType<ReturnType<typeof octokitClass>> & { readonly policy: RequestPolicy };

type RequestOpts = Required<EndpointDefaults>;
type Send = (opts: RequestOpts) => Promise<OctokitResponse<unknown>> | OctokitResponse<unknown>;

/** Below this share of the hourly budget left, Flint warns (once per window). */
const LOW_BUDGET = 0.1;
const WRITES = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/**
 * The request policy of one identity (the App, or its installation: GitHub
 * budgets them separately). Invariant: while `notBefore` is ahead, no
 * request of this identity is sent — a call either waits (if the wait is
 * short and the call has waits left) or fails at once with a
 * RateLimitBlock naming `notBefore`.
 */
export class RequestPolicy {
  readonly #s: OctokitSettings;
  readonly #life: ClientLifecycle;
  #notBefore = 0;
  #limit: 'primary' | 'secondary' = 'secondary';
  #nextWriteAt = 0;
  #inFlight = 0;
  readonly #queue: (() => void)[] = [];
  /** Rate-limit windows (by their reset time) already warned about; one warning per window. */
  readonly #warned = new Set<string>();

  constructor(s: OctokitSettings) {
    this.#s = s;
    this.#life = s.lifecycle;
  }

  /** Epoch ms before which this identity sends nothing, if a rate limit is in force. */
  blockedUntil(): number | undefined {
    return this.#notBefore > this.#life.now() ? this.#notBefore : undefined;
  }

  get #maxWaitMs(): number { return (this.#s.maxRateLimitWaitSeconds ?? 60) * 1000; }

  async send(request: Send, opts: RequestOpts): Promise<OctokitResponse<unknown>> {
    const life = this.#life;
    const where = { method: opts.method, url: redactUrl(opts.url) };
    let serverRetries = 0;
    let rateWaits = 0;
    let secondaryStreak = 0;
    for (;;) {
      if (life.closed) throw new ClientClosed();
      const wait = this.#notBefore - life.now();
      if (wait > 0) {
        if (wait > this.#maxWaitMs || rateWaits >= (this.#s.maxRateLimitRetries ?? 2)) {
          throw new RateLimitBlock({ retryAt: this.#notBefore, limit: this.#limit, status: undefined, sent: false });
        }
        rateWaits++;
        await life.sleep(wait);
        continue;
      }
      if (WRITES.has(opts.method)) await this.#spaceWrite();
      let res: OctokitResponse<unknown>;
      try {
        res = await this.#withSlot(() => this.#attempt(request, opts));
        return res;
      } catch (err) {
        if (life.closed) throw new ClientClosed();
        const status = statusOf(err);
        const decision = classify(err, life.now(), secondaryStreak);
        const at = { ...where, status, attempt: serverRetries + rateWaits + 1 };
        if (decision.kind === 'final') {
          this.#s.log.debug(at, 'GitHub request answered with an error');
          throw err;
        }
        if (decision.kind === 'transient') {
          if (serverRetries >= (this.#s.retries ?? 3)) {
            this.#s.log.error({ ...at, error: messageOf(err) }, 'GitHub request failed; retries exhausted');
            throw err;
          }
          const waitMs = backoffMs(serverRetries, this.#s.retryBaseMs ?? 1000, this.#s.retryMaxMs ?? 30_000, this.#s.random ?? Math.random);
          serverRetries++;
          this.#s.log.warn({ ...at, waitMs, error: messageOf(err) }, 'GitHub request failed; retrying after backoff');
          await life.sleep(waitMs);
          continue;
        }
        if (decision.source === 'default') secondaryStreak++;
        // Every call of this identity holds off until then, not only this one.
        if (decision.retryAt > this.#notBefore) {
          this.#notBefore = decision.retryAt;
          this.#limit = decision.limit;
        }
        const waitMs = this.#notBefore - life.now();
        const info = { ...at, retryAt: new Date(this.#notBefore).toISOString(), waitMs, source: decision.source, waits: rateWaits };
        if (waitMs > this.#maxWaitMs || rateWaits >= (this.#s.maxRateLimitRetries ?? 2)) {
          this.#s.log.warn({ ...info, maxWaitSeconds: this.#maxWaitMs / 1000 },
            `GitHub ${decision.limit} rate limit reached; not waiting (wait too long or too many waits): no request of this identity is sent before retryAt`);
          throw new RateLimitBlock({ retryAt: this.#notBefore, limit: decision.limit, status, sent: true, requestId: headersOf(err)['x-github-request-id'], cause: err });
        }
        this.#s.log.warn(info, `GitHub ${decision.limit} rate limit reached; waiting before retrying`);
      }
    }
  }

  /** Writes leave at least `writeSpacingMs` between them; concurrent writers take successive slots. */
  async #spaceWrite(): Promise<void> {
    const spacing = this.#s.writeSpacingMs ?? 1000;
    if (spacing <= 0) return;
    const now = this.#life.now();
    const slot = Math.max(now, this.#nextWriteAt);
    this.#nextWriteAt = slot + spacing;
    if (slot > now) await this.#life.sleep(slot - now);
  }

  async #withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= (this.#s.maxConcurrent ?? 10)) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#inFlight++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next in line, or give it back.
      const next = this.#queue.shift();
      if (next !== undefined) next();
      else this.#inFlight--;
    }
  }

  /** One attempt: its own timeout (on the injected timers) and the client's close signal. */
  async #attempt(request: Send, opts: RequestOpts): Promise<OctokitResponse<unknown>> {
    const timeout = new AbortController();
    const timeoutMs = this.#s.requestTimeoutMs ?? 30_000;
    const handle = this.#life.timers.setTimeout(() => timeout.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    try {
      // In place, not a copy: before-after-hook binds the inner hooks (auth) to
      // this very options object and ignores what is passed to `request`.
      opts.request = { ...opts.request, signal: AbortSignal.any([timeout.signal, this.#life.signal]) };
      let res: OctokitResponse<unknown>;
      try {
        res = await request(opts);
      } catch (err) {
        this.#s.observer?.answered(answerOf(err));
        throw err;
      }
      this.#s.observer?.answered({ outcome: 'ok', status: res.status, rateLimit: rateLimitOf(res.headers) });
      this.#watchBudget(res.headers);
      return res;
    } finally {
      this.#life.timers.clearTimeout(handle);
    }
  }

  /**
   * Warns when GitHub's rate-limit headers say the budget is nearly spent, so
   * an operator can lengthen loop intervals before requests start to wait.
   */
  #watchBudget(headers: Readonly<Record<string, string | number | undefined>>): void {
    const limit = Number(headers['x-ratelimit-limit']);
    const remaining = Number(headers['x-ratelimit-remaining']);
    const reset = String(headers['x-ratelimit-reset'] ?? '');
    const resource = String(headers['x-ratelimit-resource'] ?? 'core');
    if (!(limit > 0) || !Number.isFinite(remaining) || remaining >= limit * LOW_BUDGET) return;
    const window = `${resource}:${reset}`;
    if (this.#warned.has(window)) return;
    if (this.#warned.size >= 64) this.#warned.clear(); // old windows are over; keep the set small
    this.#warned.add(window);
    const resetAt = Number(reset) > 0 ? new Date(Number(reset) * 1000).toISOString() : undefined;
    this.#s.log.warn({ resource, remaining, limit, resetAt },
      'GitHub API budget nearly spent; lengthen Flint\'s loop intervals or share the App with fewer tools');
  }
}

/** GitHub's rate-limit headers, when the answer carried them. */
function rateLimitOf(headers: Readonly<Record<string, string | number | undefined>>): GitHubAnswer['rateLimit'] {
  const remaining = Number(headers['x-ratelimit-remaining']);
  const limit = Number(headers['x-ratelimit-limit']);
  if (headers['x-ratelimit-remaining'] === undefined || !Number.isFinite(remaining)) return undefined;
  return { resource: String(headers['x-ratelimit-resource'] ?? 'core'), remaining, limit: Number.isFinite(limit) ? limit : Number.NaN };
}

/** How a failed attempt ended, for the observer: a rate limit is GitHub answering, a 5xx or no answer is GitHub failing. */
function answerOf(err: unknown): GitHubAnswer {
  const status = statusOf(err);
  const headers = headersOf(err);
  const rateLimit = rateLimitOf(headers);
  if (status === undefined) return { outcome: 'network-error', status, rateLimit };
  // 304: a conditional request answered "unchanged" (Octokit throws on it).
  if (status < 400) return { outcome: 'ok', status, rateLimit };
  if (status >= 500) return { outcome: 'server-error', status, rateLimit };
  const limited = status === 429 || (status === 403 && (rateLimit?.remaining === 0 || headers['retry-after'] !== undefined));
  return { outcome: limited ? 'rate-limited' : 'client-error', status, rateLimit };
}

function policyPlugin(policy: RequestPolicy) {
  return (octokit: CoreOctokit): void => {
    octokit.hook.wrap('request', (request, opts) => policy.send(request, opts));
  };
}

export function createOctokit(s: OctokitSettings): FlintOctokit {
  const policy = new RequestPolicy(s);
  const request: RequestOptions['request'] = s.fetch === undefined ? {} : { fetch: s.fetch };
  const FlintOctokitClass = octokitClass(policy);
  const octokit = new FlintOctokitClass({
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
  });
  return Object.assign(octokit, { policy });
}
