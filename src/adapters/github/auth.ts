/**
 * Octokit authentication strategies for the two identities a GitHub App
 * has:
 *
 * - the App itself (a short-lived RS256 JWT signed with the private key)
 *   for `/app/...` and `/orgs/{org}/installation`;
 * - the App's installation on the organization (an installation access
 *   token, see installation-token.ts) for everything else.
 *
 * Each strategy's `hook` runs innermost in Octokit's request chain, so a
 * retried request is re-authenticated. Credentials go into the
 * `authorization` header only; Octokit's RequestError redacts that header,
 * and nothing here logs it.
 */
import { createAppAuth } from '@octokit/auth-app';
import type { EndpointDefaults, OctokitResponse, RequestInterface } from '@octokit/types';
import { FlintError } from '../../core/errors/index.ts';
import type { InstallationTokenSource } from './installation-token.ts';
import type { GitHubLog } from './log.ts';
import { redactUrl, statusOf } from './errors.ts';

/** A request as Octokit hands it to a `request` hook: merged with the defaults, URL still a template. */
export type Endpoint = EndpointDefaults & { url: string };

export type HookFn = (request: RequestInterface, options: Endpoint) => Promise<OctokitResponse<unknown>>;

/** The request with a credential set; a copy, so the caller's options (reused by retries) stay clean. */
function withAuthorization(options: Endpoint, authorization: string): Endpoint {
  return { ...options, headers: { ...options.headers, authorization } };
}

/** What Octokit's `authStrategy` must return: `octokit.auth()` plus the request hook. */
export type AuthHook = (() => Promise<{ readonly type: string }>) & { readonly hook: HookFn };

/** A JWT more than this far from GitHub's clock is re-signed with the difference. */
const SKEW_TOLERANCE_S = 30;

export interface AppJwtOptions {
  readonly appId: string;
  readonly privateKey: string;
  readonly log: GitHubLog;
}

/** Signs App JWTs; corrects once for a host clock that GitHub says is off. */
export function createAppJwtAuth(opts: AppJwtOptions): AuthHook {
  let timeDifference = 0;
  let sign = makeSigner(opts, 0);

  async function jwt(): Promise<string> {
    try {
      return (await sign({ type: 'app' })).token;
    } catch (err) {
      // The library's message may quote the key's first line; never pass it on.
      throw new FlintError('FLINT_ERR_GITHUB_PRIVATE_KEY_INVALID', `cannot sign a JWT for GitHub App ${opts.appId} with the configured private key`, {
        details: { appId: opts.appId, reason: err instanceof Error ? err.name : 'unknown' },
      });
    }
  }

  const hook: HookFn = async (request, options) => {
    try {
      return await request(withAuthorization(options, `bearer ${await jwt()}`));
    } catch (err) {
      const skew = statusOf(err) === 401 ? clockSkewSeconds(err) : undefined;
      if (skew === undefined || Math.abs(skew - timeDifference) <= SKEW_TOLERANCE_S) throw err;
      opts.log.warn({ skewSeconds: skew, url: redactUrl(options.url) },
        'GitHub rejected the App JWT and its clock differs from this host\'s; signing with the difference and retrying once (fix the host clock)');
      timeDifference = skew;
      sign = makeSigner(opts, skew);
      return await request(withAuthorization(options, `bearer ${await jwt()}`));
    }
  };
  return Object.assign(async () => ({ type: 'app' as const }), { hook });
}

function makeSigner(opts: AppJwtOptions, timeDifference: number) {
  return createAppAuth({
    appId: opts.appId,
    privateKey: opts.privateKey,
    ...(timeDifference === 0 ? {} : { timeDifference }),
    log: { warn: (msg: string) => opts.log.warn({}, msg) },
  });
}

/** GitHub's clock minus ours, from the `Date` header of an error response. */
function clockSkewSeconds(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('response' in err)) return undefined;
  const response = err.response;
  if (typeof response !== 'object' || response === null || !('headers' in response)) return undefined;
  const headers = response.headers;
  if (typeof headers !== 'object' || headers === null || !('date' in headers) || typeof headers.date !== 'string') return undefined;
  const server = Date.parse(headers.date);
  if (Number.isNaN(server)) return undefined;
  return Math.round((server - Date.now()) / 1000);
}

export interface InstallationAuthOptions {
  readonly tokens: InstallationTokenSource;
  readonly log: GitHubLog;
}

/**
 * Installation-token auth. A 401 means the token expired early or was
 * revoked: the token is dropped, a new one fetched and the request retried
 * exactly once; a second 401 is final.
 */
export function createInstallationAuth(opts: InstallationAuthOptions): AuthHook {
  const hook: HookFn = async (request, options) => {
    const token = await opts.tokens.get();
    try {
      return await request(withAuthorization(options, `token ${token}`));
    } catch (err) {
      if (statusOf(err) !== 401) throw err;
      opts.tokens.reject(token);
      opts.log.warn({ method: options.method, url: redactUrl(options.url) },
        'GitHub rejected the installation token (401); fetching a new token and retrying once');
      return await request(withAuthorization(options, `token ${await opts.tokens.get()}`));
    }
  };
  return Object.assign(async () => ({ type: 'installation' as const }), { hook });
}
