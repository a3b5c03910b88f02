/**
 * The simulator's faults look like GitHub's to the Octokit plugins Flint
 * uses: plugin-retry retries the 5xx answers, plugin-throttling recognises
 * the primary limit (remaining 0 + reset) and the secondary limit
 * (message + retry-after), and auth-app refreshes an expired installation
 * token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { startSimulator } from './index.ts';

const Client = Octokit.plugin(retry, throttling);

test('Octokit retry and throttling plugins see the simulated 5xx, primary and secondary rate limits as GitHub\'s', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const seen: string[] = [];
  const o = new Client({
    baseUrl: sim.apiUrl, authStrategy: createAppAuth,
    auth: { appId: sim.appId, privateKey: sim.privateKeyPem, installationId: sim.installationId },
    retry: { retryAfterBaseValue: 1 },
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    throttle: {
      retryAfterBaseValue: 1,
      onRateLimit: (after: number, _options: unknown, _o: unknown, retryCount: number) => { seen.push(`primary:${after}`); return retryCount < 1; },
      onSecondaryRateLimit: (after: number, _options: unknown, _o: unknown, retryCount: number) => { seen.push(`secondary:${after}`); return retryCount < 1; },
    },
  });
  sim.faults.set({ serverErrors: { count: 2, status: 502, match: 'runner-groups' } });
  const groups = await o.request('GET /orgs/{org}/actions/runner-groups', { org: sim.org });
  assert.equal(groups.status, 200);
  assert.deepEqual(sim.requests().filter((r) => r.path.endsWith('runner-groups')).map((r) => r.status), [502, 502, 200]);

  sim.faults.set({ primaryRateLimit: { count: 1, status: 403, resetAfterSeconds: 2 }, secondaryRateLimit: { count: 0 } });
  assert.equal((await o.rest.actions.listSelfHostedRunnersForOrg({ org: sim.org })).status, 200);
  sim.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 3 } });
  assert.equal((await o.rest.actions.listSelfHostedRunnersForOrg({ org: sim.org })).status, 200);
  assert.equal(seen.length, 2);
  assert.match(seen[0] ?? '', /^primary:[2-4]$/);
  assert.equal(seen[1], 'secondary:3');
});

test('an expired installation token answers 401 until the client asks auth-app for a fresh one (it caches tokens for 59 minutes whatever expires_at says)', async (t) => {
  // The simulator's clock moves past the token's expiry at once, instead of
  // the test sleeping through a one-second lifetime that the whole-second
  // rounding of expires_at can shorten to a millisecond.
  let ahead = 0;
  const sim = await startSimulator({ tokenTtlSeconds: 60, now: () => Date.now() + ahead });
  t.after(() => sim.close());
  const auth = createAppAuth({ appId: sim.appId, privateKey: sim.privateKeyPem, installationId: sim.installationId, request: new Octokit({ baseUrl: sim.apiUrl }).request });
  const first = await auth({ type: 'installation' });
  const get = (token: string): Promise<Response> => fetch(`${sim.apiUrl}/installation/repositories`, { headers: { authorization: `token ${token}` } });
  assert.equal((await get(first.token)).status, 200);
  ahead = Date.parse(first.expiresAt) - Date.now() + 1000;
  assert.equal((await get(first.token)).status, 401);
  assert.equal((await auth({ type: 'installation' })).token, first.token, 'auth-app hands out the cached, expired token');
  const fresh = await auth({ type: 'installation', refresh: true });
  assert.notEqual(fresh.token, first.token);
  assert.equal((await get(fresh.token)).status, 200);
});
