// Pagination at GitHub's real page size (100) over many objects. Slow
// because the simulator makes an RSA key for every JIT runner it registers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, signJwt, type Simulator } from '../../../tools/github-sim/index.ts';
import { createGitHubClient } from './client.ts';

async function seedRunners(sim: Simulator, n: number): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = signJwt({ iat: now - 30, exp: now + 500, iss: sim.appId }, sim.privateKeyPem);
  const res = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
  assert.equal(res.status, 201);
  const { token } = await res.json() as { token: string }; // shape checked by the simulator's contract test
  for (let i = 0; i < n; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, n - i) }, async (_, k) => {
      const r = await fetch(`${sim.apiUrl}/orgs/${sim.org}/actions/runners/generate-jitconfig`, {
        method: 'POST',
        headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `seed-${i + k}`, runner_group_id: 1, labels: ['seed'] }),
      });
      assert.equal(r.status, 201);
    }));
  }
}

test('250 organization runners come back complete from three pages of 100', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  await seedRunners(sim, 250);
  const gh = createGitHubClient({ github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl } });
  const runners = await gh.listRunners({ kind: 'organization' });
  assert.equal(runners.length, 250);
  assert.equal(new Set(runners.map((r) => r.name)).size, 250);
  const pages = sim.requests().filter((r) => r.method === 'GET' && r.path === '/orgs/acme/actions/runners');
  assert.deepEqual(pages.map((p) => new URLSearchParams(p.query).get('page') ?? '1'), ['1', '2', '3']);
  assert.ok(pages.every((p) => new URLSearchParams(p.query).get('per_page') === '100'));
});

test('250 queued jobs spread over 25 repositories are all found', async (t) => {
  const repos = Array.from({ length: 25 }, (_, i) => `svc-${i}`);
  const sim = await startSimulator({ repos });
  t.after(() => sim.close());
  const want = new Set<number>();
  for (let i = 0; i < 250; i++) want.add((await sim.queueJob({ repo: repos[i % repos.length] ?? 'svc-0', labels: ['flint'] })).jobId);
  const gh = createGitHubClient({ github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl } });
  const started = Date.now();
  const jobs = await gh.listQueuedJobs();
  const took = Date.now() - started;
  assert.deepEqual(new Set(jobs.map((j) => j.id)), want);
  // 1 repository page + 25 × 2 run listings + 250 job listings.
  assert.equal(sim.requests().filter((r) => r.method === 'GET' && !r.path.startsWith('/app') && !r.path.endsWith('/installation')).length, 1 + 50 + 250);
  t.diagnostic(`scanned 25 repositories, 250 runs in ${took} ms`);
});
