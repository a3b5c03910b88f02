// The simulator's Actions service held to the published facts of the
// scale-set protocol with raw HTTP (no Flint client): registration, the
// `api-version` and auth rules, scale sets, one session per scale set,
// the long-polled queue, acquisition, the job's messages, statistics,
// runner removal, and every fault switch.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSimulator, signJwt, type Simulator, type SimulatorOptions } from './index.ts';
import { runFakeRunner } from './fake-runner.ts';

const V = 'api-version=6.0-preview';

interface Answer { readonly status: number; readonly json: unknown; readonly ms: number }
type Obj = Record<string, unknown>;

async function call(url: string, init: { method?: string; auth?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Answer> {
  const t0 = Date.now();
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.auth === undefined ? {} : { authorization: init.auth }),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), ms: Date.now() - t0 };
}

const obj = (v: unknown): Obj => v as Obj; // test reads of documented shapes; assertions check the fields used

interface Service {
  readonly sim: Simulator;
  readonly base: string;
  readonly admin: string;
  readonly installation: string;
  /** An Actions-service call with the admin token and api-version. */
  svc(method: string, path: string, body?: unknown): Promise<Answer>;
}

async function service(t: TestContext, opts: SimulatorOptions = {}): Promise<Service> {
  const sim = await startSimulator({ messagePollSeconds: 0.3, ...opts });
  t.after(() => sim.close());
  const now = Math.floor(Date.now() / 1000);
  const jwt = signJwt({ iat: now - 30, exp: now + 500, iss: sim.appId }, sim.privateKeyPem);
  const tok = await call(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', auth: `Bearer ${jwt}` });
  const installation = String(obj(tok.json).token);
  const reg = await call(`${sim.apiUrl}/orgs/${sim.org}/actions/runners/registration-token`, { method: 'POST', auth: `Bearer ${installation}` });
  assert.equal(reg.status, 201);
  const conn = await call(`${sim.apiUrl}/actions/runner-registration`, { method: 'POST', auth: `RemoteAuth ${String(obj(reg.json).token)}`, body: { url: `${sim.apiUrl}/${sim.org}`, runner_event: 'register' } });
  assert.equal(conn.status, 200);
  const base = String(obj(conn.json).url);
  const admin = String(obj(conn.json).token);
  const svc = (method: string, path: string, body?: unknown): Promise<Answer> =>
    call(`${base}${path}${path.includes('?') ? '&' : '?'}${V}`, { method, auth: `Bearer ${admin}`, body });
  return { sim, base, admin, installation, svc };
}

async function scaleSet(s: Service, name = 'flint-small', labels = ['flint-small']): Promise<number> {
  const r = await s.svc('POST', '_apis/runtime/runnerscalesets', { name, runnerGroupId: 1, labels: labels.map((l) => ({ name: l, type: 'System' })), RunnerSetting: { disableUpdate: true } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return Number(obj(r.json).id);
}

interface Sess { readonly sessionId: string; readonly messageQueueUrl: string; readonly messageQueueAccessToken: string; readonly statistics: Obj }

async function session(s: Service, id: number, ownerName = 'flint-host-1'): Promise<Sess> {
  const r = await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, { ownerName });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as Sess;
}

const poll = (q: Sess, last = 0, capacity = 10, token = q.messageQueueAccessToken): Promise<Answer> =>
  call(`${q.messageQueueUrl}&lastMessageId=${last}`, { auth: `Bearer ${token}`, headers: { accept: `application/json; ${V}`, 'X-ScaleSetMaxCapacity': String(capacity) } });

const items = (a: Answer): Obj[] => JSON.parse(String(obj(a.json).body)) as Obj[]; // the body is a JSON array of job messages
const types = (a: Answer): string[] => items(a).map((i) => String(i.messageType));
const ack = (q: Sess, id: unknown): Promise<Answer> => {
  const u = new URL(q.messageQueueUrl);
  u.pathname = `${u.pathname}/${String(id)}`;
  return call(u.toString(), { method: 'DELETE', auth: `Bearer ${q.messageQueueAccessToken}` });
};

async function jit(s: Service, id: number, name: string): Promise<{ runnerId: number; jit: string }> {
  const r = await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/generatejitconfig`, { name, workFolder: '_work' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return { runnerId: Number(obj(obj(r.json).runner).id), jit: String(obj(r.json).encodedJITConfig) };
}

test('registration: a registration token, traded with RemoteAuth for the service URL and an admin JWT with exp', async (t) => {
  const s = await service(t, { adminTokenTtlSeconds: 600 });
  assert.match(s.base, /\/_services\/pipelines\/[^/]+\/$/);
  const claims = obj(JSON.parse(Buffer.from(s.admin.split('.')[1] ?? '', 'base64url').toString()));
  assert.ok(Math.abs(Number(claims.exp) - (Date.now() / 1000 + 600)) < 5, 'exp is the token lifetime away');
  const reg = await call(`${s.sim.apiUrl}/orgs/${s.sim.org}/actions/runners/registration-token`, { method: 'POST', auth: `Bearer ${s.installation}` });
  const token = String(obj(reg.json).token);
  assert.match(String(obj(reg.json).expires_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const url = `${s.sim.apiUrl}/actions/runner-registration`;
  const body = { url: `${s.sim.apiUrl}/${s.sim.org}`, runner_event: 'register' };
  assert.equal((await call(url, { method: 'POST', auth: `Bearer ${token}`, body })).status, 401, 'the scheme is RemoteAuth');
  assert.equal((await call(url, { method: 'POST', auth: `RemoteAuth ${s.installation}`, body })).status, 401, 'an installation token is not a registration token');
  assert.equal((await call(url, { method: 'POST', auth: `RemoteAuth ${token}`, body: { url: body.url } })).status, 400, 'runner_event is required');
  assert.equal((await call(url, { method: 'POST', auth: `RemoteAuth ${token}`, body: { ...body, url: `${s.sim.apiUrl}/elsewhere` } })).status, 404);
  assert.equal((await call(url, { method: 'POST', auth: `RemoteAuth ${token}`, body })).status, 200);
});

test('the service refuses calls without api-version, without the admin token, or with bodies of the wrong shape', async (t) => {
  const s = await service(t);
  const groups = `${s.base}_apis/runtime/runnergroups/?groupName=Default`;
  const noVersion = await call(groups, { auth: `Bearer ${s.admin}` });
  assert.equal(noVersion.status, 400);
  assert.match(String(obj(noVersion.json).typeName), /VssVersionNotSpecifiedException/);
  assert.equal((await call(`${groups}&api-version=5.1`, { auth: `Bearer ${s.admin}` })).status, 400);
  assert.equal((await call(`${groups}&${V}`)).status, 401);
  assert.equal((await call(`${groups}&${V}`, { auth: `Bearer ${s.installation}` })).status, 401, 'a GitHub installation token is not an admin token');
  assert.equal((await call(`${groups}&${V}`, { auth: `RemoteAuth ${s.admin}` })).status, 401);
  const ok = await call(`${groups}&${V}`, { auth: `Bearer ${s.admin}` });
  assert.deepEqual(ok.json, { count: 1, value: [{ id: 1, name: 'Default', size: 0, isDefaultGroup: true }] });
  const bad = (body: unknown): Promise<Answer> => s.svc('POST', '_apis/runtime/runnerscalesets', body);
  assert.equal((await bad({ name: 'x', runnerGroupId: 1, labels: ['x'] })).status, 400, 'labels are objects');
  assert.equal((await bad({ name: 'x', runnerGroupId: 1, labels: [{ name: 'x', type: 'system' }] })).status, 400, 'type is System or User');
  assert.equal((await bad({ name: 'x', runnerGroupId: '1', labels: [{ name: 'x', type: 'System' }] })).status, 400);
  assert.equal((await bad({ runnerGroupId: 1, labels: [{ name: 'x', type: 'System' }] })).status, 400);
  const raw = await fetch(`${s.base}_apis/runtime/runnerscalesets?${V}`, { method: 'POST', headers: { authorization: `Bearer ${s.admin}` }, body: '{"name":"x"}' });
  assert.equal(raw.status, 400, 'a body without Content-Type: application/json');
  await raw.body?.cancel();
  const id = await scaleSet(s, 'x', ['x']);
  assert.equal((await bad({ name: 'x', runnerGroupId: 1, labels: [{ name: 'x', type: 'System' }] })).status, 409);
  assert.equal((await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, {})).status, 400, 'ownerName is required');
  assert.equal((await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, { ids: [1] })).status, 400, 'acquirejobs takes a bare array');
});

test('a job for the scale set\'s labels: JobAvailable, acquire, JobAssigned, a scale-set runner starts it, JobStarted, JobCompleted succeeded', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const found = await s.svc('GET', `_apis/runtime/runnerscalesets?runnerGroupId=1&name=flint-small`);
  assert.equal(obj(found.json).count, 1);
  const q = await session(s, id);
  assert.match(q.sessionId, /^[0-9a-f-]{36}$/);
  const second = await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, { ownerName: 'other' });
  assert.equal(second.status, 409);
  assert.match(String(obj(second.json).typeName), /RunnerScaleSetSessionConflictException/);

  assert.equal((await poll(q)).status, 202, 'nothing to say yet');
  const noCap = await call(q.messageQueueUrl, { auth: `Bearer ${q.messageQueueAccessToken}`, headers: { accept: `application/json; ${V}` } });
  assert.equal(noCap.status, 400, 'X-ScaleSetMaxCapacity is required');
  await s.sim.queueJob({ repo: 'app', labels: ['other-label'] });
  const { jobId } = await s.sim.queueJob({ repo: 'app', labels: ['Flint-Small'] });
  const m1 = await poll(q);
  assert.equal(m1.status, 200);
  assert.equal(obj(m1.json).messageType, 'RunnerScaleSetJobMessages');
  assert.deepEqual(types(m1), ['JobAvailable'], 'only the job whose labels the scale set has');
  const avail = items(m1)[0] ?? {};
  assert.equal(avail.jobId, String(jobId));
  assert.equal(obj(obj(m1.json).statistics).totalAvailableJobs, 1);
  assert.equal((await ack(q, obj(m1.json).messageId)).status, 204);

  // Not acquired: a runner of the scale set gets nothing (and goes away).
  const early = await runFakeRunner({ apiUrl: s.sim.apiUrl, jitConfig: (await jit(s, id, 'flint-small-r1')).jit, waitSeconds: 0 });
  assert.equal(early.outcome, 'no-job');
  const runner = await jit(s, id, 'flint-small-idle');
  const runner2 = await jit(s, id, 'flint-small-r2');

  const acq = await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, [avail.runnerRequestId, 999_999]);
  assert.deepEqual(acq.json, { count: 1, value: [avail.runnerRequestId] });
  const m2 = await poll(q, Number(obj(m1.json).messageId));
  assert.deepEqual(types(m2), ['JobAssigned']);
  assert.equal(obj(obj(m2.json).statistics).totalAssignedJobs, 1);
  await ack(q, obj(m2.json).messageId);

  let busyRemoval: Answer | undefined;
  const done = await runFakeRunner({
    apiUrl: s.sim.apiUrl, jitConfig: runner2.jit, waitSeconds: 5,
    onJob: async () => {
      busyRemoval = await s.svc('DELETE', `_apis/distributedtask/pools/0/agents/${runner2.runnerId}`);
      return 'success' as const;
    },
  });
  assert.equal(done.outcome, 'completed');
  assert.equal(busyRemoval?.status, 400);
  assert.match(String(obj(busyRemoval?.json).typeName), /JobStillRunningException/);
  const m3 = await poll(q, Number(obj(m2.json).messageId));
  assert.deepEqual(types(m3), ['JobStarted', 'JobCompleted']);
  assert.equal(items(m3)[0]?.runnerId, runner2.runnerId);
  assert.equal(items(m3)[1]?.result, 'succeeded');
  assert.deepEqual(obj(m3.json).statistics, {
    totalAvailableJobs: 0, totalAcquiredJobs: 0, totalAssignedJobs: 0, totalRunningJobs: 0,
    totalRegisteredRunners: 1, totalBusyRunners: 0, totalIdleRunners: 1,
  }, 'the ephemeral runner is gone; the idle one stays');
  assert.equal((await s.svc('DELETE', `_apis/distributedtask/pools/0/agents/${runner.runnerId}`)).status, 204);
  const again = await s.svc('DELETE', `_apis/distributedtask/pools/0/agents/${runner.runnerId}`);
  assert.match(String(obj(again.json).typeName), /AgentNotFoundException/);
  assert.equal((await s.svc('DELETE', `_apis/runtime/runnerscalesets/${id}/sessions/${q.sessionId}`)).status, 204);
  const twice = await s.svc('DELETE', `_apis/runtime/runnerscalesets/${id}/sessions/${q.sessionId}`);
  assert.match(String(obj(twice.json).typeName), /RunnerScaleSetSessionExpiredException/);
});

test('an unacknowledged message is delivered again; a poll with a later lastMessageId moves on', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  await s.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  const m1 = await poll(q);
  const again = await poll(q);
  assert.equal(obj(again.json).messageId, obj(m1.json).messageId);
  assert.equal((await poll(q, Number(obj(m1.json).messageId))).status, 202);
});

test('the long poll answers 202 after the configured time, wakes for news, and honours the capacity header', async (t) => {
  const s = await service(t, { messagePollSeconds: 0.4 });
  const id = await scaleSet(s);
  const q = await session(s, id);
  const idle = await poll(q);
  assert.equal(idle.status, 202);
  assert.ok(idle.ms >= 350, `waited ${idle.ms} ms`);
  await s.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  assert.equal((await poll(q, 0, 0)).status, 202, 'capacity 0: no job is offered');
  const pending = poll(q, 0, 1);
  const m = await pending;
  assert.deepEqual(types(m), ['JobAvailable']);
});

test('a poll in flight when the simulator closes ends at once', async (t) => {
  const s = await service(t, { messagePollSeconds: 30 });
  const q = await session(s, await scaleSet(s));
  const t0 = Date.now();
  const inFlight = poll(q).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  await s.sim.close();
  await inFlight;
  assert.ok(Date.now() - t0 < 5000, 'the poll did not sit out its 30 s');
});

test('fault: a stale session after a crash answers 409 until it expires or its owner deletes it', async (t) => {
  let clock = Date.now();
  const s = await service(t, { now: () => clock, sessionExpirySeconds: 120 });
  const id = await scaleSet(s);
  const stale = s.sim.actions.staleSession(id, 'flint-host-1');
  const create = (): Promise<Answer> => s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, { ownerName: 'flint-host-1' });
  assert.equal((await create()).status, 409);
  clock += 60_000;
  assert.equal((await create()).status, 409, 'still within the expiry');
  assert.equal((await s.svc('DELETE', `_apis/runtime/runnerscalesets/${id}/sessions/${stale}`)).status, 204, 'whoever knows its id may delete it');
  assert.equal((await create()).status, 200);
  s.sim.actions.staleSession(id, 'flint-host-1');
  clock += 121_000;
  assert.equal((await create()).status, 200, 'expired: replaced');
});

test('fault: a scale set removed after inactivity answers 404 RunnerScaleSetNotFoundException', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  s.sim.actions.removeScaleSet(id);
  for (const a of [await s.svc('GET', `_apis/runtime/runnerscalesets/${id}`), await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, { ownerName: 'x' }), await poll(q)]) {
    assert.equal(a.status, 404);
    assert.match(String(obj(a.json).typeName), /RunnerScaleSetNotFoundException/);
  }
  assert.equal(obj((await s.svc('GET', '_apis/runtime/runnerscalesets?runnerGroupId=1&name=flint-small')).json).count, 0);
});

test('fault: a forgotten session: its queue token answers 401 and its refresh 404; an expired queue token is cured by a refresh', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  let q = await session(s, id);
  s.sim.actions.expireQueueToken(id);
  assert.equal((await poll(q)).status, 401);
  const refreshed = await s.svc('PATCH', `_apis/runtime/runnerscalesets/${id}/sessions/${q.sessionId}`);
  assert.equal(refreshed.status, 200);
  assert.notEqual(obj(refreshed.json).messageQueueAccessToken, q.messageQueueAccessToken);
  q = refreshed.json as Sess;
  assert.equal((await poll(q)).status, 202);
  s.sim.actions.forgetSession(id);
  assert.equal((await poll(q)).status, 401);
  assert.equal((await s.svc('PATCH', `_apis/runtime/runnerscalesets/${id}/sessions/${q.sessionId}`)).status, 404);
  assert.equal((await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/sessions`, { ownerName: 'x' })).status, 200, 'a new session is allowed');
});

test('fault: an admin token the service stopped accepting answers 401', async (t) => {
  const s = await service(t);
  s.sim.actions.expireAdminTokens();
  assert.equal((await s.svc('GET', '_apis/runtime/runnergroups/?groupName=Default')).status, 401);
});

test('fault: a reassigned job completes as canceled and is offered again under a new request id, at most three times', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  s.sim.actions.reassignNext(5);
  const { jobId } = await s.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  let last = 0;
  const seen: string[] = [];
  const requestIds = new Set<unknown>();
  for (let round = 0; round < 4; round++) {
    const m = await poll(q, last);
    last = Number(obj(m.json).messageId);
    const offer = items(m).find((i) => i.messageType === 'JobAvailable');
    seen.push(types(m).join('+'));
    assert.equal(offer?.jobId, String(jobId));
    requestIds.add(offer?.runnerRequestId);
    await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, [offer?.runnerRequestId]);
  }
  const m = await poll(q, last);
  seen.push(types(m).join('+'));
  assert.equal(requestIds.size, 4);
  assert.deepEqual(seen, ['JobAvailable', 'JobAssigned+JobCompleted+JobAvailable', 'JobAssigned+JobCompleted+JobAvailable', 'JobAssigned+JobCompleted+JobAvailable', 'JobAssigned']);
  assert.equal(items(m).length, 1, 'the fourth acquisition sticks');
  assert.equal(s.sim.jobs().find((j) => j.id === jobId)?.status, 'queued', 'the workflow job itself stays queued');
});

test('a job cancelled after its scale set acquired it completes as canceled without a JobStarted', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  const { jobId } = await s.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  const m1 = await poll(q);
  await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, [items(m1)[0]?.runnerRequestId]);
  await s.sim.cancelJob(jobId);
  const m2 = await poll(q, Number(obj(m1.json).messageId));
  assert.deepEqual(types(m2), ['JobAssigned', 'JobCompleted']);
  assert.equal(items(m2)[1]?.result, 'canceled');
  assert.equal(obj(obj(m2.json).statistics).totalAssignedJobs, 0);
});

test('a job a scale set acquired is taken by none of the REST JIT runners', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  await s.sim.queueJob({ repo: 'app', labels: ['flint-small'] });
  const offer = items(await poll(q))[0] ?? {};
  await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, [offer.runnerRequestId]);
  const res = await call(`${s.sim.apiUrl}/orgs/${s.sim.org}/actions/runners/generate-jitconfig`, {
    method: 'POST', auth: `Bearer ${s.installation}`, body: { name: 'plain', runner_group_id: 1, labels: ['flint-small'] },
  });
  const plain = await runFakeRunner({ apiUrl: s.sim.apiUrl, jitConfig: String(obj(res.json).encoded_jit_config), waitSeconds: 0 });
  assert.equal(plain.outcome, 'no-job');
});

test('the guest\'s stub runner runs a scale-set job with the scale set\'s encoded JIT config', async (t) => {
  const s = await service(t);
  const id = await scaleSet(s);
  const q = await session(s, id);
  const { jobId } = await s.sim.queueJob({ repo: 'web', labels: ['flint-small'] });
  const offer = items(await poll(q))[0] ?? {};
  await s.svc('POST', `_apis/runtime/runnerscalesets/${id}/acquirejobs`, [offer.runnerRequestId]);
  const { jit: config } = await jit(s, id, 'flint-small-vm');
  const script = fileURLToPath(new URL('../../test/fixtures/stub-runner/run.sh', import.meta.url));
  const out = await new Promise<string>((resolve, reject) => {
    execFile('sh', [script], { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', FLINT_GITHUB_URL: s.sim.apiUrl, ACTIONS_RUNNER_INPUT_JITCONFIG: config } }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(out, new RegExp(`stub-runner: job ${jobId} done`));
  assert.equal(s.sim.jobs().find((j) => j.id === jobId)?.conclusion, 'success');
});
