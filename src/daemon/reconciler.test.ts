import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcileQueuedJobs } from './reconciler.ts';
import { createMemoryIntakeStore } from '../adapters/store/memory-intake-store.ts';
import type { WorkflowJob } from './ports/github.ts';

const ghJob = (id: number, labels: string[]): WorkflowJob => ({
  id, runId: id * 10, owner: 'acme', repo: 'app', name: 'build', status: 'queued', conclusion: null, labels,
  runnerId: null, runnerName: null, runnerGroupId: null, createdAt: '2026-11-25T10:00:00Z', startedAt: null, completedAt: null, htmlUrl: null,
});
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('a queued job whose webhook never came is recorded once; unservable and known jobs are left alone', async () => {
  const store = createMemoryIntakeStore();
  let pokes = 0;
  const deps = {
    github: { listQueuedJobs: async () => [ghJob(1, ['self-hosted', 'Linux']), ghJob(2, ['ubuntu-latest'])] },
    store,
    runners: [{ name: 'default', labels: ['self-hosted', 'linux'] }],
    clock: { now: () => 1000 },
    logger: quiet,
    onRecovered: () => { pokes += 1; },
  };
  assert.deepEqual(await reconcileQueuedJobs(deps), [1]);
  assert.equal((await store.getJob(1))?.status, 'queued');
  assert.equal((await store.getJob(1))?.definition, 'default');
  assert.equal(await store.getJob(2), undefined);
  assert.deepEqual(await reconcileQueuedJobs(deps), [], 'a second pass recovers nothing');
  assert.equal(pokes, 1);
});
