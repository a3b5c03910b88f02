// How the GitHub client behaves when GitHub misbehaves: server errors,
// unreachable or hung API, primary and secondary rate limits, expiring
// and rejected installation tokens, an App uninstalled at run time.
// Against the GitHub simulator's faults (and, for a server that rejects
// every token, a tiny stub). Waits run on the test's timers: the test
// sees each wait armed, checks its length and moves the clock — nothing
// waits on the wall clock except the token-lifetime cases.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../../tools/github-sim/index.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { startLoop } from '../../daemon/loop.ts';
import { createGitHubClient, type GitHubClientOptions } from './client.ts';
import { realTimers, type GitHubTimers } from './octokit.ts';
import type { GitHubLog } from './log.ts';

interface LogLine { level: string; msg: string; fields: Record<string, unknown> }

function recordingLog(): GitHubLog & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string): void => {
    lines.push({ level, msg, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), text: () => JSON.stringify(lines) };
}

/** An attempt timeout no wait of the policy ever has: tells the two kinds of timer apart. */
const ATTEMPT_TIMEOUT_MS = 777_777;

/**
 * Timers and a clock under the test's hand, starting at the real time (the
 * simulator's rate-limit headers are on the real clock). `nextWait()`
 * resolves with the length of the next wait the client arms (attempt
 * timeouts aside); `advance` moves the clock and fires what is due.
 */
function fakeTime(): GitHubTimers & { now(): number; advance(ms: number): void; nextWait(): Promise<number>; armed(): number } {
  let now = Date.now();
  let id = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const waits: number[] = [];
  let wake: (() => void) | undefined;
  return {
    now: () => now,
    setTimeout(fn, ms) {
      pending.set(++id, { at: now + ms, fn });
      if (ms !== ATTEMPT_TIMEOUT_MS) {
        waits.push(ms);
        wake?.();
      }
      return id;
    },
    clearTimeout: (h) => { pending.delete(h as number); },
    advance(ms) {
      now += ms;
      for (const [k, v] of [...pending].sort((a, b) => a[1].at - b[1].at)) if (v.at <= now && pending.delete(k)) v.fn();
    },
    async nextWait() {
      const deadline = Date.now() + 10_000;
      while (waits.length === 0) {
        if (Date.now() > deadline) throw new Error('no wait was armed within 10 s');
        await Promise.race([new Promise<void>((r) => { wake = r; }), sleep(50)]);
      }
      return waits.shift() ?? 0;
    },
    armed: () => pending.size,
  };
}

async function setup(t: TestContext, simOpts: SimulatorOptions = {}, clientOpts: Partial<GitHubClientOptions> = {}) {
  const sim = await startSimulator(simOpts);
  t.after(() => sim.close());
  const log = recordingLog();
  const time = fakeTime();
  const gh = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    log,
    now: time.now,
    timers: time,
    random: () => 0.5,
    requestTimeoutMs: ATTEMPT_TIMEOUT_MS,
    writeSpacingMs: 0,
    ...clientOpts,
  });
  t.after(() => gh.close());
  return { sim, gh, log, time };
}

/** For the token-lifetime cases: the simulator expires tokens on the real clock. */
const REAL_TIME: Partial<GitHubClientOptions> = { now: Date.now, timers: realTimers, requestTimeoutMs: 30_000, retryBaseMs: 10 };

/** Every wait the call arms, each after checking the call has not settled yet; resolves with the waits and the call's outcome. */
async function driveWaits<T>(time: ReturnType<typeof fakeTime>, call: Promise<T>, expected: number): Promise<{ waits: number[]; result: PromiseSettledResult<T> }> {
  const waits: number[] = [];
  const settled = call.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }));
  for (let i = 0; i < expected; i++) {
    const ms = await time.nextWait();
    waits.push(ms);
    time.advance(ms);
  }
  return { waits, result: await settled };
}

function statuses(sim: Simulator, method: string, path: string): number[] {
  return sim.requests().filter((r) => r.method === method && r.path === path).map((r) => r.status);
}

const RUNNERS = '/orgs/acme/actions/runners';
const TOKENS = /^\/app\/installations\/\d+\/access_tokens$/;

test('5xx answers are retried after exponential back-off with jitter, each retry logged, and the call succeeds', async (t) => {
  const { sim, gh, log, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 2, status: 502, match: '^GET /orgs/acme/actions/runners$' } });
  const { waits, result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 2);
  assert.deepEqual(result, { status: 'fulfilled', value: [] });
  // base 1000 ms × 2ⁿ, half fixed and half random (random() = 0.5 here): 750, 1500.
  assert.deepEqual(waits, [750, 1500]);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [502, 502, 200]);
  const retries = log.lines.filter((l) => l.level === 'warn' && l.msg === 'GitHub request failed; retrying after backoff');
  assert.deepEqual(retries.map((l) => [l.fields.status, l.fields.attempt, l.fields.waitMs]), [[502, 1, 750], [502, 2, 1500]]);
  assert.equal(time.armed(), 0, 'no timer left armed');
});

test('the back-off is bounded: jitter stays within half to all of base × 2ⁿ, capped at retryMaxMs', async (t) => {
  const { sim, gh, time } = await setup(t, {}, { random: () => 0.999, retries: 5, retryMaxMs: 5000 });
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 5, status: 503, match: '^GET /orgs/acme/actions/runners$' } });
  const { waits } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 5);
  assert.deepEqual(waits, [1000, 1999, 3998, 4998, 4998]);
});

test('GitHub failing beyond the retry budget is FLINT_ERR_GITHUB_UNAVAILABLE after 1 + 3 attempts', async (t) => {
  const { sim, gh, log, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 10, status: 503, match: '^GET /orgs/acme/actions/runners$' } });
  const { result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 3);
  assert.equal(result.status, 'rejected');
  const err = result.status === 'rejected' ? result.reason : undefined;
  assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'), String(err));
  assert.match(err.message, /list the self-hosted runners of organization acme: GitHub answered 503/);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [503, 503, 503, 503]);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'GitHub request failed; retries exhausted'));
});

test('a POST is retried after a 5xx too (JIT registration survives a flaky GitHub)', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ serverErrors: { count: 1, match: 'generate-jitconfig$' } });
  const { result } = await driveWaits(time, gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-r-00001', runnerGroupId: 1, labels: ['flint'] }), 1);
  assert.equal(result.status, 'fulfilled');
  assert.deepEqual(statuses(sim, 'POST', '/orgs/acme/actions/runners/generate-jitconfig'), [502, 201]);
  assert.equal(sim.runners()[0]?.id, result.status === 'fulfilled' ? result.value.runnerId : -1);
});

test('writes are spaced per identity: a second registration waits out the spacing', async (t) => {
  const { gh, time } = await setup(t, {}, { writeSpacingMs: 1000 });
  await gh.installationId();
  const first = gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-r-00001', runnerGroupId: 1, labels: ['flint'] });
  const second = gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-r-00002', runnerGroupId: 1, labels: ['flint'] });
  const { waits, result } = await driveWaits(time, Promise.all([first, second]), 1);
  assert.deepEqual(waits, [1000]);
  assert.equal(result.status, 'fulfilled');
});

test('an unreachable API is FLINT_ERR_GITHUB_UNAVAILABLE after the retries', async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port; // listening on TCP: AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const log = recordingLog();
  const time = fakeTime();
  const gh = createGitHubClient({
    github: { appId: '1', organization: 'acme', privateKey: (await startKeyOnly()).pem, apiUrl: `http://127.0.0.1:${port}` },
    log, now: time.now, timers: time, random: () => 0, requestTimeoutMs: ATTEMPT_TIMEOUT_MS,
  });
  const { waits, result } = await driveWaits(time, gh.installationId(), 3);
  assert.deepEqual(waits, [500, 1000, 2000]);
  const err = result.status === 'rejected' ? result.reason : undefined;
  assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'), String(err));
  assert.match(err.message, /could not reach GitHub/);
  assert.equal(log.lines.filter((l) => l.msg === 'GitHub request failed; retrying after backoff').length, 3);
  gh.close();
});

/** A valid App key without a running simulator. */
async function startKeyOnly(): Promise<{ pem: string }> {
  const sim = await startSimulator();
  await sim.close();
  return { pem: sim.privateKeyPem };
}

test('a hung answer times out and the retry gets through (real timers)', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const gh = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    requestTimeoutMs: 300, retryBaseMs: 400, random: () => 1,
  });
  t.after(() => gh.close());
  await gh.installationId();
  sim.faults.set({ latencyMs: 5000 });
  setTimeout(() => sim.faults.clear(), 150);
  const started = Date.now();
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  const took = Date.now() - started;
  assert.ok(took >= 600 && took < 4000, `took ${took} ms: one timeout (300) + one backoff (400), not the 5 s latency`);
});

test('primary rate limit (403, remaining 0): waits until x-ratelimit-reset, then succeeds', async (t) => {
  const { sim, gh, log, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, status: 403, resetAfterSeconds: 30, match: '^GET /orgs/acme/actions/runners$' } });
  const { waits, result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 1);
  assert.equal(result.status, 'fulfilled');
  // The reset is whole seconds ~30 s ahead on GitHub's clock; Flint asks 1 s after it.
  assert.ok(waits[0] !== undefined && waits[0] >= 30_000 && waits[0] <= 32_500, `waited ${waits[0]} ms`);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 200]);
  const line = log.lines.find((l) => l.msg === 'GitHub primary rate limit reached; waiting before retrying');
  assert.equal(line?.level, 'warn');
  assert.equal(line?.fields.source, 'x-ratelimit-reset');
});

test('primary rate limit answered as 429 is honoured the same way, not retried as a 5xx on top', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, status: 429, resetAfterSeconds: 5, match: '^GET /orgs/acme/actions/runners$' } });
  const { waits, result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 1);
  assert.equal(result.status, 'fulfilled');
  assert.ok(waits[0] !== undefined && waits[0] >= 5000 && waits[0] <= 7500, `waited ${waits[0]} ms`);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [429, 200]);
});

test('a rate limit that resets in an hour fails at once with retryAt; every call before it fails without a request', async (t) => {
  const { sim, gh, log, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, resetAfterSeconds: 3600, match: '^GET /orgs/acme/actions/runners$' } });
  let retryAt = 0;
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'), String(err));
    assert.match(err.message, /list the self-hosted runners of organization acme: GitHub answered 403 a primary rate limit; .* next request at \d{4}-\d\d-\d\dT/);
    assert.equal(typeof err.details.retryAt, 'number');
    retryAt = Number(err.details.retryAt);
    return true;
  });
  assert.ok(retryAt >= time.now() + 3_600_000 && retryAt <= time.now() + 3_602_500);
  assert.equal(gh.blockedUntil(), retryAt);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /not waiting/.test(l.msg)));
  const before = sim.requests().length;
  for (let i = 0; i < 5; i++) {
    await assert.rejects(gh.getJob('acme', 'app', 1), (err) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'));
      assert.equal(err.details.retryAt, retryAt);
      assert.equal(err.details.sent, false);
      assert.match(err.message, /still in force, so the call was not sent/);
      return true;
    });
  }
  assert.equal(sim.requests().length, before, 'no request reached GitHub during the block');
  assert.equal(time.armed(), 0, 'and nothing waits: the calls failed at once');
  time.advance(retryAt - time.now());
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), [], 'after retryAt the calls go through again');
  assert.equal(gh.blockedUntil(), undefined);
});

test('secondary rate limit: waits retry-after exactly, then succeeds', async (t) => {
  const { sim, gh, log, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 7, match: '^GET /orgs/acme/actions/runners$' } });
  const { waits, result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 1);
  assert.equal(result.status, 'fulfilled');
  assert.deepEqual(waits, [7000]);
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 200]);
  assert.ok(log.lines.some((l) => l.msg === 'GitHub secondary rate limit reached; waiting before retrying' && l.fields.source === 'retry-after'));
});

test('secondary limit without retry-after: a minute, then doubling; beyond the cap it fails fast with retryAt', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 2, status: 429, retryAfterSeconds: null, match: '^GET /orgs/acme/actions/runners$' } });
  const call = gh.listRunners({ kind: 'organization' });
  const { waits, result } = await driveWaits(time, call, 1);
  assert.deepEqual(waits, [60_000], 'GitHub: wait at least one minute');
  const err = result.status === 'rejected' ? result.reason : undefined;
  assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RATE_LIMITED'), String(err));
  assert.equal(err.details.retryAt, time.now() + 120_000, 'the second one in a row: two minutes, over the 60 s cap');
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [429, 429]);
});

test('a secondary rate limit that keeps coming is given up once the allowed waits are used', async (t) => {
  const { sim, gh, time } = await setup(t, {}, { maxRateLimitRetries: 1 });
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 5, retryAfterSeconds: 1, match: '^GET /orgs/acme/actions/runners$' } });
  const { result } = await driveWaits(time, gh.listRunners({ kind: 'organization' }), 1);
  assert.ok(result.status === 'rejected' && isFlintError(result.reason, 'FLINT_ERR_GITHUB_RATE_LIMITED'));
  assert.deepEqual(statuses(sim, 'GET', RUNNERS), [403, 403]);
});

test('a call arriving during another call\'s rate-limit wait waits too instead of asking GitHub', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 10, match: '^GET /orgs/acme/actions/runners$' } });
  const first = gh.listRunners({ kind: 'organization' });
  assert.equal(await time.nextWait(), 10_000);
  time.advance(4000);
  const second = gh.getJob('acme', 'app', 424242);
  assert.equal(await time.nextWait(), 6000, 'the rest of the same window');
  assert.deepEqual(statuses(sim, 'GET', '/repos/acme/app/actions/jobs/424242'), []);
  time.advance(6000);
  assert.deepEqual(await first, []);
  assert.equal(await second, undefined);
});

test('close() ends a rate-limit wait: the call fails at once, no timer stays armed, later calls fail without a request', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 30, match: '^GET /orgs/acme/actions/runners$' } });
  const call = gh.listRunners({ kind: 'organization' });
  assert.equal(await time.nextWait(), 30_000);
  gh.close();
  await assert.rejects(call, (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'), String(err));
    assert.match(err.message, /closed/);
    return true;
  });
  assert.equal(time.armed(), 0);
  const before = sim.requests().length;
  await assert.rejects(gh.listRunners({ kind: 'organization' }), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_UNAVAILABLE'));
  assert.equal(sim.requests().length, before);
});

test('a loop whose pass meets a long rate limit runs its next pass at retryAt, not at its interval', async (t) => {
  const { sim, gh, time } = await setup(t);
  await gh.installationId();
  sim.faults.set({ primaryRateLimit: { count: 1, resetAfterSeconds: 900, match: '^GET /orgs/acme/actions/runners$' } });
  let passes = 0;
  const loop = startLoop({
    name: 'stale-runners', intervalMs: 60_000, runAtStart: true, logger: { warn: () => undefined }, now: time.now, timers: time,
    run: async () => {
      passes++;
      await gh.listRunners({ kind: 'organization' });
    },
  });
  t.after(() => loop.stop());
  const deadline = Date.now() + 10_000;
  while (loop.status().failures === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(loop.status().lastError?.code, 'FLINT_ERR_GITHUB_RATE_LIMITED');
  const retryAt = gh.blockedUntil();
  assert.ok(retryAt !== undefined);
  assert.equal(loop.status().nextRunAt, retryAt);
  time.advance(60_000);
  loop.poke();
  await sleep(50);
  assert.equal(passes, 1, 'neither the interval nor a poke runs a pass during the block');
  time.advance(retryAt - time.now());
  while (loop.status().runs < 2 && Date.now() < deadline) await sleep(20);
  assert.equal(passes, 2);
  assert.equal(loop.status().failures, 1, 'the pass at retryAt succeeded');
  assert.equal(statuses(sim, 'GET', RUNNERS).length, 2, 'one request per pass, none in between');
});

test('installation tokens are refreshed before they expire: no request ever meets an expired token', async (t) => {
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 4 }, REAL_TIME);
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
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 2 }, { ...REAL_TIME, now: () => frozen });
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
  const { sim, gh } = await setup(t, { tokenTtlSeconds: 2 }, REAL_TIME);
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
  const { sim, gh, log } = await setup(t, { tokenTtlSeconds: 8 }, REAL_TIME);
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
