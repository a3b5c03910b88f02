import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confirmOverdueJobs, JOB_TRUTH_DEFAULTS, startJobTruth, type JobTruthDeps } from './job-truth.ts';
import { queuedCommand } from './reconciler.ts';
import { createMemoryIntakeStore } from '../adapters/store/memory-intake-store.ts';
import { createMemoryTruthStore } from '../adapters/store/memory-truth-store.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import type { IntakeStore } from './ports/store.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MIN = 60_000;

async function rig(): Promise<{ gh: MemoryGitHub; store: IntakeStore; clock: { t: number; now(): number }; pokes: () => number; deps: JobTruthDeps }> {
  const gh = new MemoryGitHub();
  const store = createMemoryIntakeStore();
  const clock = { t: 0, now() { return this.t; } };
  let pokes = 0;
  const deps: JobTruthDeps = {
    github: gh, store, truth: createMemoryTruthStore(), thresholds: JOB_TRUTH_DEFAULTS, clock, logger: quiet,
    onChanged: () => { pokes += 1; },
  };
  return { gh, store, clock, pokes: () => pokes, deps };
}

/** Records the job's `queued` delivery as the intake would. */
async function heldQueued(gh: MemoryGitHub, store: IntakeStore, at: number): Promise<number> {
  const id = gh.queueJob('app', ['self-hosted', 'linux']);
  const job = await gh.getJob('acme', 'app', id);
  assert.ok(job);
  gh.calls.length = 0; // the staging read above is not the loop's
  await store.ingest([{ deliveryId: `d-${id}`, receivedAt: at, command: queuedCommand(job), definition: 'default' }]);
  return id;
}

test('a job cancelled while queued, whose completed delivery was lost, releases its demand once overdue', async () => {
  const { gh, store, clock, pokes, deps } = await rig();
  const id = await heldQueued(gh, store, 0);
  gh.completeJob(id, 'cancelled');
  clock.t = 4 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [], 'not overdue yet: GitHub is not asked');
  assert.equal(gh.calls.filter((c) => c.startsWith('getJob')).length, 0);
  clock.t = 5 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [{ jobId: id, from: 'queued', to: 'completed' }]);
  const stored = await store.getJob(id);
  assert.equal(stored?.status, 'completed');
  assert.equal(stored?.conclusion, 'cancelled');
  assert.deepEqual(await store.listJobs({ status: 'queued' }), [], 'no demand left');
  assert.equal(pokes(), 1);
});

test('lost in_progress and completed deliveries: the job ends completed with its runner and conclusion', async () => {
  const { gh, store, clock, deps } = await rig();
  const id = await heldQueued(gh, store, 0);
  const runner = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-r1', runnerGroupId: 1, labels: ['self-hosted', 'linux'] });
  gh.takeJob(runner.runnerId, id);
  clock.t = 6 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [{ jobId: id, from: 'queued', to: 'in_progress' }]);
  assert.equal((await store.getJob(id))?.runnerName, 'flint-r1');
  gh.completeJob(id, 'success');
  clock.t = 6 * MIN + 14 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [], 'in progress: asked again only after inProgressAfterMs');
  clock.t = 6 * MIN + 15 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [{ jobId: id, from: 'in_progress', to: 'completed' }]);
  assert.equal((await store.getJob(id))?.conclusion, 'success');
  assert.equal((await store.getDelivery(`job-truth:${id}:completed`))?.outcome, 'accepted', 'recorded like a delivery');
});

test('a job still queued on GitHub is left as it is and asked about again only after another threshold', async () => {
  const { gh, store, clock, pokes, deps } = await rig();
  const id = await heldQueued(gh, store, 0);
  clock.t = 5 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), []);
  clock.t = 9 * MIN;
  await confirmOverdueJobs(deps);
  assert.equal(gh.calls.filter((c) => c === `getJob ${id}`).length, 1, 'the confirmation at 5 min counts as news');
  clock.t = 10 * MIN;
  await confirmOverdueJobs(deps);
  assert.equal(gh.calls.filter((c) => c === `getJob ${id}`).length, 2);
  assert.equal((await store.getJob(id))?.status, 'queued');
  assert.equal(await store.countDeliveries(), 1, 'a confirmation that changes nothing records nothing');
  assert.equal(pokes(), 0);
});

test('a job GitHub no longer has (404: job or repository gone) releases its demand', async () => {
  const { gh, store, clock, deps } = await rig();
  const id = await heldQueued(gh, store, 0);
  gh.removeJob(id);
  clock.t = 5 * MIN;
  assert.deepEqual(await confirmOverdueJobs(deps), [{ jobId: id, from: 'queued', to: 'completed' }]);
  assert.equal((await store.getJob(id))?.conclusion, null);
  assert.ok(await store.getDelivery(`job-truth:${id}:gone`));
});

test('a pass asks about at most maxPerPass jobs; the others are asked in later passes', async () => {
  const { gh, store, clock, deps } = await rig();
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await heldQueued(gh, store, i));
  for (const id of ids) gh.completeJob(id, 'cancelled');
  clock.t = 10 * MIN;
  const capped = { ...deps, thresholds: { ...JOB_TRUTH_DEFAULTS, maxPerPass: 2 } };
  assert.equal((await confirmOverdueJobs(capped)).length, 2);
  assert.equal(gh.calls.filter((c) => c.startsWith('getJob')).length, 2);
  assert.equal((await confirmOverdueJobs(capped)).length, 2);
  assert.equal((await confirmOverdueJobs(capped)).length, 1);
  assert.deepEqual(await store.listJobs({ status: 'queued' }), []);
});

test('GitHub failing ends the pass after one request; the next pass tries again', async () => {
  const { gh, store, clock, deps } = await rig();
  await heldQueued(gh, store, 0);
  await heldQueued(gh, store, 1);
  clock.t = 10 * MIN;
  const failing = new MemoryGitHub({ installed: false });
  await assert.rejects(confirmOverdueJobs({ ...deps, github: failing }), { code: 'FLINT_ERR_GITHUB_APP_NOT_INSTALLED' });
  assert.equal(failing.calls.length, 1);
  assert.equal((await confirmOverdueJobs(deps)).length, 0);
  assert.equal(gh.calls.filter((c) => c.startsWith('getJob')).length, 2, 'nothing was marked confirmed by the failed pass');
});

test('the loop is named job-truth, runs on its interval with the injected clock, and stops cleanly', async () => {
  const { deps } = await rig();
  const loop = startJobTruth(deps, 1000);
  assert.equal(loop.status().name, 'job-truth');
  assert.equal(loop.status().nextRunAt, 1000);
  await loop.stop();
  assert.equal(loop.status().nextRunAt, undefined);
});
