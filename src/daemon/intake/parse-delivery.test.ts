import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFlintError } from '../../core/errors/index.ts';
import { workflowJobPayload } from '../../../bench/_payload.ts';
import { parseDelivery, readDeliveryHeaders } from './parse-delivery.ts';
import type { DeliveryHeaders } from './parse-delivery.ts';

const base = { 'x-github-event': 'workflow_job', 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958', 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=00' };
const headers: DeliveryHeaders = { event: 'workflow_job', deliveryId: 'd-1', signature: undefined };
const body = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isFlintError(err) ? err.code : 'not a FlintError';
  }
}

test('GitHub headers are read; the content type may carry a charset', () => {
  assert.deepEqual(readDeliveryHeaders(base), { event: 'workflow_job', deliveryId: base['x-github-delivery'], signature: 'sha256=00' });
  assert.equal(readDeliveryHeaders({ ...base, 'content-type': 'Application/JSON; charset=utf-8' }).event, 'workflow_job');
});

test('missing or junk GitHub headers are FLINT_ERR_WEBHOOK_MISSING_HEADER', () => {
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-event': undefined })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': undefined })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': 'a b' })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': 'x'.repeat(129) })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-event': 'Workflow Job' })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
});

test('form-encoded, text and missing content types are FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', () => {
  for (const ct of ['application/x-www-form-urlencoded', 'text/plain', 'application/jsonp', undefined]) {
    assert.equal(code(() => readDeliveryHeaders({ ...base, 'content-type': ct })), 'FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', String(ct));
  }
});

test('each workflow_job action becomes its command, with the runner once GitHub names one', () => {
  const queued = parseDelivery(headers, body(workflowJobPayload({ jobId: 5, action: 'queued', labels: ['self-hosted', 'GPU'] })));
  assert.equal(queued.kind, 'workflow_job');
  if (queued.kind !== 'workflow_job') return;
  assert.equal(queued.command.action, 'queued');
  assert.deepEqual(queued.command.job.labels, ['self-hosted', 'GPU']);
  assert.equal(queued.command.job.repository, 'acme/widgets');
  const waiting = parseDelivery(headers, body(workflowJobPayload({ jobId: 5, action: 'waiting' })));
  assert.equal(waiting.kind === 'workflow_job' && waiting.command.action, 'waiting');
  const running = parseDelivery(headers, body(workflowJobPayload({ jobId: 5, action: 'in_progress', runnerName: 'flint-a-00001' })));
  assert.ok(running.kind === 'workflow_job' && running.command.action === 'in_progress');
  assert.deepEqual(running.command.runner, { id: 42, name: 'flint-a-00001' });
  const done = parseDelivery(headers, body(workflowJobPayload({ jobId: 5, action: 'completed' })));
  assert.ok(done.kind === 'workflow_job' && done.command.action === 'completed');
  assert.equal(done.command.conclusion, 'success');
});

test('a completed job cancelled before it ran has no runner', () => {
  const p = workflowJobPayload({ jobId: 6, action: 'completed' });
  const cancelled = { ...p, workflow_job: { ...p.workflow_job, conclusion: 'cancelled', runner_id: null, runner_name: null, workflow_name: undefined } };
  const r = parseDelivery(headers, body(cancelled));
  assert.ok(r.kind === 'workflow_job' && r.command.action === 'completed');
  assert.equal(r.command.runner, null);
  assert.equal(r.command.conclusion, 'cancelled');
  assert.equal(r.command.job.workflowName, null, 'older servers omit workflow_name; it reads as null');
});

test('extra fields anywhere are fine; wrong types of used fields are FLINT_ERR_WEBHOOK_INVALID_PAYLOAD', () => {
  const p = workflowJobPayload({ jobId: 7, action: 'queued' });
  assert.equal(parseDelivery(headers, body({ ...p, brand_new: { x: 1 }, workflow_job: { ...p.workflow_job, new_field: true } })).kind, 'workflow_job');
  const bad: unknown[] = [
    { ...p, workflow_job: { ...p.workflow_job, id: -1 } },
    { ...p, workflow_job: { ...p.workflow_job, labels: 'self-hosted' } },
    { ...p, workflow_job: { ...p.workflow_job, labels: [1] } },
    { ...p, repository: { full_name: 'no-slash' } },
    { ...p, workflow_job: undefined },
    { ...p, action: 42 },
  ];
  for (const b of bad) assert.equal(code(() => parseDelivery(headers, body(b))), 'FLINT_ERR_WEBHOOK_INVALID_PAYLOAD', JSON.stringify(b).slice(0, 80));
});

test('ping, other events and unknown workflow_job actions are told apart from jobs', () => {
  const ping = parseDelivery({ ...headers, event: 'ping' }, body({ zen: 'Design for failure.', hook_id: 3 }));
  assert.deepEqual(ping, { kind: 'ping', deliveryId: 'd-1', zen: 'Design for failure.', hookId: 3 });
  assert.deepEqual(parseDelivery({ ...headers, event: 'push' }, body({ ref: 'x' })), { kind: 'other', deliveryId: 'd-1', event: 'push', action: undefined });
  assert.equal(parseDelivery(headers, body({ action: 'requeued' })).kind, 'other');
});

test('bodies that are not JSON objects are FLINT_ERR_WEBHOOK_MALFORMED_JSON', () => {
  for (const raw of ['', '{', 'null', '"text"', '[]', '\u00ff']) {
    assert.equal(code(() => parseDelivery(headers, Buffer.from(raw))), 'FLINT_ERR_WEBHOOK_MALFORMED_JSON', JSON.stringify(raw));
  }
});
