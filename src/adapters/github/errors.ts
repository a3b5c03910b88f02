/**
 * Turning what Octokit throws into FlintErrors, and small helpers to read
 * an Octokit RequestError without trusting its shape.
 *
 * A RequestError's message is GitHub's `message` field (plus a docs link);
 * it carries no credentials (Octokit redacts the authorization header and
 * Flint's URLs carry no secrets), so it may appear in a FlintError message.
 */
import { FlintError, isFlintError } from '../../core/errors/index.ts';

/**
 * A rate limit whose wait is longer than Flint sits through inside a call,
 * or a call refused because such a limit is still in force. `sent` says
 * whether this call reached GitHub at all.
 */
export class RateLimitBlock extends Error {
  readonly retryAt: number;
  readonly limit: 'primary' | 'secondary';
  readonly status: number | undefined;
  readonly sent: boolean;
  readonly requestId: string | undefined;

  constructor(o: { retryAt: number; limit: 'primary' | 'secondary'; status: number | undefined; sent: boolean; requestId?: string | undefined; cause?: unknown }) {
    super(`GitHub ${o.limit} rate limit in force until ${new Date(o.retryAt).toISOString()}`, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'RateLimitBlock';
    this.retryAt = o.retryAt;
    this.limit = o.limit;
    this.status = o.status;
    this.sent = o.sent;
    this.requestId = o.requestId;
  }
}

/** The client was closed while a call waited (or before it started). */
export class ClientClosed extends Error {
  constructor() {
    super('the GitHub client was closed');
    this.name = 'ClientClosed';
  }
}

export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('status' in err)) return undefined;
  return typeof err.status === 'number' ? err.status : undefined;
}

/** Lower-cased response headers of a RequestError, or {}. */
export function headersOf(err: unknown): Readonly<Record<string, string>> {
  if (typeof err !== 'object' || err === null || !('response' in err)) return {};
  const response = err.response;
  if (typeof response !== 'object' || response === null || !('headers' in response)) return {};
  const headers = response.headers;
  if (typeof headers !== 'object' || headers === null) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v === 'string') out[k.toLowerCase()] = v;
    else if (typeof v === 'number') out[k.toLowerCase()] = String(v);
  }
  return out;
}

function hasResponse(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'response' in err && err.response !== undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** URLs carry no secrets in Flint's calls; the query is dropped anyway (cursors are noise in logs). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** True for GitHub's primary (remaining 0) and secondary ("secondary rate limit") limits. */
export function isRateLimit(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== 403 && status !== 429) return false;
  return headersOf(err)['x-ratelimit-remaining'] === '0' || /secondary rate/i.test(messageOf(err));
}

/**
 * The FlintError for a failed GitHub call. `operation` says what Flint was
 * doing ("generate a JIT runner config for organization acme"); it leads
 * the message so an operator knows which call failed.
 */
export function toFlintError(err: unknown, operation: string): FlintError {
  if (isFlintError(err)) return err;
  if (err instanceof RateLimitBlock) {
    const retryAtIso = new Date(err.retryAt).toISOString();
    const why = err.sent ? `GitHub answered ${err.status ?? 'with'} a ${err.limit} rate limit` : `a ${err.limit} rate limit met earlier is still in force, so the call was not sent`;
    // `retryAt` (epoch ms) is what loops read to schedule their next pass.
    return new FlintError('FLINT_ERR_GITHUB_RATE_LIMITED', `${operation}: ${why}; Flint sends this App identity's next request at ${retryAtIso}`, {
      details: { operation, status: err.status, requestId: err.requestId, limit: err.limit, sent: err.sent, retryAt: err.retryAt, retryAtIso }, cause: err,
    });
  }
  if (err instanceof ClientClosed) {
    return new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', `${operation}: the GitHub client was closed (Flint is shutting down)`, { details: { operation, closed: true }, cause: err });
  }
  const status = statusOf(err);
  const headers = headersOf(err);
  const details: Record<string, unknown> = { operation, status, requestId: headers['x-github-request-id'] };
  const said = messageOf(err);
  if (status === undefined) {
    return new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', `${operation}: ${said}`, { details, cause: err });
  }
  if (isRateLimit(err)) {
    const reset = Number(headers['x-ratelimit-reset']);
    const resetAt = headers['x-ratelimit-remaining'] === '0' && Number.isFinite(reset) && reset > 0 ? new Date(reset * 1000).toISOString() : undefined;
    const retryAfter = headers['retry-after'];
    const when = resetAt !== undefined ? `; the limit resets at ${resetAt}` : retryAfter !== undefined ? `; GitHub asks to wait ${retryAfter} s` : '';
    return new FlintError('FLINT_ERR_GITHUB_RATE_LIMITED', `${operation}: GitHub rate limit (${status})${when}`, {
      details: { ...details, resetAt, retryAfter }, cause: err,
    });
  }
  if (status === 401) {
    return new FlintError('FLINT_ERR_GITHUB_AUTH_FAILED', `${operation}: GitHub answered 401 ${said}`, { details, cause: err });
  }
  if (status === 403) {
    return new FlintError('FLINT_ERR_GITHUB_PERMISSION_DENIED', `${operation}: GitHub answered 403 ${said}`, { details, cause: err });
  }
  if (status === 500 && !hasResponse(err)) {
    // Octokit reports a failed connection (refused, reset, timed out) as status 500 without a response.
    return new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', `${operation}: could not reach GitHub: ${said} (after retries)`, { details, cause: err });
  }
  if (status >= 500) {
    return new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', `${operation}: GitHub answered ${status} ${said} (after retries)`, { details, cause: err });
  }
  return new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', `${operation}: GitHub answered ${status} ${said}`, { details, cause: err });
}
