import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMissedJobsScan, type ReconcilerDeps } from './reconciler.ts';
import { createMemoryIntakeStore } from '../adapters/store/memory-intake-store.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MINUTE = 60_000;
const runners = [{ name: 'default', labels: ['self-hosted', 'linux'] }];

function rig(repoCount: number, over: Partial<ReconcilerDeps> = {}) {
  const clock = { t: Date.parse('2026-11-25T10:00:00Z'), now() { return this.t; } };
  const repos = Array.from({ length: repoCount }, (_, i) => `r${i}`);
  const github = new MemoryGitHub({ repos });
  github.now = () => clock.now();
  const store = createMemoryIntakeStore();
  let pokes = 0;
  const scan = createMissedJobsScan({ github, store, runners, clock, logger: quiet, onRecovered: () => { pokes += 1; }, ...over });
  return { clock, github, store, scan, pokes: () => pokes };
}

test('a queued job whose webhook never came is recorded once; unservable and known jobs are left alone', async () => {
  const { github, store, scan, pokes } = rig(2);
  const missed = github.queueJob('r0', ['self-hosted', 'Linux']);
  const unservable = github.queueJob('r1', ['ubuntu-latest']);
  assert.deepEqual((await scan.pass()).recovered, [missed]);
  assert.equal((await store.getJob(missed))?.status, 'queued');
  assert.equal((await store.getJob(missed))?.definition, 'default');
  assert.equal(await store.getJob(unservable), undefined);
  assert.deepEqual((await scan.pass()).recovered, [], 'a second pass recovers nothing');
  assert.equal(pokes(), 1);
});

test('repositories whose runs did not change cost nothing: every read is a 304', async () => {
  const { github, scan } = rig(10);
  const first = await scan.pass();
  assert.equal(first.scanned.length, 10);
  assert.equal(first.charged, 1 + 10 * 2, 'the list, then two run listings per repository');
  const second = await scan.pass();
  assert.equal(second.scanned.length, 10, 'idle repositories are still looked at');
  assert.equal(second.charged, 0);
  assert.equal(second.requests, first.requests);
  github.queueJob('r3', ['self-hosted']);
  const third = await scan.pass();
  assert.equal(third.charged, 3, 'only the changed repository is charged: two run listings and its run\'s jobs');
  assert.equal(third.recovered.length, 1);
});

test('1,000 repositories for a simulated hour: the budget holds, and a repository just pushed to is scanned first', async () => {
  const budgetPerHour = 1000;
  const { clock, github, store, scan } = rig(1000, { budgetPerHour });
  const seen = new Set<string>();
  let job = 0;
  for (let minute = 0; minute < 60; minute++) {
    if (minute === 30) {
      // A push queues a job in a repository the round-robin has not reached.
      github.push('r900');
      job = github.queueJob('r900', ['self-hosted']);
    }
    const report = await scan.pass();
    report.scanned.forEach((r) => seen.add(r));
    if (minute === 0) assert.ok(report.scanned.length > 0 && report.scanned.length < 100, 'a first pass spends the burst only');
    if (minute === 30) {
      assert.equal(report.scanned[0], 'acme/r900', 'the active repository comes first');
      assert.deepEqual(report.recovered, [job]);
    }
    clock.t += MINUTE;
  }
  // A cold sweep costs two requests a repository: the bucket allows one hour's budget, give or take one overrun.
  assert.ok(github.charged <= budgetPerHour + 2, `charged ${github.charged} in an hour, budget ${budgetPerHour}`);
  assert.ok(github.charged >= budgetPerHour * 0.9, `the budget is used, not left idle (${github.charged})`);
  assert.equal((await store.getJob(job))?.status, 'queued');
  assert.ok(seen.size > 400 && seen.size < 1000, `about half the repositories in the first hour at two requests each (${seen.size})`);
});

test('every repository is reached eventually, and once the cache is warm a sweep of idle repositories is nearly free', async () => {
  const { clock, github, scan } = rig(1000, { budgetPerHour: 1000 });
  const seen = new Set<string>();
  for (let minute = 0; minute < 3 * 60; minute++) {
    (await scan.pass()).scanned.forEach((r) => seen.add(r));
    clock.t += MINUTE;
  }
  assert.equal(seen.size, 1000, 'round-robin reached every repository within three hours');
  const before = github.charged;
  const sweep = new Set<string>();
  for (let minute = 0; minute < 10; minute++) {
    const report = await scan.pass();
    assert.ok(report.requests <= 300 + 2, 'a pass stays within its request limit, 304s included');
    report.scanned.forEach((r) => sweep.add(r));
    clock.t += MINUTE;
  }
  assert.equal(sweep.size, 1000, 'a warm sweep of 1,000 idle repositories takes minutes');
  assert.equal(github.charged - before, 0);
});

test('a repository with jobs running in Flint\'s store is looked at every pass', async () => {
  const { clock, github, store, scan } = rig(1000, { budgetPerHour: 1000 });
  await scan.pass();
  const id = github.queueJob('r777', ['self-hosted']);
  // The queued delivery came through the webhook: the job is on record, its run may queue more.
  await store.ingest([{
    deliveryId: 'd-1', receivedAt: clock.now(), definition: 'default',
    command: { action: 'queued', job: { id, runId: id * 10, runAttempt: 1, name: 'build', workflowName: null, headBranch: null, labels: ['self-hosted'], repository: 'acme/r777', createdAt: '2026-11-25T10:00:00Z' } },
  }]);
  clock.t += MINUTE;
  assert.equal((await scan.pass()).scanned[0], 'acme/r777');
});
