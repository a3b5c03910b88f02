import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFlintError } from '../../core/errors/index.ts';
import { workflowJobPayload } from '../../../bench/_payload.ts';
import { keptHeaders, parseDelivery, readDeliveryHeaders } from './parse-delivery.ts';
import { ACTIONS, GHES_HEADERS, SCHEMA_FILES, full, minimal, olderGhes, validator } from '../../../test/fixtures/workflow-job-shapes.ts';
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
  assert.deepEqual(readDeliveryHeaders(base), { event: 'workflow_job', deliveryId: base['x-github-delivery'], signature: 'sha256=00', encoding: 'json', raw: base });
  assert.equal(readDeliveryHeaders({ ...base, 'content-type': 'Application/JSON; charset=utf-8' }).event, 'workflow_job');
});

test('every event name of letters, digits and underscores is taken, including ones GitHub has not invented yet', () => {
  for (const event of ['workflow_job', 'ping', 'security_and_analysis', 'github_app_authorization', 'installation_target', 'personal_access_token_request', 'sub_issues', 'future_event_2031', 'Future_Event']) {
    assert.equal(readDeliveryHeaders({ ...base, 'x-github-event': event }).event, event);
  }
  for (const junk of ['', 'workflow-job', 'workflow job', 'a/b', 'x'.repeat(65), 'événement']) {
    assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-event': junk })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER', junk);
  }
});

test('GitHub Enterprise Server headers are kept with the delivery; a proxy\'s cookies and authorization are not', () => {
  const h = readDeliveryHeaders({ ...base, ...GHES_HEADERS, 'x-github-hook-id': '7', 'user-agent': 'GitHub-Hookshot/abc', cookie: 'session=1', authorization: 'Bearer x' });
  assert.deepEqual(keptHeaders(h), {
    ...base, ...GHES_HEADERS, 'x-github-hook-id': '7', 'user-agent': 'GitHub-Hookshot/abc',
  });
  assert.deepEqual(keptHeaders(headers), { 'x-github-event': 'workflow_job', 'x-github-delivery': 'd-1', 'content-type': 'application/json' });
});

test('missing or junk GitHub headers are FLINT_ERR_WEBHOOK_MISSING_HEADER', () => {
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-event': undefined })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': undefined })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': 'a b' })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-delivery': 'x'.repeat(129) })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
  assert.equal(code(() => readDeliveryHeaders({ ...base, 'x-github-event': 'Workflow Job' })), 'FLINT_ERR_WEBHOOK_MISSING_HEADER');
});

test('text and missing content types are FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', () => {
  for (const ct of ['text/plain', 'application/jsonp', 'multipart/form-data', undefined]) {
    assert.equal(code(() => readDeliveryHeaders({ ...base, 'content-type': ct })), 'FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', String(ct));
  }
});

test('a form-encoded delivery (the webhook\'s other content type) is parsed from its payload field', () => {
  const form = readDeliveryHeaders({ ...base, 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(form.encoding, 'form');
  const json = JSON.stringify(workflowJobPayload({ jobId: 8, action: 'queued', labels: ['self-hosted', 'a+b&c=d'] }));
  const r = parseDelivery(form, Buffer.from(`payload=${encodeURIComponent(json)}`));
  assert.ok(r.kind === 'workflow_job');
  assert.deepEqual(r.command.job.labels, ['self-hosted', 'a+b&c=d']);
  assert.equal(code(() => parseDelivery(form, Buffer.from('other=1'))), 'FLINT_ERR_WEBHOOK_MALFORMED_JSON');
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

test('every payload shape GitHub.com, GHEC and GHES 3.14 – 3.19 may send, for every action, is taken', () => {
  for (const file of SCHEMA_FILES) {
    for (const action of ACTIONS) {
      for (const [shape, p] of [['full', full(action, 11)], ['minimal', minimal(file, action, 11)]] as const) {
        const what = `${file} ${action} ${shape}`;
        const validate = validator(file, action);
        assert.ok(validate(p), `${what} is not what the schema allows: ${JSON.stringify(validate.errors?.slice(0, 2))}`);
        const r = parseDelivery(headers, body(p));
        assert.ok(r.kind === 'workflow_job', what);
        assert.equal(r.command.action, action, what);
        assert.equal(r.command.job.id, 11, what);
        assert.deepEqual(r.command.job.labels, ['self-hosted', 'linux', 'x64'], what);
        assert.equal(r.command.job.repository, 'acme/widgets', what);
      }
    }
  }
});

test('the smallest payload the schema allows reads its nulls as "not known": no runner, no workflow name, no branch', () => {
  const r = parseDelivery(headers, body(minimal('ghes-3.14', 'in_progress')));
  assert.ok(r.kind === 'workflow_job' && r.command.action === 'in_progress');
  assert.equal(r.command.runner, null);
  assert.equal(r.command.job.workflowName, null);
  assert.equal(r.command.job.headBranch, null);
});

test('GitHub Enterprise Server 3.x before 3.14: no run_attempt, workflow_name, head_branch, created_at, organization or installation', () => {
  for (const action of ACTIONS) {
    const r = parseDelivery(headers, body(olderGhes(action, 12)));
    assert.ok(r.kind === 'workflow_job', action);
    assert.equal(r.command.job.runAttempt, 1, 'a job without run_attempt is its first attempt');
    assert.equal(r.command.job.createdAt, null);
    assert.equal(r.command.job.workflowName, null);
  }
});

test('in_progress names the runner even when GitHub leaves out its id', () => {
  const p = workflowJobPayload({ jobId: 13, action: 'in_progress', runnerName: 'flint-a-00007' });
  const r = parseDelivery(headers, body({ ...p, workflow_job: { ...p.workflow_job, runner_id: null } }));
  assert.ok(r.kind === 'workflow_job' && r.command.action === 'in_progress');
  assert.deepEqual(r.command.runner, { id: null, name: 'flint-a-00007' });
});

test('a completed job with a conclusion GitHub has not documented yet, or none, still completes', () => {
  const p = workflowJobPayload({ jobId: 14, action: 'completed' });
  for (const conclusion of ['startup_failure', null, undefined]) {
    const r = parseDelivery(headers, body({ ...p, workflow_job: { ...p.workflow_job, conclusion } }));
    assert.ok(r.kind === 'workflow_job' && r.command.action === 'completed', String(conclusion));
    assert.equal(r.command.conclusion, null);
  }
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
    { ...p, repository: undefined },
    { ...p, workflow_job: { ...p.workflow_job, labels: undefined } },
    { ...p, workflow_job: { ...p.workflow_job, run_id: undefined } },
  ];
  for (const b of bad) assert.equal(code(() => parseDelivery(headers, body(b))), 'FLINT_ERR_WEBHOOK_INVALID_PAYLOAD', JSON.stringify(b).slice(0, 80));
});

test('ping, other events and unknown workflow_job actions are told apart from jobs', () => {
  const ping = parseDelivery({ ...headers, event: 'ping' }, body({ zen: 'Design for failure.', hook_id: 3 }));
  assert.deepEqual(ping, { kind: 'ping', deliveryId: 'd-1', zen: 'Design for failure.', hookId: 3 });
  assert.deepEqual(parseDelivery({ ...headers, event: 'push' }, body({ ref: 'x' })), { kind: 'other', deliveryId: 'd-1', event: 'push', action: undefined });
  assert.equal(parseDelivery(headers, body({ action: 'requeued' })).kind, 'other');
  const sa = parseDelivery({ ...headers, event: 'security_and_analysis' }, body({ changes: {}, repository: { full_name: 'acme/widgets' } }));
  assert.deepEqual(sa, { kind: 'other', deliveryId: 'd-1', event: 'security_and_analysis', action: undefined });
  const revoked = parseDelivery({ ...headers, event: 'github_app_authorization' }, body({ action: 'revoked', sender: { login: 'octocat' } }));
  assert.deepEqual(revoked, { kind: 'other', deliveryId: 'd-1', event: 'github_app_authorization', action: 'revoked' });
  assert.equal(parseDelivery({ ...headers, event: 'ping' }, body({ hook_id: 'not a number' })).kind, 'ping', 'a ping is a ping whatever its body says');
});

test('bodies that are not JSON objects are FLINT_ERR_WEBHOOK_MALFORMED_JSON', () => {
  for (const raw of ['', '{', 'null', '"text"', '[]', '\u00ff']) {
    assert.equal(code(() => parseDelivery(headers, Buffer.from(raw))), 'FLINT_ERR_WEBHOOK_MALFORMED_JSON', JSON.stringify(raw));
  }
});
