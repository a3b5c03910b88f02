import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDELIVER_DEFAULTS, REDELIVER_MARK, redeliverFailed, startRedeliver, type RedeliverDeps } from './redeliver.ts';
import { queuedCommand } from './reconciler.ts';
import { createMemoryIntakeStore } from '../adapters/store/memory-intake-store.ts';
import { createMemoryTruthStore } from '../adapters/store/memory-truth-store.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { FlintError } from '../core/errors/index.ts';
import type { IntakeStore, TruthStore } from './ports/store.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MIN = 60_000;
const T0 = Date.parse('2026-11-25T10:00:00Z');

function rig(): { gh: MemoryGitHub; store: IntakeStore; truth: TruthStore; clock: { t: number; now(): number }; deps: RedeliverDeps } {
  const clock = { t: T0, now() { return this.t; } };
  const gh = new MemoryGitHub();
  gh.now = () => clock.t;
  const store = createMemoryIntakeStore();
  const truth = createMemoryTruthStore();
  return { gh, store, truth, clock, deps: { github: gh, store, truth, settings: REDELIVER_DEFAULTS, clock, logger: quiet } };
}
const redeliveries = (gh: MemoryGitHub): string[] => gh.calls.filter((c) => c.startsWith('redeliver'));

test('a failed workflow_job delivery is redelivered once; other events and stored guids are left alone', async () => {
  const { gh, store, clock, deps } = rig();
  const lost = gh.failDelivery('g-lost', 0);
  gh.failDelivery('g-ping', 500, 'ping', null);
  gh.failDelivery('g-stored', 0); // GitHub timed out, but the delivery reached Flint
  const job = { id: 1, runId: 1, owner: 'acme', repo: 'app', name: 'b', status: 'queued' as const, conclusion: null, labels: ['x'], runnerId: null, runnerName: null, runnerGroupId: null, createdAt: '', startedAt: null, completedAt: null, htmlUrl: null };
  await store.ingest([{ deliveryId: 'g-stored', receivedAt: clock.t, command: queuedCommand(job), definition: 'default' }]);
  clock.t += MIN;
  const pass = await redeliverFailed(deps);
  assert.deepEqual(pass, { redelivered: [lost], alreadyStored: 1, deferred: 0 });
  assert.deepEqual(redeliveries(gh), [`redeliver ${lost}`]);
  clock.t += 2 * MIN;
  assert.deepEqual((await redeliverFailed(deps)).redelivered, [], 'the redelivery succeeded: nothing more to ask');
});

test('the mark is kept in the store: a restarted loop does not look further back than its last pass (minus the overlap)', async () => {
  const { gh, truth, clock, deps } = rig();
  gh.failDelivery('g-old', 0);
  await truth.setMark(REDELIVER_MARK, T0 + 10 * MIN);
  clock.t = T0 + 11 * MIN;
  assert.deepEqual((await redeliverFailed(deps)).redelivered, [], 'older than mark - overlap');
  assert.equal(await truth.getMark(REDELIVER_MARK), T0 + 11 * MIN);
  gh.failDelivery('g-new', 502);
  clock.t = T0 + 13 * MIN;
  assert.equal((await redeliverFailed(deps)).redelivered.length, 1);
});

test('the first pass looks back at most maxAgeMs', async () => {
  const { gh, clock, deps } = rig();
  gh.failDelivery('g-ancient', 0);
  clock.t = T0 + REDELIVER_DEFAULTS.maxAgeMs + MIN;
  gh.failDelivery('g-recent', 0);
  const pass = await redeliverFailed(deps);
  assert.equal(pass.redelivered.length, 1);
  assert.deepEqual(redeliveries(gh), [`redeliver ${pass.redelivered[0]}`]);
});

test('at most maxPerPass per pass; the rest are redelivered by the next pass, oldest first', async () => {
  const { gh, clock, deps } = rig();
  const ids = Array.from({ length: 5 }, (_, i) => gh.failDelivery(`g-${i}`, 0));
  const capped = { ...deps, settings: { ...REDELIVER_DEFAULTS, maxPerPass: 2 } };
  clock.t += 30 * MIN; // later than the overlap: only the mark keeps the deferred ones in view
  assert.deepEqual(await redeliverFailed(capped), { redelivered: ids.slice(0, 2), alreadyStored: 0, deferred: 3 });
  clock.t += 30 * MIN;
  assert.deepEqual((await redeliverFailed(capped)).redelivered, ids.slice(2, 4));
  clock.t += 30 * MIN;
  assert.deepEqual((await redeliverFailed(capped)).redelivered, ids.slice(4));
});

test('an event whose redeliveries keep failing is asked for maxAttempts times, then given up', async () => {
  const { gh, clock, deps } = rig();
  // A receiver that stays down: every redelivery GitHub makes fails too.
  gh.redeliver = async (id: number) => {
    gh.calls.push(`redeliver ${id}`);
    gh.failDelivery('g-down', 0);
  };
  gh.failDelivery('g-down', 0);
  for (let i = 0; i < 6; i++) {
    clock.t += 2 * MIN;
    await redeliverFailed(deps);
  }
  assert.equal(redeliveries(gh).length, REDELIVER_DEFAULTS.maxAttempts);
});

test('GitHub unavailable ends the pass and keeps the mark; a refusal of one delivery does not', async () => {
  const { gh, truth, clock, deps } = rig();
  gh.failDelivery('g-a', 0);
  gh.failDelivery('g-b', 0);
  clock.t += MIN;
  const down = { ...deps, github: { listFailedDeliveries: gh.listFailedDeliveries.bind(gh), redeliver: async () => { throw new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', 'GitHub answered 502'); } } };
  await assert.rejects(redeliverFailed(down), { code: 'FLINT_ERR_GITHUB_UNAVAILABLE' });
  assert.equal(await truth.getMark(REDELIVER_MARK), undefined);
  let asked = 0;
  const refusing = { ...deps, github: { listFailedDeliveries: gh.listFailedDeliveries.bind(gh), redeliver: async () => { asked++; throw new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', 'GitHub answered 422'); } } };
  assert.deepEqual((await redeliverFailed(refusing)).redelivered, []);
  assert.equal(asked, 2, 'one refusal does not stop the others');
  assert.equal((await truth.getRedelivery('g-a'))?.attempts, 1, 'a refusal counts as an attempt');
});

test('the loop is named redeliver, runs at start and stops cleanly', async () => {
  const { deps } = rig();
  const loop = startRedeliver(deps);
  assert.equal(loop.status().name, 'redeliver');
  await loop.stop();
  assert.equal(loop.status().runs, 1);
});
