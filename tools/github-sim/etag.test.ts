import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, signJwt } from './index.ts';

test('a second identical list request with If-None-Match is answered 304, with no body, and costs no rate limit', async (t) => {
  const sim = await startSimulator({ repos: ['app', 'web'] });
  t.after(() => sim.close());
  const now = Math.floor(Date.now() / 1000);
  const jwt = signJwt({ iat: now - 30, exp: now + 500, iss: sim.appId }, sim.privateKeyPem);
  const tok = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
  const { token } = await tok.json() as { token: string }; // shape checked by the simulator's contract test
  const get = (path: string, etag?: string) => fetch(`${sim.apiUrl}${path}`, {
    headers: { authorization: `token ${token}`, ...(etag === undefined ? {} : { 'if-none-match': etag }) },
  });
  const path = '/repos/acme/app/actions/runs?status=queued&per_page=100';

  const first = await get(path);
  assert.equal(first.status, 200);
  await first.text();
  const etag = first.headers.get('etag');
  assert.match(etag ?? '', /^W\/"[0-9a-f]+"$/);
  const remaining = Number(first.headers.get('x-ratelimit-remaining'));

  const second = await get(path, etag ?? '');
  assert.equal(second.status, 304);
  assert.equal(await second.text(), '');
  assert.equal(second.headers.get('etag'), etag);
  assert.equal(Number(second.headers.get('x-ratelimit-remaining')), remaining, 'a 304 is not counted');

  // A change to what the list shows changes its ETag: the next conditional request gets the new list, and is counted.
  await sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
  const third = await get(path, etag ?? '');
  assert.equal(third.status, 200);
  assert.equal(((await third.json()) as { total_count: number }).total_count, 1);
  assert.notEqual(third.headers.get('etag'), etag);
  assert.equal(Number(third.headers.get('x-ratelimit-remaining')), remaining - 1);

  const stale = await get('/repos/acme/web/actions/runs?status=queued&per_page=100', 'W/"not-the-current-one"');
  assert.equal(stale.status, 200, 'an ETag that does not match gets the full answer');
  await stale.text();
});
