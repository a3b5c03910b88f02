// How the GitHub client behaves when GitHub misbehaves: server errors,
// unreachable or hung API, primary and secondary rate limits, expiring
// and rejected installation tokens, an App uninstalled at run time.
// Against the GitHub simulator's faults (and, for a server that rejects
// every token, a tiny stub), with short waits.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../../tools/github-sim/index.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { createGitHubClient, type GitHubClientOptions } from './client.ts';
import type { GitHubLog } from './log.ts';

interface LogLine { level: string; msg: string; fields: Record<string, unknown> }

function recordingLog(): GitHubLog & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string): void => {
    lines.push({ level, msg, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), text: () => JSON.stringify(lines) };
}

async function setup(t: TestContext, simOpts: SimulatorOptions = {}, clientOpts: Partial<GitHubClientOptions> = {}) {
  const sim = await startSimulator(simOpts);
  t.after(() => sim.close());
  const log = recordingLog();
  const gh = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    log,
    retryBaseMs: 10,
    ...clientOpts,
  });
  return { sim, gh, log };
}

function statuses(sim: Simulator, method: string, path: string): number[] {
  return sim.requests().filter((r) => r.method === method && r.path === path).map((r) => r.status);
}

const RUNNERS = '/orgs/acme/actions/runners';
const TOKENS = /^\/app\/installations\/\d+\/access_tokens$/;

test('5xx answers are retried with backoff, each retry logged, and the call succeeds', async (t) => {
  const { sim, gh, log } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 2, status: 502, match: '^GET /orgs/acme/actions/runners$' } });
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [502, 502, 200]);
  const retries = log.lines.filter((l) => l.level === 'warn' && l.msg === 'GitHub request failed; retrying after backoff');
  assert.deepEqual(retries.map((l) => [l.fields.status, l.fields.attempt, l.fields.waitMs]), [[502, 1, 10], [502, 2, 40]]);
});

test('GitHub failing beyond the retry budget is FLINT_ERR_GITHUB_UNAVAILABLE after 1 + 3 attempts', async (t) => {
  const { sim, gh, log } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 10, status: 503, match: '^GET /orgs/acme/actions/runners$' } });
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'), String(err));
    assert.match(err.message, /list the self-hosted runners of organization acme: GitHub answered 503/);
    return true;
  });
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [503, 503, 503, 503]);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'GitHub request failed; retries exhausted'));
});

test('a POST is retried after a 5xx too (JIT registration survives a flaky GitHub)', async (t) => {
  const { sim, gh } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 1, match: 'generate-jitconfig$' } });
  const jit = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-r-00001', runnerGroupId: 1, labels: ['flint'] });
  assert.deepEqual(statuses(sim, 'POST', '/orgs/acme/actions/runners/generate-jitconfig'), [502, 201]);
  assert.equal(sim.runners()[0]?.id, jit.runnerId);
});

test('an unreachable API is FLINT_ERR_GITHUB_UNAVAILABLE after the retries', async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port; // listening on TCP: AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const log = recordingLog();
  const gh = createGitHubClient({
    github: { appId: '1', organization: 'acme', privateKey: (await startKeyOnly()).pem, apiUrl: `http://127.0.0.1:${port}` },
    log, retryBaseMs: 10,
  });
  await assert.rejects(gh.installationId(), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'), String(err));
    assert.match(err.message, /could not reach GitHub/);
    return true;
  });
  assert.equal(log.lines.filter((l) => l.msg === 'GitHub request failed; retrying after backoff').length, 3);
});

/** A valid App key without a running simulator. */
async function startKeyOnly(): Promise<{ pem: string }> {
  const sim = await startSimulator();
  await sim.close();
  return { pem: sim.privateKeyPem };
}

test('a hung answer times out and the retry gets through', async (t) => {
  const { sim, gh } = await setup(t, {}, { requestTimeoutMs: 300, retryBaseMs: 400 });
  await gh.installationId();
  sim.faults.set({ latencyMs: 5000 });
  setTimeout(() => sim.faults.clear(), 150);
  const started = Date.now();
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  const took = Date.now() - started;
  assert.ok(took >= 600 && took < 4000, `took ${took} ms: one timeout (300) + one backoff (400), not the 5 s latency`);
});

test('primary rate limit (403, remaining 0): waits until the reset, then succeeds', async (t) => {
  const { sim, gh, log } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, status: 403, resetAfterSeconds: 1, match: '^GET /orgs/acme/actions/runners$' } });
  const started = Date.now();
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  const took = Date.now() - started;
  assert.ok(took >= 1000, `waited ${took} ms for a reset 1 s ahead`);
  assert.ok(took < 5000, `waited ${took} ms`);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 200]);
  const line = log.lines.find((l) => l.msg === 'GitHub primary rate limit reached; waiting before retrying');
  assert.ok(line && line.level === 'warn' && typeof line.fields.retryAfterSeconds === 'number');
});

test('primary rate limit answered as 429 is honoured the same way', async (t) => {
  const { sim, gh } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, status: 429, resetAfterSeconds: 1, match: '^GET /orgs/acme/actions/runners$' } });
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [429, 200], 'not retried by the 5xx retry logic on top');
});

test('a rate limit that resets in an hour fails at once with FLINT_ERR_GITHUB_RATE_LIMITED naming the reset', async (t) => {
  const { sim, gh, log } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 5, resetAfterSeconds: 3600, match: '^GET /orgs/acme/actions/runners$' } });
  const started = Date.now();
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'), String(err));
    assert.match(err.message, /the limit resets at \d{4}-\d\d-\d\dT/);
    return true;
  });
  assert.ok(Date.now() - started < 2000);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403]);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /not waiting/.test(l.msg)));
});

test('secondary rate limit: waits retry-after, then succeeds', async (t) => {
  const { sim, gh, log } = await setup(t);
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 1, match: '^GET /orgs/acme/actions/runners$' } });
  const started = Date.now();
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  const took = Date.now() - started;
  assert.ok(took >= 1000 && took < 4000, `waited ${took} ms for retry-after: 1`);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 200]);
  assert.ok(log.lines.some((l) => l.msg === 'GitHub secondary rate limit reached; waiting before retrying' && l.fields.retryAfterSeconds === 1));
});

test('a secondary rate limit that keeps coming is given up once the allowed waits are used', async (t) => {
  const { sim, gh } = await setup(t, {}, { maxRateLimitRetries: 1 });
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 5, retryAfterSeconds: 1, match: '^GET /orgs/acme/actions/runners$' } });
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'));
    assert.match(err.message, /GitHub asks to wait 1 s/);
    return true;
  });
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 403]);
});

test('installation tokens are refreshed before they expire: no request ever meets an expired token', async (t) => {
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 4 });
  await gh.listRunners({ kind: 'organization' });
  await sleep(2600);
  await gh.listRunners({ kind: 'organization' });
  await sleep(2600);
  await gh.listRunners({ kind: 'organization' });
  assert.equal(sim.requests().filter((r) => TOKENS.test(r.path)).length, 3, 'one token per call: each was past half its life');
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [200, 200, 200], 'never a 401');
  const refreshes = log.lines.filter((l) => l.msg === 'fetched a GitHub installation access token');
  assert.deepEqual(refreshes.map((l) => l.fields.reason), ['none', 'expiring', 'expiring']);
  assert.ok(!log.text().includes('ghs_'), 'no token in the log');
});

test('a token GitHub rejects (401) is replaced once and the request retried', async (t) => {
  // The client's clock stands still, so it believes its token is fresh;
  // GitHub expires it after at most two seconds and answers 401.
  const frozen = Date.now();
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 2 }, { now: () => frozen });
  await gh.listRunners({ kind: 'organization' });
  await sleep(2100);
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [200, 401, 200]);
  assert.equal(sim.requests().filter((r) => TOKENS.test(r.path)).length, 2);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /rejected the installation token \(401\)/.test(l.msg)));
  assert.deepEqual(log.lines.filter((l) => l.msg === 'fetched a GitHub installation access token').map((l) => l.fields.reason), ['none', 'rejected']);
  assert.ok(!/eyJ|ghs_/.test(log.text()), 'no JWT or token in the log, debug lines included');
});

test('a 401 for a fresh token too is final: FLINT_ERR_GITHUB_AUTH_FAILED after exactly one re-auth', async (t) => {
  // A stub GitHub that issues tokens but accepts none of them.
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    req.resume();
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', date: new Date().toUTCString() });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/orgs/acme/installation') return json(200, { id: 7, suspended_at: null });
    if (req.url === '/app/installations/7/access_tokens') return json(201, { token: `ghs_stub${seen.length}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    return json(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`; // listening on TCP: AddressInfo
  const gh = createGitHubClient({ github: { appId: '1', organization: 'acme', privateKey: (await startKeyOnly()).pem, apiUrl }, retryBaseMs: 10 });
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_AUTH_FAILED'), String(err));
    assert.ok(!err.message.includes('ghs_stub'), 'the token is not in the message');
    return true;
  });
  assert.deepEqual(seen.map((s) => s.replace(/\?.*$/, '')), [
    'GET /orgs/acme/installation',
    'POST /app/installations/7/access_tokens',
    'GET /orgs/acme/actions/runners',
    'POST /app/installations/7/access_tokens',
    'GET /orgs/acme/actions/runners',
  ]);
});

test('the App uninstalled while Flint runs: the next token refresh reports FLINT_ERR_GITHUB_APP_NOT_INSTALLED', async (t) => {
  const { sim, gh } = await setup(t, { tokenTtlSeconds: 2 });
  await gh.listRunners({ kind: 'organization' });
  const res = await fetch(`${sim.apiUrl}/_sim/installation`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ installed: false }) });
  assert.equal(res.status, 204);
  await sleep(1200);
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_APP_NOT_INSTALLED'));
  // Installed again: the client recovers without a restart.
  await fetch(`${sim.apiUrl}/_sim/installation`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ installed: true }) });
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
});

test('GitHub failing when the token is due for refresh: the current token carries on until it expires', async (t) => {
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 8 });
  await gh.listRunners({ kind: 'organization' });
  sim.faults.set({ serverErrors: { count: 100, status: 502, match: '/access_tokens$' } });
  await sleep(4200); // past half the token's life, well before its end
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [200, 200]);
  assert.ok(sim.requests().filter((r) => TOKENS.test(r.path) && r.status === 502).length >= 4, 'the refresh was tried, with retries');
  assert.ok(log.lines.some((l) => l.level === 'warn' && /using the current one until it expires/.test(l.msg)));
});

test('many calls at once on a fresh client do not starve the installation lookup they all wait for', { timeout: 20_000 }, async (t) => {
  const { sim, gh } = await setup(t);
  const all = await Promise.all(Array.from({ length: 15 }, () => gh.listRunners({ kind: 'organization' })));
  assert.equal(all.length, 15);
  assert.equal(sim.requests().filter((r) => r.path === '/orgs/acme/installation').length, 1);
  assert.equal(sim.requests().filter((r) => TOKENS.test(r.path)).length, 1);
});
