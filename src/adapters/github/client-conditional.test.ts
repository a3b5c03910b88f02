/**
 * The client's conditional reads against the simulator: ETags remembered per
 * page, a 304 turned into the cached answer at no rate-limit cost.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator } from '../../../tools/github-sim/index.ts';
import { createGitHubClient } from './client.ts';

async function setup(t: TestContext, repos: string[], etagCacheEntries?: number) {
  const sim = await startSimulator({ repos });
  t.after(() => sim.close());
  const gh = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    retryBaseMs: 10,
    pageSize: 2,
    ...(etagCacheEntries === undefined ? {} : { etagCacheEntries }),
  });
  return { sim, gh };
}

test('an unchanged repository is read again with 304s only: the same jobs, nothing charged', async (t) => {
  const { sim, gh } = await setup(t, ['app', 'web']);
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'] });
  const first = await gh.listQueuedJobsIn('acme', 'app');
  assert.deepEqual(first.value.map((j) => j.id), [jobId]);
  assert.equal(first.unchanged, false);
  assert.equal(first.charged, first.requests, 'a cold cache: every request counted');
  assert.equal(first.requests, 3, 'queued runs, in-progress runs, the queued run\'s jobs');

  const before = sim.requests().length;
  const second = await gh.listQueuedJobsIn('acme', 'app');
  assert.deepEqual(second.value.map((j) => j.id), [jobId], 'the cached answer');
  assert.equal(second.unchanged, true);
  assert.equal(second.charged, 0);
  assert.ok(sim.requests().slice(before).every((r) => r.status === 304), 'every request was answered 304');

  const other = await sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
  const third = await gh.listQueuedJobsIn('acme', 'app');
  assert.deepEqual(third.value.map((j) => j.id), [jobId, other.jobId]);
  assert.ok(third.charged > 0 && third.charged < third.requests, 'only the changed pages are counted');
});

test('the repository list is read page by page, conditionally; a gone repository has no jobs', async (t) => {
  const { gh } = await setup(t, ['a', 'b', 'c']);
  const first = await gh.listRepositories();
  assert.deepEqual(first.value.map((r) => r.name).sort(), ['a', 'b', 'c']);
  assert.equal(first.requests, 2, 'two pages of two');
  const second = await gh.listRepositories();
  assert.equal(second.unchanged, true);
  assert.equal(second.charged, 0);
  const gone = await gh.listQueuedJobsIn('acme', 'nope');
  assert.deepEqual(gone.value, []);
});

test('the ETag cache is bounded: an evicted page is read in full again', async (t) => {
  const { gh } = await setup(t, ['a', 'b'], 2);
  await gh.listQueuedJobsIn('acme', 'a');
  await gh.listQueuedJobsIn('acme', 'b');
  const again = await gh.listQueuedJobsIn('acme', 'a');
  assert.equal(again.charged, again.requests, 'a\'s pages were evicted by b\'s');
  const warm = await gh.listQueuedJobsIn('acme', 'a');
  assert.equal(warm.charged, 0);
});
