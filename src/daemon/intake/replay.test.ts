import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryIntakeStore } from '../../adapters/store/memory-intake-store.ts';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import type { IntakeStore } from '../ports/store.ts';
import { createIntake } from './intake.ts';
import { readDeliveryHeaders } from './parse-delivery.ts';
import { signatureHeader } from './verify-signature.ts';
import { replayUnparsable } from './replay.ts';

const SECRET = 'replay-secret';
const RUNNERS = [{ name: 'default', labels: ['self-hosted', 'linux', 'x64'] }];
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function setup(store: IntakeStore = createMemoryIntakeStore()) {
  let now = 5_000;
  const clock = (): number => ++now;
  const intake = createIntake({ store, runners: RUNNERS, secrets: [SECRET], clock, logger: quiet });
  // A genuine delivery (signed over exactly these bytes) whose content Flint may not be able to parse.
  const receive = (event: string, body: string, id: string) => {
    const d = signedDelivery(SECRET, event, {}, id);
    return intake.receive(readDeliveryHeaders({ ...d.headers, 'x-hub-signature-256': signatureHeader(SECRET, body) }), Buffer.from(body));
  };
  return { store, intake, clock, receive };
}

/** A queued payload whose labels are a string: what a future GitHub (or a bug in Flint's parser) might make unparsable. */
function brokenQueued(jobId: number): string {
  const p = workflowJobPayload({ jobId, action: 'queued' });
  return JSON.stringify({ ...p, workflow_job: { ...p.workflow_job, labels: 'self-hosted' } });
}

test('an unparsable workflow_job is kept and changes no job; a replay after the fix records it under its own delivery id and receipt time', async () => {
  const { store, receive, clock } = setup();
  const r = await receive('workflow_job', brokenQueued(31), 'd-31');
  assert.equal(r.kind, 'kept-unparsable');
  assert.equal(r.kind === 'kept-unparsable' && r.error.code, 'FLINT_ERR_WEBHOOK_INVALID_PAYLOAD');
  assert.equal(await store.getJob(31), undefined);
  assert.equal(await store.countDeliveries(), 0);
  const [kept] = await store.listUnparsable();
  assert.ok(kept);

  // "The fix": here the stored body is repaired in place of a new parser, so the same replay path runs.
  const fixedBody = Buffer.from(JSON.stringify(workflowJobPayload({ jobId: 31, action: 'queued' })));
  const fixedStore: IntakeStore = {
    ...store,
    listUnparsable: async (f) => (await store.listUnparsable(f)).map((u) => ({ ...u, body: fixedBody })),
  };
  const results = await replayUnparsable({ store: fixedStore, runners: RUNNERS, clock });
  assert.deepEqual(results, [{ deliveryId: 'd-31', result: 'recorded', jobId: 31, outcome: 'accepted' }]);
  const job = await store.getJob(31);
  assert.equal(job?.status, 'queued');
  assert.equal(job?.definition, 'default');
  assert.equal(job?.firstSeenAt, kept.receivedAt, 'the job was first seen when GitHub delivered it, not when it was replayed');
  assert.equal((await store.getDelivery('d-31'))?.outcome, 'accepted');
  const [after] = await store.listUnparsable();
  assert.equal(after?.state, 'replayed');
  assert.equal(after?.replayOutcome, 'accepted');
  assert.deepEqual(await replayUnparsable({ store: fixedStore, runners: RUNNERS, clock }), [], 'nothing is left to replay');
});

test('a replay that still cannot parse keeps the delivery unparsable with the new error and changes nothing', async () => {
  const { store, receive, clock } = setup();
  await receive('workflow_job', '{"action":', 'd-32');
  const results = await replayUnparsable({ store, runners: RUNNERS, clock });
  assert.equal(results.length, 1);
  assert.equal(results[0]?.result, 'still-unparsable');
  const [u] = await store.listUnparsable({ state: 'unparsable' });
  assert.equal(u?.error.code, 'FLINT_ERR_WEBHOOK_MALFORMED_JSON');
  assert.notEqual(u?.replayedAt, null);
  assert.deepEqual(await store.listJobs(), []);
});

test('replaying is safe to repeat: a delivery recorded before a crash is a duplicate and only marked replayed', async () => {
  const { store, receive, clock } = setup();
  await receive('workflow_job', brokenQueued(33), 'd-33');
  const good = JSON.stringify(workflowJobPayload({ jobId: 33, action: 'queued' }));
  // GitHub redelivered it after Flint was fixed, before anyone replayed the kept copy.
  const r = await receive('workflow_job', good, 'd-33');
  assert.equal(r.kind === 'recorded' && r.outcome, 'accepted');
  const fixedStore: IntakeStore = { ...store, listUnparsable: async (f) => (await store.listUnparsable(f)).map((u) => ({ ...u, body: Buffer.from(good) })) };
  assert.deepEqual(await replayUnparsable({ store: fixedStore, runners: RUNNERS, clock }),
    [{ deliveryId: 'd-33', result: 'recorded', jobId: 33, outcome: 'duplicate' }]);
  assert.equal((await store.listUnparsable())[0]?.state, 'replayed');
});

test('a kept delivery of an event Flint does not act on is marked replayed as not-handled; only the named ids are replayed when asked', async () => {
  const { store, receive, clock } = setup();
  await receive('security_and_analysis', '[]', 'd-34');
  await receive('workflow_job', '"text"', 'd-35');
  const fixed: IntakeStore = {
    ...store,
    listUnparsable: async (f) => (await store.listUnparsable(f)).map((u) => ({ ...u, body: Buffer.from('{"changes":{}}') })),
  };
  assert.deepEqual(await replayUnparsable({ store: fixed, runners: RUNNERS, clock }, { ids: ['d-34'] }), [{ deliveryId: 'd-34', result: 'not-handled' }]);
  assert.deepEqual((await store.listUnparsable({ state: 'unparsable' })).map((u) => u.deliveryId), ['d-35']);
});

test('when the store cannot keep an unparsable delivery, the answer is store-failed and GitHub may redeliver it', async () => {
  const real = createMemoryIntakeStore();
  const failing: IntakeStore = { ...real, keepUnparsable: async () => { throw new Error('disk full'); } };
  const { receive } = setup(failing);
  const r = await receive('workflow_job', brokenQueued(36), 'd-36');
  assert.equal(r.kind, 'store-failed');
  assert.equal(r.kind === 'store-failed' && r.error.code, 'FLINT_ERR_STORE_WRITE_FAILED');
  assert.deepEqual(await real.listUnparsable(), []);
});
