import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { commandFromAnswer, overdueJobs, type HeldJob } from './job-truth.ts';
import { JOB_ACTIONS, type JobFacts } from './jobs.ts';

const t = { queuedAfterMs: 300, inProgressAfterMs: 900, maxPerPass: 10 };
const job = (id: number, status: HeldJob['status'], updatedAt: number): HeldJob => ({ id, status, updatedAt });

test('a queued job silent past its threshold is due; a fresh one, a completed one and a waiting one are not', () => {
  const jobs = [job(1, 'queued', 0), job(2, 'queued', 800), job(3, 'completed', 0), job(4, 'waiting', 0), job(5, 'in_progress', 0), job(6, 'in_progress', 500)];
  assert.deepEqual(overdueJobs(jobs, new Map(), 1000, t).map((j) => j.id), [1, 5]);
});

test('a confirmation counts as news: a job confirmed recently is not asked about again', () => {
  const jobs = [job(1, 'queued', 0)];
  assert.deepEqual(overdueJobs(jobs, new Map([[1, 900]]), 1000, t), []);
  assert.deepEqual(overdueJobs(jobs, new Map([[1, 700]]), 1000, t).map((j) => j.id), [1]);
});

test('the longest silent go first and a pass asks about at most maxPerPass jobs', () => {
  const jobs = Array.from({ length: 30 }, (_, i) => job(i + 1, 'queued', i * 10));
  const due = overdueJobs(jobs, new Map(), 10_000, { ...t, maxPerPass: 3 });
  assert.deepEqual(due.map((j) => j.id), [1, 2, 3]);
});

test('property: every due job is queued or in progress and past its threshold; never more than the cap', () => {
  const statuses = fc.constantFrom(...JOB_ACTIONS);
  fc.assert(fc.property(fc.array(fc.record({ status: statuses, updatedAt: fc.integer({ min: 0, max: 5000 }) })), fc.integer({ min: 0, max: 5 }), (rows, cap) => {
    const jobs = rows.map((r, i) => job(i, r.status, r.updatedAt));
    const due = overdueJobs(jobs, new Map(), 5000, { ...t, maxPerPass: cap });
    assert.ok(due.length <= cap);
    for (const j of due) {
      const limit = j.status === 'queued' ? t.queuedAfterMs : t.inProgressAfterMs;
      assert.ok((j.status === 'queued' || j.status === 'in_progress') && 5000 - j.updatedAt >= limit);
    }
  }));
});

const facts: JobFacts = { id: 1, runId: 2, runAttempt: 1, name: 'build', workflowName: null, headBranch: null, labels: ['x'], repository: 'acme/app', createdAt: null };

test('GitHub\'s answer becomes the command a delivery would have been', () => {
  assert.deepEqual(commandFromAnswer(facts, { status: 'completed', conclusion: 'cancelled', runnerId: null, runnerName: null }),
    { action: 'completed', job: facts, runner: null, conclusion: 'cancelled' });
  assert.deepEqual(commandFromAnswer(facts, { status: 'completed', conclusion: 'startup_failure', runnerId: 3, runnerName: 'r' }),
    { action: 'completed', job: facts, runner: { id: 3, name: 'r' }, conclusion: null }, 'an unknown conclusion still completes the job');
  assert.deepEqual(commandFromAnswer(facts, { status: 'in_progress', conclusion: null, runnerId: 3, runnerName: 'r' }),
    { action: 'in_progress', job: facts, runner: { id: 3, name: 'r' } });
  assert.equal(commandFromAnswer(facts, { status: 'pending', conclusion: null, runnerId: null, runnerName: null }).action, 'queued');
  assert.equal(commandFromAnswer(facts, { status: 'waiting', conclusion: null, runnerId: null, runnerName: null }).action, 'waiting');
});

test('a job GitHub no longer has (404) is completed without a conclusion', () => {
  assert.deepEqual(commandFromAnswer(facts, undefined), { action: 'completed', job: facts, runner: null, conclusion: null });
});
