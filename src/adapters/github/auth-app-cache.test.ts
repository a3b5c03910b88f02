// Evidence for a design decision (see installation-token.ts): the
// installation-token cache of @octokit/auth-app ignores `expires_at`. If a
// future auth-app honours it, this test fails and the decision can be
// revisited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { startSimulator } from '../../../tools/github-sim/index.ts';

test('auth-app hands out an installation token after GitHub has expired it', async (t) => {
  const sim = await startSimulator({ tokenTtlSeconds: 1 });
  t.after(() => sim.close());
  const auth = createAppAuth({
    appId: sim.appId, privateKey: sim.privateKeyPem, installationId: sim.installationId,
    request: new Octokit({ baseUrl: sim.apiUrl }).request,
  });
  const first = await auth({ type: 'installation' });
  await sleep(1500);
  const second = await auth({ type: 'installation' });
  assert.ok(Date.parse(first.expiresAt) < Date.now(), 'the first token has expired');
  assert.equal(second.token, first.token, 'auth-app still returns it from its cache');
  const res = await fetch(`${sim.apiUrl}/orgs/${sim.org}/actions/runners`, { headers: { authorization: `token ${second.token}` } });
  assert.equal(res.status, 401, 'and GitHub refuses it');
});
