// The client with its HTTP layer faked at the seam (an injected `fetch`):
// cases the simulator cannot stage, such as a GitHub whose clock is ten
// minutes ahead of the host's, or an App re-installed under a new id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { isFlintError } from '../../core/errors/index.ts';
import { createGitHubClient } from './client.ts';

const KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

/** What an installation of a correctly set-up App reports. */
const GRANTS = { permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' }, events: ['workflow_job'] };

interface Seen { method: string; path: string; authorization: string }
type Route = (req: Seen, n: number) => { status: number; body?: unknown; headers?: Record<string, string> };

/** A fetch that answers from `routes` by "METHOD /path" and records every request. */
function fakeFetch(routes: Record<string, Route>): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const counts = new Map<string, number>();
  const impl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers);
    const req: Seen = { method: init?.method ?? 'GET', path: url.pathname, authorization: headers.get('authorization') ?? '' };
    seen.push(req);
    const key = `${req.method} ${req.path}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const route = routes[key];
    const answer = route === undefined ? { status: 404, body: { message: 'Not Found' } } : route(req, n);
    const res = new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': 'application/json', date: new Date().toUTCString(), ...answer.headers },
    });
    // A constructed Response has an empty `url`; Octokit's paginator reads it.
    Object.defineProperty(res, 'url', { value: url.href });
    return res;
  };
  return { fetch: impl, seen };
}

function jwtClaims(authorization: string): { iat: number; exp: number; iss: unknown } {
  const payload = authorization.replace(/^bearer /i, '').split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat: number; exp: number; iss: unknown }; // a JWT payload we signed
}

test('GitHub\'s clock ten minutes ahead: the JWT is re-signed with the difference and the call succeeds', async () => {
  const ahead = new Date(Date.now() + 600_000).toUTCString();
  const { fetch, seen } = fakeFetch({
    'GET /orgs/acme/installation': (_req, n) => n === 1
      ? { status: 401, body: { message: '\'Issued at\' claim (\'iat\') must be an Integer representing a time in the past' }, headers: { date: ahead } }
      : { status: 200, body: { id: 77, suspended_at: null, ...GRANTS } },
  });
  const warnings: string[] = [];
  const gh = createGitHubClient({
    github: { appId: '123', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' },
    fetch, retryBaseMs: 1,
    log: { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (_f, m) => warnings.push(m) },
  });
  assert.equal(await gh.installationId(), 77);
  assert.equal(seen.length, 2);
  const [first, second] = seen.map((s) => jwtClaims(s.authorization));
  assert.ok(first && second);
  assert.equal(first.iss, '123');
  assert.ok(Math.abs(second.iat - first.iat - 600) <= 2, `iat moved by ${second.iat - first.iat} s`);
  assert.ok(warnings.some((w) => /clock differs/.test(w)));
});

test('the base URL of GitHub Enterprise Server (…/api/v3) prefixes every path', async () => {
  const { fetch, seen } = fakeFetch({ 'GET /api/v3/orgs/acme/installation': () => ({ status: 200, body: { id: 5, suspended_at: null, ...GRANTS } }) });
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://ghe.example.test/api/v3/' }, fetch });
  assert.equal(await gh.installationId(), 5);
  assert.equal(seen[0]?.path, '/api/v3/orgs/acme/installation');
});

test('an App re-installed under a new id: the token request 404s, the installation is looked up again', async () => {
  const { fetch, seen } = fakeFetch({
    'GET /orgs/acme/installation': (_req, n) => ({ status: 200, body: { id: n === 1 ? 1 : 2, suspended_at: null, ...GRANTS } }),
    'POST /app/installations/2/access_tokens': () => ({ status: 201, body: { token: 'ghs_new', expires_at: new Date(Date.now() + 3_600_000).toISOString() } }),
    'GET /orgs/acme/actions/runners': (req) => req.authorization === 'token ghs_new' ? { status: 200, body: { total_count: 0, runners: [] } } : { status: 401, body: { message: 'Bad credentials' } },
  });
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch });
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), [
    'GET /orgs/acme/installation',
    'POST /app/installations/1/access_tokens',
    'GET /orgs/acme/installation',
    'POST /app/installations/2/access_tokens',
    'GET /orgs/acme/actions/runners',
  ]);
  assert.equal(await gh.installationId(), 2);
});

test('a suspended installation is FLINT_ERR_GITHUB_INSTALLATION_SUSPENDED', async () => {
  const { fetch } = fakeFetch({ 'GET /orgs/acme/installation': () => ({ status: 200, body: { id: 3, suspended_at: '2026-01-01T00:00:00Z', ...GRANTS } }) });
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch });
  await assert.rejects(gh.installationId(), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_INSTALLATION_SUSPENDED'));
});

test('a 403 "not accessible by integration" is FLINT_ERR_GITHUB_PERMISSION_DENIED and not retried', async () => {
  const { fetch, seen } = fakeFetch({
    'GET /orgs/acme/installation': () => ({ status: 200, body: { id: 3, suspended_at: null, ...GRANTS } }),
    'POST /app/installations/3/access_tokens': () => ({ status: 201, body: { token: 'ghs_x', expires_at: new Date(Date.now() + 3_600_000).toISOString() } }),
    'GET /orgs/acme/actions/runners': () => ({ status: 403, body: { message: 'Resource not accessible by integration' }, headers: { 'x-ratelimit-remaining': '4000' } }),
  });
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch, retryBaseMs: 1 });
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_PERMISSION_DENIED'), String(err));
    assert.match(err.message, /Resource not accessible by integration/);
    return true;
  });
  assert.equal(seen.filter((s) => s.path === '/orgs/acme/actions/runners').length, 1);
});

test('an installation without the runner permission is FLINT_ERR_GITHUB_PERMISSION_DENIED naming what to grant', async () => {
  const { fetch } = fakeFetch({
    'GET /orgs/acme/installation': () => ({ status: 200, body: { id: 3, suspended_at: null, permissions: { organization_self_hosted_runners: 'read', metadata: 'read' }, events: ['workflow_job'] } }),
  });
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch });
  await assert.rejects(gh.installationId(), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_PERMISSION_DENIED'), String(err));
    assert.match(err.message, /Self-hosted runners: Read and write \(has read\); Repository → Actions: Read \(has none\)/);
    return true;
  });
});

test('an App not subscribed to workflow_job events works, with a warning', async () => {
  const { fetch } = fakeFetch({
    'GET /orgs/acme/installation': () => ({ status: 200, body: { id: 3, suspended_at: null, permissions: GRANTS.permissions, events: ['push'] } }),
  });
  const warnings: string[] = [];
  const gh = createGitHubClient({
    github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch,
    log: { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (_f, m) => warnings.push(m) },
  });
  assert.equal(await gh.installationId(), 3);
  assert.ok(warnings.some((w) => /not subscribed to "Workflow job" events/.test(w)));
});

test('a nearly spent rate-limit budget is warned about once per window', async () => {
  const budget = { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4000', 'x-ratelimit-reset': '1900000000', 'x-ratelimit-resource': 'core' };
  const { fetch } = fakeFetch({
    'GET /orgs/acme/installation': () => ({ status: 200, body: { id: 3, suspended_at: null, ...GRANTS } }),
    'POST /app/installations/3/access_tokens': () => ({ status: 201, body: { token: 'ghs_x', expires_at: new Date(Date.now() + 3_600_000).toISOString() } }),
    'GET /orgs/acme/actions/runners': () => ({ status: 200, body: { total_count: 0, runners: [] }, headers: budget }),
  });
  const warnings: Record<string, unknown>[] = [];
  const gh = createGitHubClient({
    github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' }, fetch,
    log: { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (f, m) => { if (/budget nearly spent/.test(m)) warnings.push(f); } },
  });
  await gh.listRunners({ kind: 'organization' });
  assert.equal(warnings.length, 0, '80% left: no warning');
  budget['x-ratelimit-remaining'] = '300';
  await gh.listRunners({ kind: 'organization' });
  budget['x-ratelimit-remaining'] = '299';
  await gh.listRunners({ kind: 'organization' });
  assert.deepEqual(warnings, [{ resource: 'core', remaining: 300, limit: 5000, resetAt: '2030-03-17T17:46:40.000Z' }]);
  budget['x-ratelimit-reset'] = '1900003600';
  await gh.listRunners({ kind: 'organization' });
  assert.equal(warnings.length, 2, 'a new window warns again');
});
