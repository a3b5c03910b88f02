import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createInstallationTokenSource, type FetchedToken } from './installation-token.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-01-01T12:00:00Z');

/** A fake GitHub token endpoint: token-1, token-2, … each living `lifetimeMs` from the (fake) request time. */
function fakeGitHub(clock: { now: number }, lifetimeMs = 60 * MIN, serverOffsetMs = 0) {
  let n = 0;
  const calls: number[] = [];
  const fetch = async (): Promise<FetchedToken> => {
    n++;
    calls.push(clock.now);
    const serverNow = clock.now + serverOffsetMs;
    return {
      token: `token-${n}`,
      expiresAt: new Date(serverNow + lifetimeMs).toISOString(),
      serverDate: new Date(Math.floor(serverNow / 1000) * 1000).toUTCString(),
    };
  };
  return { fetch, calls };
}

test('a token is reused until five minutes before expiry, then replaced', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now });
  assert.equal(await src.get(), 'token-1');
  clock.now = T0 + 54 * MIN;
  assert.equal(await src.get(), 'token-1', 'still more than 5 minutes left');
  clock.now = T0 + 55 * MIN;
  assert.equal(await src.get(), 'token-2', 'inside the refresh margin');
  assert.equal(gh.calls.length, 2);
});

test('short-lived tokens refresh at half their lifetime, not constantly', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock, 10_000);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now, refreshMarginMs: 5 * MIN });
  assert.equal(await src.get(), 'token-1');
  clock.now = T0 + 3_000;
  assert.equal(await src.get(), 'token-1');
  clock.now = T0 + 5_000;
  assert.equal(await src.get(), 'token-2');
});

test('concurrent callers share one token request', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now });
  const got = await Promise.all(Array.from({ length: 20 }, () => src.get()));
  assert.deepEqual(new Set(got), new Set(['token-1']));
  assert.equal(gh.calls.length, 1);
});

test('a rejected token is replaced; rejecting a token that was already replaced keeps the new one', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock);
  const reasons: string[] = [];
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now, onRefresh: (i) => reasons.push(i.reason) });
  assert.equal(await src.get(), 'token-1');
  src.reject('token-1');
  assert.equal(await src.get(), 'token-2');
  src.reject('token-1'); // a late 401 of a request that still used token-1
  assert.equal(await src.get(), 'token-2');
  assert.deepEqual(reasons, ['none', 'rejected']);
});

test('a host clock 10 minutes fast still uses the token for its real lifetime', async () => {
  // GitHub's clock is 10 minutes behind ours: expires_at looks 50 minutes
  // away to a naive reader. The Date header puts it back at 60.
  const clock = { now: T0 };
  const gh = fakeGitHub(clock, 60 * MIN, -10 * MIN);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now });
  await src.get();
  clock.now = T0 + 50 * MIN;
  assert.equal(await src.get(), 'token-1', 'a naive reader would have refreshed at 45 minutes');
  clock.now = T0 + 56 * MIN;
  assert.equal(await src.get(), 'token-2');
});

test('a host clock 10 minutes slow refreshes before GitHub expires the token', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock, 60 * MIN, 10 * MIN);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now });
  await src.get();
  clock.now = T0 + 56 * MIN; // a naive reader would keep it until 65 minutes, past the real expiry
  assert.equal(await src.get(), 'token-2');
});

test('a failed token request is not cached; the next call asks again', async () => {
  const clock = { now: T0 };
  let fail = true;
  const src = createInstallationTokenSource({
    now: () => clock.now,
    fetch: async () => {
      if (fail) throw new Error('GitHub is down');
      return { token: 'token-ok', expiresAt: new Date(clock.now + 60 * MIN).toISOString() };
    },
  });
  await assert.rejects(src.get(), /GitHub is down/);
  fail = false;
  assert.equal(await src.get(), 'token-ok');
});

test('clear forgets the token', async () => {
  const clock = { now: T0 };
  const gh = fakeGitHub(clock);
  const src = createInstallationTokenSource({ fetch: gh.fetch, now: () => clock.now });
  await src.get();
  src.clear();
  assert.equal(await src.get(), 'token-2');
});

test('GitHub failing at refresh time: the still-valid token keeps working until it expires', async () => {
  const clock = { now: T0 };
  let down = false;
  let n = 0;
  const stale: number[] = [];
  const src = createInstallationTokenSource({
    now: () => clock.now,
    onStale: (i) => stale.push(i.validForMs),
    fetch: async () => {
      if (down) throw new Error('502 Server Error');
      n++;
      return { token: `token-${n}`, expiresAt: new Date(clock.now + 60 * MIN).toISOString() };
    },
  });
  assert.equal(await src.get(), 'token-1');
  down = true;
  clock.now = T0 + 56 * MIN;
  assert.equal(await src.get(), 'token-1', 'inside the margin, the old token still works');
  assert.deepEqual(stale, [4 * MIN]);
  clock.now = T0 + 60 * MIN;
  await assert.rejects(src.get(), /502/, 'once expired, the failure surfaces');
  down = false;
  assert.equal(await src.get(), 'token-2');
});

test('a token GitHub rejected is never reused, even when the refresh fails', async () => {
  const clock = { now: T0 };
  let down = false;
  const src = createInstallationTokenSource({
    now: () => clock.now,
    fetch: async () => {
      if (down) throw new Error('GitHub is down');
      return { token: 'token-1', expiresAt: new Date(clock.now + 60 * MIN).toISOString() };
    },
  });
  await src.get();
  down = true;
  src.reject('token-1');
  await assert.rejects(src.get(), /GitHub is down/);
});

test('a refresh failure that is not transient surfaces at once, even with a valid token cached', async () => {
  const clock = { now: T0 };
  let uninstalled = false;
  const src = createInstallationTokenSource({
    now: () => clock.now,
    transient: (err) => !(err instanceof Error && /not installed/.test(err.message)),
    fetch: async () => {
      if (uninstalled) throw new Error('App not installed');
      return { token: 'token-1', expiresAt: new Date(clock.now + 60 * MIN).toISOString() };
    },
  });
  await src.get();
  uninstalled = true;
  clock.now = T0 + 56 * MIN;
  await assert.rejects(src.get(), /not installed/);
});
