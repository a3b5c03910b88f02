import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideJobTransition, JOB_ACTIONS, JOB_TRANSITIONS, outcomeOf } from './jobs.ts';
import type { JobAction, JobRecordState } from './jobs.ts';

const rank: Record<JobAction, number> = { waiting: 0, queued: 1, in_progress: 2, completed: 3 };

/** Applies actions the way the store does: the status moves only on `advance`. */
function replay(actions: readonly JobAction[]): JobRecordState {
  let state: JobRecordState = 'absent';
  for (const a of actions) if (decideJobTransition(state, a) === 'advance') state = a;
  return state;
}

test('the normal life of a job advances at every step', () => {
  let state: JobRecordState = 'absent';
  for (const a of JOB_ACTIONS) {
    assert.equal(decideJobTransition(state, a), 'advance', `${state} → ${a}`);
    state = a;
  }
});

test('completed arrives before queued: the job stays completed', () => {
  assert.equal(decideJobTransition('absent', 'completed'), 'advance');
  assert.equal(decideJobTransition('completed', 'queued'), 'stale');
  assert.equal(replay(['completed', 'queued', 'in_progress']), 'completed');
});

test('a late waiting after queued is stale, a second queued is a repeat', () => {
  assert.equal(decideJobTransition('queued', 'waiting'), 'stale');
  assert.equal(decideJobTransition('queued', 'queued'), 'repeat');
  assert.equal(outcomeOf('advance'), 'accepted');
  assert.equal(outcomeOf('stale'), 'stale');
});

test('the table is total: every state has a decision for every action', () => {
  for (const s of ['absent', ...JOB_ACTIONS] as const) {
    for (const a of JOB_ACTIONS) assert.ok(['advance', 'repeat', 'stale'].includes(JOB_TRANSITIONS[s][a]), `${s} × ${a}`);
  }
});

test('property: in any delivery order, the job ends at the furthest status it reached', () => {
  fc.assert(fc.property(fc.array(fc.constantFrom(...JOB_ACTIONS), { minLength: 1, maxLength: 12 }), (actions) => {
    const furthest = actions.reduce((a, b) => (rank[b] > rank[a] ? b : a));
    assert.equal(replay(actions), furthest);
  }));
});

test('property: a status never moves backwards', () => {
  fc.assert(fc.property(fc.constantFrom(...JOB_ACTIONS), fc.constantFrom(...JOB_ACTIONS), (from, action) => {
    const t = decideJobTransition(from, action);
    if (rank[action] < rank[from]) assert.equal(t, 'stale');
    if (rank[action] === rank[from]) assert.equal(t, 'repeat');
    if (rank[action] > rank[from]) assert.equal(t, 'advance');
  }));
});
