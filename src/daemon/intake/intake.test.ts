import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryIntakeStore } from '../../adapters/store/memory-intake-store.ts';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import type { PayloadOptions } from '../../../bench/_payload.ts';
import type { IntakeDeps } from './intake.ts';
import { createIntake } from './intake.ts';
import { readDeliveryHeaders } from './parse-delivery.ts';

const SECRET = 'intake-secret-NEW';
const OLD = 'intake-secret-OLD';

function setup(o: Partial<IntakeDeps> = {}) {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const log = (level: string) => (obj: object, msg: string): void => { lines.push({ level, obj, msg }); };
  const accepted: { jobId: number; action: string; definition: string }[] = [];
  const store = createMemoryIntakeStore();
  const intake = createIntake({
    store, runners: [{ name: 'small', labels: ['self-hosted', 'linux', 'x64'] }, { name: 'big', labels: ['self-hosted', 'linux', 'x64', 'big'] }],
    secrets: [SECRET, OLD], clock: () => 1000, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    onAccepted: (j) => accepted.push(j), ...o,
  });
  const send = (p: PayloadOptions, id?: string, secret = SECRET) => {
    const d = signedDelivery(secret, 'workflow_job', workflowJobPayload(p), id);
    return intake.receive(readDeliveryHeaders(d.headers), Buffer.from(d.body));
  };
  return { intake, store, lines, accepted, send };
}

test('a job is attributed to the most specific definition that can serve it, even one listed after a catch-all', async () => {
  const { store, send } = setup({ runners: [
    { name: 'big', labels: ['self-hosted', 'linux', 'x64', 'big'] },
    { name: 'small', labels: ['self-hosted', 'linux', 'x64'] },
  ] });
  await send({ jobId: 1, action: 'queued', labels: ['self-hosted'] });
  await send({ jobId: 2, action: 'queued', labels: ['big'] });
  assert.equal((await store.getJob(1))?.definition, 'small');
  assert.equal((await store.getJob(2))?.definition, 'big');
});

test('onAccepted hears only of jobs that moved: not of duplicates, repeats, stale or ignored deliveries', async () => {
  const { accepted, send } = setup();
  await send({ jobId: 1, action: 'queued' }, 'a');
  await send({ jobId: 1, action: 'queued' }, 'a');
  await send({ jobId: 1, action: 'queued' }, 'b');
  await send({ jobId: 1, action: 'completed' }, 'c');
  await send({ jobId: 1, action: 'in_progress' }, 'd');
  await send({ jobId: 2, action: 'queued', labels: ['windows'] }, 'e');
  assert.deepEqual(accepted, [{ jobId: 1, action: 'queued', definition: 'small' }, { jobId: 1, action: 'completed', definition: 'small' }]);
});

test('onCommitted hears of each committed batch that holds a job of a definition, before the delivery is answered; not of a job no definition serves', async () => {
  const store = createMemoryIntakeStore();
  let release!: () => void; // assigned by the first ingest below
  const held = new Promise<void>((r) => { release = r; });
  let told = 0;
  // A store whose commit is visible at once but durable only later, as SQLite under FULL.
  const slow: typeof store = { ...store, ingest: async (batch, committed) => {
    const outcomes = await store.ingest(batch, committed);
    await held;
    return outcomes;
  } };
  const { send } = setup({ store: slow, onCommitted: () => { told++; } });
  let answered = false;
  const reply = send({ jobId: 7, action: 'queued' }).then((r) => { answered = true; return r; });
  for (let i = 0; i < 5 && told === 0; i++) await new Promise((r) => setImmediate(r));
  assert.equal(told, 1, 'told of the commit');
  assert.equal(answered, false, 'before the answer');
  release();
  assert.equal((await reply).kind, 'recorded');
  await send({ jobId: 8, action: 'queued', labels: ['windows'] });
  await new Promise((r) => setImmediate(r));
  assert.equal(told, 1, 'a job no definition serves is no news for the scheduler');
});

test('a rejected delivery is logged with its code and delivery id, never with a secret or signature', async () => {
  const { lines, send, store } = setup();
  const r = await send({ jobId: 3, action: 'queued' }, 'bad-1', 'wrong-secret');
  assert.equal(r.kind, 'rejected');
  const text = JSON.stringify(lines);
  assert.match(text, /FLINT_ERR_WEBHOOK_BAD_SIGNATURE/);
  assert.match(text, /bad-1/);
  for (const secret of [SECRET, OLD, 'wrong-secret', 'sha256=']) assert.ok(!text.includes(secret), secret);
  assert.equal(await store.countDeliveries(), 0);
});

test('the previous secret still verifies during a rotation', async () => {
  const { send } = setup();
  const r = await send({ jobId: 4, action: 'queued' }, 'old-1', OLD);
  assert.equal(r.kind === 'recorded' && r.outcome, 'accepted');
});

test('a store that fails gives store-failed with FLINT_ERR_STORE_WRITE_FAILED, and the next delivery works again', async () => {
  let fail = true;
  const inner = createMemoryIntakeStore();
  const { send } = setup({ store: { ...inner, ingest: async (b) => { if (fail) throw new Error('I/O error'); return inner.ingest(b); } } });
  const r = await send({ jobId: 5, action: 'queued' }, 'x1');
  assert.equal(r.kind, 'store-failed');
  assert.equal(r.kind === 'store-failed' && r.error.code, 'FLINT_ERR_STORE_WRITE_FAILED');
  fail = false;
  const again = await send({ jobId: 5, action: 'queued' }, 'x1');
  assert.equal(again.kind === 'recorded' && again.outcome, 'accepted', 'the failed delivery was not kept, so its redelivery is new');
});

test('an intake without a webhook secret (every definition in scale-set mode) refuses every delivery', async () => {
  const { send, store } = setup({ secrets: [] });
  const r = await send({ jobId: 6, action: 'queued' }, 'none-1');
  assert.equal(r.kind, 'rejected');
  assert.equal(await store.countDeliveries(), 0);
});

test('a failing onAccepted hook does not turn a stored delivery into a failure', async () => {
  const { send, store } = setup({ onAccepted: () => { throw new Error('scheduler is gone'); } });
  const r = await send({ jobId: 9, action: 'queued' }, 'hook-1');
  assert.equal(r.kind === 'recorded' && r.outcome, 'accepted');
  assert.equal((await store.getJob(9))?.status, 'queued');
});
