import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openDatabase } from '../../adapters/store/db.ts';
import type { Db } from '../../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../../adapters/store/intake-store.ts';
import { createIntake } from '../../daemon/intake/intake.ts';
import { signatureHeader } from '../../daemon/intake/verify-signature.ts';
import type { IntakeLogger } from '../../daemon/intake/intake.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import type { PayloadOptions } from '../../../bench/_payload.ts';
import { buildServer } from './server.ts';
import { ACTIONS, GHES_HEADERS, minimal, olderGhes } from '../../../test/fixtures/workflow-job-shapes.ts';

const SECRET = 'current-webhook-secret';
const OLD_SECRET = 'previous-webhook-secret';
const RUNNERS = [{ name: 'default', labels: ['self-hosted', 'Linux', 'X64'] }];
const quiet: IntakeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

interface Reply { status: number; headers: IncomingHttpHeaders; json: Record<string, unknown> }

interface Harness {
  readonly url: string;
  readonly db: Db;
  readonly store: IntakeStore;
  readonly close: () => Promise<void>;
}

async function startHarness(dir: string, o: { maxBodyBytes?: number; wrapStore?: (s: IntakeStore) => IntakeStore } = {}): Promise<Harness> {
  const db = openDatabase(dir);
  const real = createSqliteIntakeStore(db);
  const store = o.wrapStore ? o.wrapStore(real) : real;
  let now = 1_700_000_000_000;
  const intake = createIntake({ store, runners: RUNNERS, secrets: [SECRET, OLD_SECRET], clock: () => ++now, logger: quiet });
  const server: Server = buildServer({ intake, logger: quiet, ...(o.maxBodyBytes === undefined ? {} : { maxBodyBytes: o.maxBodyBytes }) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo; // listening on TCP, so address() is an AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    db,
    store: real,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await intake.flush();
      db.close();
    },
  };
}

function send(url: string, o: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${o.path ?? '/webhook'}`, { method: o.method ?? 'POST', headers: o.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

function deliver(h: Harness, p: PayloadOptions, o: { id?: string; secret?: string } = {}): Promise<Reply> {
  const d = signedDelivery(o.secret ?? SECRET, 'workflow_job', workflowJobPayload(p), o.id);
  return send(h.url, { headers: d.headers, body: d.body });
}

function unparsableRows(db: Db): number {
  // count(*) returns one row with one integer column.
  return (db.prepare('SELECT count(*) AS n FROM unparsable_deliveries').get() as { n: number }).n;
}

function rows(db: Db): { deliveries: number; jobs: number } {
  // The query returns exactly one row with these two integer columns.
  return db.prepare('SELECT (SELECT count(*) FROM deliveries) AS deliveries, (SELECT count(*) FROM jobs) AS jobs').get() as { deliveries: number; jobs: number };
}

let dir: string;
let h: Harness;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flint-http-'));
  h = await startHarness(join(dir, 'main'));
});
after(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh server with an empty database, for tests that count rows. */
async function fresh(t: { after: (fn: () => Promise<void>) => void }, o: Parameters<typeof startHarness>[1] = {}): Promise<Harness> {
  const own = await startHarness(mkdtempSync(join(dir, 'case-')), o);
  t.after(own.close);
  return own;
}

test('the test payloads match GitHub\'s published webhook JSON schema', () => {
  const spec = createRequire(import.meta.url)('@octokit/openapi-webhooks/generated/api.github.com.json') as { components: { schemas: Record<string, unknown> } };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'gh', components: spec.components });
  for (const action of ['queued', 'waiting', 'in_progress', 'completed'] as const) {
    const validate = ajv.getSchema(`gh#/components/schemas/webhook-workflow-job-${action.replace('_', '-')}`);
    assert.ok(validate, action);
    const ok = validate(workflowJobPayload({ jobId: 101, action }));
    assert.ok(ok, `${action}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
});

test('a signed queued delivery is stored and answered 202 accepted', async (t) => {
  const s = await fresh(t);
  const r = await deliver(s, { jobId: 1001, action: 'queued' }, { id: 'd-1001' });
  assert.equal(r.status, 202);
  assert.deepEqual(r.json, { outcome: 'accepted', delivery: 'd-1001', job: 1001 });
  const job = await s.store.getJob(1001);
  assert.equal(job?.status, 'queued');
  assert.equal(job?.definition, 'default');
  assert.equal(job?.repository, 'acme/widgets');
  assert.deepEqual(rows(s.db), { deliveries: 1, jobs: 1 });
});

test('a duplicate delivery id is answered 200 duplicate and stores nothing new', async (t) => {
  const s = await fresh(t);
  assert.equal((await deliver(s, { jobId: 1002, action: 'queued' }, { id: 'dup' })).status, 202);
  const again = await deliver(s, { jobId: 1002, action: 'completed' }, { id: 'dup' });
  assert.equal(again.status, 200);
  assert.equal(again.json.outcome, 'duplicate');
  assert.deepEqual(rows(s.db), { deliveries: 1, jobs: 1 });
  assert.equal((await s.store.getJob(1002))?.status, 'queued');
});

test('a delivery signed with the previous secret is accepted during a rotation', async () => {
  const r = await deliver(h, { jobId: 1003, action: 'queued' }, { secret: OLD_SECRET });
  assert.equal(r.status, 202);
  assert.equal(r.json.outcome, 'accepted');
});

test('rejected deliveries are answered with their status and nothing is stored', async (t) => {
  const s = await fresh(t);
  const good = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1004, action: 'queued' }));
  const without = (name: string): Record<string, string> => Object.fromEntries(Object.entries(good.headers).filter(([k]) => k !== name));
  const unsigned = '{"action": "queued",';
  const cases: { name: string; headers: Record<string, string>; body: string; status: number; code: string }[] = [
    { name: 'wrong secret', headers: { ...good.headers, 'x-hub-signature-256': signatureHeader('someone-else', good.body) }, body: good.body, status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
    { name: 'tampered body', headers: good.headers, body: good.body.replace('"queued"', '"completed"'), status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
    { name: 'no signature', headers: without('x-hub-signature-256'), body: good.body, status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
    { name: 'sha1 signature only', headers: { ...without('x-hub-signature-256'), 'x-hub-signature': 'sha1=0000' }, body: good.body, status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
    { name: 'no X-GitHub-Event', headers: without('x-github-event'), body: good.body, status: 400, code: 'FLINT_ERR_WEBHOOK_MISSING_HEADER' },
    { name: 'no X-GitHub-Delivery', headers: without('x-github-delivery'), body: good.body, status: 400, code: 'FLINT_ERR_WEBHOOK_MISSING_HEADER' },
    { name: 'no content type', headers: without('content-type'), body: good.body, status: 415, code: 'FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE' },
    { name: 'text content type', headers: { ...good.headers, 'content-type': 'text/plain' }, body: good.body, status: 415, code: 'FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE' },
    { name: 'event name with a dash', headers: { ...good.headers, 'x-github-event': 'workflow-job' }, body: good.body, status: 400, code: 'FLINT_ERR_WEBHOOK_MISSING_HEADER' },
    { name: 'malformed JSON, unsigned', headers: without('x-hub-signature-256'), body: unsigned, status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
    { name: 'malformed JSON, wrongly signed', headers: { ...good.headers, 'x-hub-signature-256': signatureHeader('someone-else', unsigned) }, body: unsigned, status: 401, code: 'FLINT_ERR_WEBHOOK_BAD_SIGNATURE' },
  ];
  for (const c of cases) {
    const r = await send(s.url, { headers: c.headers, body: c.body });
    assert.equal(r.status, c.status, c.name);
    assert.equal((r.json.error as { code: string }).code, c.code, c.name);
  }
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
  assert.equal(unparsableRows(s.db), 0, 'nothing unsigned or malformed is kept');
});

test('a signed delivery Flint cannot parse is kept with its body, headers and error, answered 202, and changes no job', async (t) => {
  const s = await fresh(t);
  const good = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1004, action: 'queued' }));
  const resign = (body: string, id: string): Record<string, string> => ({ ...good.headers, ...GHES_HEADERS, 'x-github-delivery': id, 'x-hub-signature-256': signatureHeader(SECRET, body) });
  const invalidPayload = JSON.stringify({ ...workflowJobPayload({ jobId: 1004, action: 'queued' }), workflow_job: { id: 'not-a-number' } });
  const cases = [
    { id: 'u-json', body: '{"action": "queued",', code: 'FLINT_ERR_WEBHOOK_MALFORMED_JSON' },
    { id: 'u-array', body: '[1,2]', code: 'FLINT_ERR_WEBHOOK_MALFORMED_JSON' },
    { id: 'u-payload', body: invalidPayload, code: 'FLINT_ERR_WEBHOOK_INVALID_PAYLOAD' },
  ];
  for (const c of cases) {
    const r = await send(s.url, { headers: resign(c.body, c.id), body: c.body });
    assert.equal(r.status, 202, c.id);
    assert.equal(r.json.outcome, 'unparsable', c.id);
    assert.equal((r.json.error as { code: string }).code, c.code, c.id);
  }
  const again = await send(s.url, { headers: resign(invalidPayload, 'u-payload'), body: invalidPayload });
  assert.equal(again.status, 200, 'GitHub redelivering it changes nothing');
  assert.equal(again.json.outcome, 'duplicate');
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
  const kept = await s.store.listUnparsable();
  assert.deepEqual(kept.map((u) => [u.deliveryId, u.error.code, u.state]), cases.map((c) => [c.id, c.code, 'unparsable']));
  const payload = kept.find((u) => u.deliveryId === 'u-payload');
  assert.equal(Buffer.from(payload?.body ?? []).toString('utf8'), invalidPayload, 'the raw body');
  assert.equal(payload?.headers['x-github-enterprise-host'], 'ghe.example.com');
  assert.equal(payload?.headers['x-hub-signature-256'], signatureHeader(SECRET, invalidPayload));
  assert.match(payload?.error.message ?? '', /workflow_job\.id/, 'the error names the field that is wrong');
});

test('a form-encoded delivery is taken like a JSON one', async (t) => {
  const s = await fresh(t);
  const good = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1006, action: 'queued' }));
  const form = `payload=${encodeURIComponent(good.body)}`;
  const r = await send(s.url, { headers: { ...good.headers, 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': signatureHeader(SECRET, form) }, body: form });
  assert.equal(r.status, 202);
  assert.equal(r.json.outcome, 'accepted');
  assert.equal((await s.store.getJob(1006))?.status, 'queued');
});

test('GHES and GitHub.com payloads in their smallest allowed shape, and older GHES ones, are all recorded', async (t) => {
  const s = await fresh(t);
  let id = 2000;
  const post = async (p: Record<string, unknown>, extra: Record<string, string> = {}): Promise<Reply> => {
    const d = signedDelivery(SECRET, 'workflow_job', p, `shape-${++id}`);
    return send(s.url, { headers: { ...d.headers, ...extra }, body: d.body });
  };
  for (const file of ['api.github.com', 'ghes-3.14', 'ghes-3.19'] as const) {
    for (const action of ACTIONS) {
      const r = await post(minimal(file, action, ++id), file.startsWith('ghes') ? GHES_HEADERS : {});
      assert.equal(r.status, 202, `${file} ${action}`);
      assert.equal(r.json.outcome, 'accepted', `${file} ${action}`);
    }
  }
  for (const action of ACTIONS) {
    const r = await post(olderGhes(action, ++id), GHES_HEADERS);
    assert.equal(r.json.outcome, 'accepted', `older GHES ${action}`);
  }
  assert.equal(unparsableRows(s.db), 0);
});

test('an oversized body is refused with 413 from its Content-Length, before it is sent', async (t) => {
  const s = await fresh(t, { maxBodyBytes: 64 * 1024 });
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1006, action: 'queued' }));
  // Announce 10 MiB, send only the headers: the answer must come anyway.
  const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
  t.after(() => socket.destroy());
  const head = Object.entries({ ...d.headers, 'content-length': String(10 * 1024 * 1024), host: 'x' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`POST /webhook HTTP/1.1\r\n${head}\r\n`);
  const text = await new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (c: Buffer) => { got += c.toString(); if (got.includes('}')) resolve(got); });
  });
  assert.match(text, /^HTTP\/1\.1 413 /);
  assert.match(text, /FLINT_ERR_WEBHOOK_BODY_TOO_LARGE/);
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
});

test('an oversized chunked body is cut off at the limit with 413', async (t) => {
  const s = await fresh(t, { maxBodyBytes: 16 * 1024 });
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1007, action: 'queued' }));
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${s.url}/webhook`, { method: 'POST', headers: { ...d.headers, 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(4096, 0x20);
    let sent = 0;
    // Keep sending until the server answers (it must, after ~16 KiB), capped well above the limit.
    const pump = (): void => {
      if (req.destroyed || sent > 1024 * 1024) return;
      sent += chunk.length;
      if (req.write(chunk)) setImmediate(pump);
      else req.once('drain', pump);
    };
    pump();
  });
  assert.equal(status, 413);
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
});

test('a job no runner definition can serve is recorded as ignored', async (t) => {
  const s = await fresh(t);
  const r = await deliver(s, { jobId: 1008, action: 'queued', labels: ['ubuntu-latest'] }, { id: 'ign-1' });
  assert.equal(r.status, 202);
  assert.equal(r.json.outcome, 'ignored');
  assert.equal(await s.store.getJob(1008), undefined);
  assert.equal((await s.store.getDelivery('ign-1'))?.outcome, 'ignored');
});

test('labels are matched as a case-insensitive subset', async () => {
  const r = await deliver(h, { jobId: 1009, action: 'queued', labels: ['SELF-HOSTED', 'linux'] });
  assert.equal(r.json.outcome, 'accepted');
});

test('completed arrives before queued and the job is not resurrected', async (t) => {
  const s = await fresh(t);
  assert.equal((await deliver(s, { jobId: 1010, action: 'completed', runnerName: 'flint-h7k2-00009' })).json.outcome, 'accepted');
  assert.equal((await deliver(s, { jobId: 1010, action: 'in_progress' })).json.outcome, 'stale');
  assert.equal((await deliver(s, { jobId: 1010, action: 'queued' })).json.outcome, 'stale');
  const job = await s.store.getJob(1010);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success');
  assert.equal(job?.runnerName, 'flint-h7k2-00009');
  assert.deepEqual(await s.store.listJobs({ status: 'queued' }), []);
  assert.deepEqual(rows(s.db), { deliveries: 3, jobs: 1 });
});

test('ping is answered 200, other events 202 not-handled, and neither is stored', async (t) => {
  const s = await fresh(t);
  const ping = signedDelivery(SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 471100, hook: {} });
  const pong = await send(s.url, { headers: ping.headers, body: ping.body });
  assert.equal(pong.status, 200);
  assert.deepEqual(pong.json, { outcome: 'pong', delivery: ping.headers['x-github-delivery'], zen: 'Keep it logically awesome.' });
  const push = signedDelivery(SECRET, 'push', { ref: 'refs/heads/main' });
  const other = await send(s.url, { headers: push.headers, body: push.body });
  assert.equal(other.status, 202);
  assert.equal(other.json.outcome, 'not-handled');
  const unknownAction = signedDelivery(SECRET, 'workflow_job', { action: 'teleported', workflow_job: {} });
  assert.equal((await send(s.url, { headers: unknownAction.headers, body: unknownAction.body })).json.outcome, 'not-handled');
  for (const [event, payload] of [
    ['security_and_analysis', { changes: { from: {} }, repository: { full_name: 'acme/widgets' } }],
    ['github_app_authorization', { action: 'revoked', sender: { login: 'octocat' } }],
    ['installation_repositories', { action: 'added', repositories_added: [] }],
    ['some_event_from_2031', { action: 'happened' }],
  ] as const) {
    const d = signedDelivery(SECRET, event, payload);
    const r = await send(s.url, { headers: d.headers, body: d.body });
    assert.equal(r.status, 202, event);
    assert.equal(r.json.outcome, 'not-handled', event);
  }
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
  assert.equal(unparsableRows(s.db), 0);
});

test('any path under /webhook/ is the webhook; other paths and methods are refused; /healthz answers', async () => {
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1011, action: 'queued' }));
  assert.equal((await send(h.url, { path: '/webhook/github/app', headers: d.headers, body: d.body })).status, 202);
  const get = await send(h.url, { method: 'GET' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal((await send(h.url, { method: 'GET', path: '/webhooks' })).status, 404);
  const health = await send(h.url, { method: 'GET', path: '/healthz' });
  assert.equal(health.status, 200);
  assert.equal(health.json.status, 'ok');
});

test('deliveries that arrive together share one transaction, and each is answered after it', async (t) => {
  const batches: number[] = [];
  const s = await fresh(t, {
    wrapStore: (inner) => ({ ...inner, ingest: async (batch) => { batches.push(batch.length); return inner.ingest(batch); } }),
  });
  // Connect first, then write every request in the same tick, so that they
  // reach the server in one turn of its event loop.
  const port = Number(new URL(s.url).port);
  const sockets = await Promise.all(Array.from({ length: 32 }, () => new Promise<Socket>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => resolve(sock));
    sock.on('error', reject);
  })));
  t.after(() => { for (const sock of sockets) sock.destroy(); });
  // One /healthz round trip per connection first: the server has then
  // accepted every connection and reads them all in the same poll phase.
  await Promise.all(sockets.map((sock) => new Promise<void>((resolve) => {
    sock.once('data', () => resolve());
    sock.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  })));
  const answers = sockets.map((sock) => new Promise<string>((resolve) => {
    let got = '';
    sock.on('data', (c: Buffer) => { got += c.toString(); if (got.includes('}')) resolve(got); });
  }));
  sockets.forEach((sock, i) => {
    const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 2000 + i, action: 'queued' }));
    const head = Object.entries({ ...d.headers, 'content-length': String(Buffer.byteLength(d.body)), host: 'x' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`POST /webhook HTTP/1.1\r\n${head}\r\n${d.body}`);
  });
  const replies = await Promise.all(answers);
  assert.ok(replies.every((r) => r.startsWith('HTTP/1.1 202 ') && r.includes('"accepted"')));
  assert.equal(batches.reduce((a, b) => a + b, 0), 32);
  assert.ok(batches.length < 32, `expected batching, got ${JSON.stringify(batches)}`);
  assert.deepEqual(rows(s.db), { deliveries: 32, jobs: 32 });
});

test('when the store cannot commit, the delivery is answered 503 and nothing is kept', async (t) => {
  const s = await fresh(t, {
    wrapStore: (inner) => ({ ...inner, ingest: async () => { throw new Error('disk full'); } }),
  });
  const r = await deliver(s, { jobId: 1012, action: 'queued' });
  assert.equal(r.status, 503);
  assert.equal((r.json.error as { code: string }).code, 'FLINT_ERR_STORE_WRITE_FAILED');
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
});

test('restart: close the server and database, reopen, and every acknowledged delivery is still there', async (t) => {
  const caseDir = mkdtempSync(join(dir, 'restart-'));
  const first = await startHarness(caseDir);
  const acked: string[] = [];
  await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const id = `restart-${i}`;
    const r = await deliver(first, { jobId: 3000 + (i % 20), action: i < 20 ? 'queued' : 'in_progress' }, { id });
    if (r.status === 202) acked.push(id);
  }));
  await first.close();
  const second = await startHarness(caseDir);
  t.after(second.close);
  assert.equal(acked.length, 40);
  assert.deepEqual(rows(second.db), { deliveries: 40, jobs: 20 });
  for (const id of acked) assert.ok(await second.store.getDelivery(id), id);
  // Dedupe survives the restart.
  assert.equal((await deliver(second, { jobId: 3000, action: 'queued' }, { id: 'restart-0' })).status, 200);
});

test('a sender that goes away half-way through the body leaves nothing stored and the server answering', async (t) => {
  const s = await fresh(t);
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 1013, action: 'queued' }));
  const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const head = Object.entries({ ...d.headers, 'content-length': String(Buffer.byteLength(d.body)), host: 'x' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`POST /webhook HTTP/1.1\r\n${head}\r\n${d.body.slice(0, 1000)}`);
  await new Promise((r) => setTimeout(r, 50));
  socket.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(rows(s.db), { deliveries: 0, jobs: 0 });
  assert.equal((await deliver(s, { jobId: 1014, action: 'queued' })).status, 202);
});
