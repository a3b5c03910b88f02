import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { verify } from '@octokit/webhooks-methods';
import { startSimulator, signJwt, decodeJitConfig, type Simulator, type SimulatorOptions } from './index.ts';
import { startReceiver, type Receiver } from './receiver.ts';
import { runFakeRunner } from './fake-runner.ts';
import { parseLooseBody } from './http-util.ts';

async function sim(t: TestContext, opts: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator(opts);
  t.after(() => s.close());
  return s;
}

async function receiver(t: TestContext): Promise<Receiver> {
  const r = await startReceiver();
  t.after(() => r.close());
  return r;
}

const nowS = (): number => Math.floor(Date.now() / 1000);

function appJwt(s: Simulator, claims: Record<string, unknown> = {}, pem = s.privateKeyPem): string {
  return signJwt({ iat: nowS() - 30, exp: nowS() + 540, iss: s.appId, ...claims }, pem);
}

async function call(s: Simulator, method: string, path: string, auth?: string, body?: unknown): Promise<{ status: number; headers: Headers; json: unknown }> {
  const res = await fetch(`${s.apiUrl}${path}`, {
    method,
    headers: { accept: 'application/vnd.github+json', ...(auth === undefined ? {} : { authorization: auth }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) };
}

async function installationToken(s: Simulator): Promise<string> {
  const r = await call(s, 'POST', `/app/installations/${s.installationId}/access_tokens`, `Bearer ${appJwt(s)}`);
  assert.equal(r.status, 201);
  return `token ${(r.json as { token: string }).token}`;
}

async function jit(s: Simulator, tok: string, name: string, labels: string[], extra: Record<string, unknown> = {}, path = `/orgs/${s.org}/actions/runners/generate-jitconfig`): Promise<{ status: number; json: { runner: { id: number }; encoded_jit_config: string } }> {
  const r = await call(s, 'POST', path, tok, { name, runner_group_id: 1, labels, ...extra });
  return { status: r.status, json: r.json as { runner: { id: number }; encoded_jit_config: string } }; // shape checked by the contract test
}

function octokitFor(s: Simulator, installationId?: number): Octokit {
  return new Octokit({
    baseUrl: s.apiUrl, authStrategy: createAppAuth,
    auth: { appId: s.appId, privateKey: s.privateKeyPem, ...(installationId === undefined ? {} : { installationId }) },
  });
}

test('an Octokit App client authenticates, finds the installation and lists repositories', async (t) => {
  const s = await sim(t);
  const app = octokitFor(s);
  assert.equal((await app.rest.apps.getAuthenticated()).data?.id, s.appId);
  const inst = await app.rest.apps.getOrgInstallation({ org: 'ACME' });
  assert.equal(inst.data.id, s.installationId);
  const o = octokitFor(s, s.installationId);
  const repos = await o.paginate(o.rest.apps.listReposAccessibleToInstallation, { per_page: 1 });
  assert.deepEqual(repos.map((r) => r.full_name), ['acme/app', 'acme/web']);
});

test('JWT rules: expired, iat beyond the skew, too long a lifetime, wrong key, wrong issuer are 401', async (t) => {
  const s = await sim(t);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const cases: Array<[string, string]> = [
    ['expired', appJwt(s, { iat: nowS() - 700, exp: nowS() - 100 })],
    ['iat 120 s ahead', appJwt(s, { iat: nowS() + 120, exp: nowS() + 300 })],
    ['lifetime over 10 minutes', appJwt(s, { iat: nowS() - 10, exp: nowS() + 660 })],
    ['signed by another key', appJwt(s, {}, other)],
    ['issuer is another app', appJwt(s, { iss: s.appId + 1 })],
    ['garbage', 'eyJhbGciOiJSUzI1NiJ9.e30.AAAA'],
    ['unsigned (alg none)', `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iat: nowS() - 30, exp: nowS() + 500, iss: s.appId })).toString('base64url')}.`],
  ];
  for (const [what, token] of cases) {
    const r = await call(s, 'GET', '/app', `Bearer ${token}`);
    assert.equal(r.status, 401, what);
    const body = r.json as { message: string; documentation_url: string };
    assert.ok(body.message.length > 0 && body.documentation_url.startsWith('https://'), what);
  }
  assert.equal((await call(s, 'GET', '/app', `Bearer ${appJwt(s, { iat: nowS() + 30, exp: nowS() + 500 })}`)).status, 200, 'iat within 60 s skew is fine');
  assert.equal((await call(s, 'GET', '/app', `Bearer ${appJwt(s, { iss: String(s.appId) })}`)).status, 200, 'iss as a string is fine');
  assert.equal((await call(s, 'GET', '/app')).status, 401, 'no credentials');
  const tok = await installationToken(s);
  assert.equal((await call(s, 'GET', '/app', tok)).status, 401, 'an installation token is not an App JWT');
  assert.equal((await call(s, 'GET', `/orgs/${s.org}/actions/runners`, `Bearer ${appJwt(s)}`)).status, 403, 'a JWT is not an installation token');
});

test('an App without an installation in the org gets 404s like GitHub', async (t) => {
  const s = await sim(t, { installed: false });
  const auth = `Bearer ${appJwt(s)}`;
  assert.equal((await call(s, 'GET', `/orgs/${s.org}/installation`, auth)).status, 404);
  assert.deepEqual((await call(s, 'GET', '/app/installations', auth)).json, []);
  assert.equal((await call(s, 'POST', `/app/installations/${s.installationId}/access_tokens`, auth)).status, 404);
});

test('an installation token expires after tokenTtlSeconds and then answers Bad credentials', async (t) => {
  const s = await sim(t, { tokenTtlSeconds: 1 });
  const r = await call(s, 'POST', `/app/installations/${s.installationId}/access_tokens`, `Bearer ${appJwt(s)}`);
  const { token, expires_at: expiresAt } = r.json as { token: string; expires_at: string };
  assert.match(token, /^ghs_[A-Za-z0-9]{36}$/);
  assert.ok(Date.parse(expiresAt) - Date.now() <= 1000);
  if (Date.parse(expiresAt) > Date.now() + 50) assert.equal((await call(s, 'GET', '/installation/repositories', `token ${token}`)).status, 200);
  await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 20);
  const after = await call(s, 'GET', '/installation/repositories', `Bearer ${token}`);
  assert.equal(after.status, 401);
  assert.equal((after.json as { message: string }).message, 'Bad credentials');
});

test('rate-limit headers count per credential and every answer has a request id', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  const a = await call(s, 'GET', '/installation/repositories', tok);
  const b = await call(s, 'GET', '/installation/repositories', tok);
  assert.equal(a.headers.get('x-ratelimit-limit'), '5000');
  assert.equal(a.headers.get('x-ratelimit-resource'), 'core');
  assert.equal(Number(b.headers.get('x-ratelimit-used')), Number(a.headers.get('x-ratelimit-used')) + 1);
  assert.equal(Number(b.headers.get('x-ratelimit-remaining')), 5000 - Number(b.headers.get('x-ratelimit-used')));
  assert.ok(Number(a.headers.get('x-ratelimit-reset')) > nowS());
  assert.match(a.headers.get('x-github-request-id') ?? '', /^[0-9A-F:]+$/);
  assert.notEqual(a.headers.get('x-github-request-id'), b.headers.get('x-github-request-id'));
  assert.equal((await call(s, 'GET', '/nope', tok)).status, 404);
});

test('page/per_page pagination with Link headers, and Octokit paginate collects every job', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  const { runId } = await s.queueJob({ repo: 'app', labels: ['x'] });
  for (let i = 0; i < 4; i++) await s.queueJob({ repo: 'app', labels: ['x'], runId, name: `job-${i}` });
  const p1 = await call(s, 'GET', `/repos/acme/app/actions/runs/${runId}/jobs?per_page=2`, tok);
  const j1 = p1.json as { total_count: number; jobs: unknown[] };
  assert.equal(j1.total_count, 5);
  assert.equal(j1.jobs.length, 2);
  const link = p1.headers.get('link') ?? '';
  assert.match(link, /[?&]page=2[^>]*>; rel="next"/);
  assert.match(link, /[?&]page=3[^>]*>; rel="last"/);
  const p3 = await call(s, 'GET', `/repos/acme/app/actions/runs/${runId}/jobs?per_page=2&page=3`, tok);
  assert.equal((p3.json as { jobs: unknown[] }).jobs.length, 1);
  assert.match(p3.headers.get('link') ?? '', /rel="prev".*rel="first"/);
  assert.doesNotMatch(p3.headers.get('link') ?? '', /rel="next"/);
  const o = octokitFor(s, s.installationId);
  const all = await o.paginate(o.rest.actions.listJobsForWorkflowRun, { owner: 'acme', repo: 'app', run_id: runId, per_page: 2 });
  assert.equal(all.length, 5);
  const queued = await o.paginate(o.rest.actions.listWorkflowRunsForRepo, { owner: 'acme', repo: 'app', status: 'queued', per_page: 1 });
  assert.deepEqual(queued.map((r) => r.id), [runId]);
  assert.equal((await call(s, 'GET', '/installation/repositories?per_page=0', tok)).status, 422);
});

test('a JIT config registers an offline ephemeral runner with exactly the requested labels, in its group, in the runner format', async (t) => {
  const s = await sim(t, { runnerGroups: ['Default', 'flint'] });
  const tok = await installationToken(s);
  const r = await jit(s, tok, 'flint-a-1', ['flint', 'self-hosted', 'big', 'Big'], { runner_group_id: 2, work_folder: '_w' });
  assert.equal(r.status, 201);
  const [runner] = s.runners();
  assert.deepEqual(runner?.labels, ['flint', 'self-hosted', 'big'], 'no Linux or X64 added; a repeated label counts once');
  assert.equal(runner?.groupName, 'flint');
  assert.equal(runner?.status, 'offline');
  const cfg = decodeJitConfig(r.json.encoded_jit_config);
  assert.equal(cfg.runner.agentId, r.json.runner.id);
  assert.equal(cfg.runner.agentName, 'flint-a-1');
  assert.equal(cfg.runner.poolId, 2);
  assert.equal(cfg.runner.workFolder, '_w');
  assert.equal(cfg.runner.gitHubUrl, `${s.apiUrl}/acme`);
  assert.equal(cfg.credentials.scheme, 'OAuth');
  assert.ok(cfg.rsaParams.modulus.length > 300);
  const outer = JSON.parse(Buffer.from(r.json.encoded_jit_config, 'base64').toString('utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(outer).sort(), ['.credentials', '.credentials_rsaparams', '.runner']);
  assert.equal((await jit(s, tok, 'flint-a-1', ['flint'])).status, 409, 'names are unique');
  assert.equal((await jit(s, tok, 'flint-a-2', ['flint'], { runner_group_id: 99 })).status, 404, 'unknown group');
  assert.equal((await call(s, 'POST', `/orgs/${s.org}/actions/runners/generate-jitconfig`, tok, { name: 'x', runner_group_id: 1 })).status, 422, 'labels missing');
  assert.equal((await jit(s, tok, 'flint-a-3', [])).status, 422, 'labels empty');
});

test('a JIT config can be used once', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  const { json } = await jit(s, tok, 'once', ['flint']);
  const first = await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config });
  assert.equal(first.status, 200);
  assert.equal(s.runners()[0]?.status, 'online');
  const second = await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config });
  assert.equal(second.status, 409);
});

test('a runner takes the oldest queued job whose labels are a case-insensitive subset of its own', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  const tooMuch = await s.queueJob({ repo: 'app', labels: ['flint', 'arm64'] });
  const notAdded = await s.queueJob({ repo: 'app', labels: ['self-hosted', 'linux', 'flint'] });
  const older = await s.queueJob({ repo: 'web', labels: ['Self-Hosted', 'Flint'] });
  const newer = await s.queueJob({ repo: 'app', labels: ['flint'] });
  const { json } = await jit(s, tok, 'r1', ['flint', 'gpu', 'self-hosted']);
  const res = await runFakeRunner({ apiUrl: s.apiUrl, jitConfig: json.encoded_jit_config, waitSeconds: 2 });
  assert.equal(res.outcome, 'completed');
  assert.equal(res.outcome === 'completed' ? res.job.job_id : 0, older.jobId);
  const jobs = new Map(s.jobs().map((j) => [j.id, j]));
  assert.equal(jobs.get(older.jobId)?.status, 'completed');
  assert.equal(jobs.get(older.jobId)?.runnerName, 'r1');
  assert.equal(jobs.get(newer.jobId)?.status, 'queued');
  assert.equal(jobs.get(tooMuch.jobId)?.status, 'queued');
  assert.equal(jobs.get(notAdded.jobId)?.status, 'queued', 'a JIT runner has no linux label unless it was registered with one');
  assert.deepEqual(s.runners(), [], 'the ephemeral runner is gone after its job');
});

test('runner groups and repository-level runners restrict which jobs a runner may take', async (t) => {
  const s = await sim(t, { runnerGroups: ['Default', 'gpu'] });
  const tok = await installationToken(s);
  const grouped = await s.queueJob({ repo: 'app', labels: ['flint'], group: 'gpu' });
  const webJob = await s.queueJob({ repo: 'web', labels: ['flint'] });
  const defaultRunner = await jit(s, tok, 'd1', ['flint']);
  const repoRunner = await jit(s, tok, 'app-1', ['flint'], {}, '/repos/acme/app/actions/runners/generate-jitconfig');
  assert.equal(repoRunner.status, 201);
  assert.equal((await runFakeRunner({ apiUrl: s.apiUrl, jitConfig: repoRunner.json.encoded_jit_config, waitSeconds: 1 })).outcome, 'no-job',
    'the app runner may not take web jobs, nor a job for group gpu');
  const d = await runFakeRunner({ apiUrl: s.apiUrl, jitConfig: defaultRunner.json.encoded_jit_config, waitSeconds: 1 });
  assert.equal(d.outcome === 'completed' ? d.job.job_id : 0, webJob.jobId, 'the Default group runner skips the gpu-group job');
  const gpu = await jit(s, tok, 'g1', ['flint'], { runner_group_id: 2 });
  const g = await runFakeRunner({ apiUrl: s.apiUrl, jitConfig: gpu.json.encoded_jit_config, waitSeconds: 1 });
  assert.equal(g.outcome === 'completed' ? g.job.job_id : 0, grouped.jobId);
});

test('workflow_job webhooks are signed, carry GitHub headers and follow the job through its life', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 'It’s a Secret to Everybody' } });
  const tok = await installationToken(s);
  const { jobId } = await s.queueJob({ repo: 'app', labels: ['flint'] });
  const { json } = await jit(s, tok, 'r1', ['flint']);
  await runFakeRunner({ apiUrl: s.apiUrl, jitConfig: json.encoded_jit_config, waitSeconds: 2, conclusion: 'failure' });
  const got = await rcv.waitFor(3);
  assert.deepEqual(got.map((g) => g.json.action), ['queued', 'in_progress', 'completed']);
  for (const g of got) {
    assert.equal(g.headers['x-github-event'], 'workflow_job');
    assert.match(String(g.headers['x-github-delivery']), /^[0-9a-f-]{36}$/);
    assert.match(String(g.headers['user-agent']), /^GitHub-Hookshot\//);
    assert.equal(g.headers['content-type'], 'application/json');
    assert.ok(g.headers['x-github-hook-id']);
    assert.equal(await verify('It’s a Secret to Everybody', g.body, String(g.headers['x-hub-signature-256'])), true);
    assert.equal(await verify('another secret', g.body, String(g.headers['x-hub-signature-256'])), false);
    assert.equal((g.json.workflow_job as { id: number }).id, jobId);
  }
  const done = got[2]?.json.workflow_job as { conclusion: string; runner_name: string };
  assert.equal(done.conclusion, 'failure');
  assert.equal(done.runner_name, 'r1');
  await s.settled();
  assert.deepEqual(s.deliveries().map((d) => [d.action, d.statusCode, d.status, d.redelivery]), [
    ['queued', 200, 'OK', false], ['in_progress', 200, 'OK', false], ['completed', 200, 'OK', false],
  ]);
});

test('the deliveries API pages with cursors, shows failures, and redelivers with the same GUID', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  rcv.status = 500;
  await s.queueJob({ repo: 'app', labels: ['a'] });
  rcv.status = 200;
  await s.queueJob({ repo: 'app', labels: ['b'] });
  await s.queueJob({ repo: 'app', labels: ['c'] });
  const auth = `Bearer ${appJwt(s)}`;
  const p1 = await call(s, 'GET', '/app/hook/deliveries?per_page=2', auth);
  const items = p1.json as Array<{ id: number; guid: string; status_code: number; status: string; action: string }>;
  assert.deepEqual(items.map((i) => i.action), ['queued', 'queued']);
  const next = /<([^>]+)>; rel="next"/.exec(p1.headers.get('link') ?? '')?.[1];
  assert.ok(next, 'a next link');
  const p2 = await call(s, 'GET', new URL(next).pathname + new URL(next).search, auth);
  const rest = p2.json as typeof items;
  assert.equal(rest.length, 1);
  assert.equal(rest[0]?.status_code, 500);
  assert.equal(rest[0]?.status, 'Invalid HTTP Response: 500');
  assert.equal(p2.headers.get('link'), null);
  const failed = (await call(s, 'GET', '/app/hook/deliveries?status=failure', auth)).json as typeof items;
  assert.deepEqual(failed.map((f) => f.id), [rest[0]?.id]);
  const succeeded = (await call(s, 'GET', '/app/hook/deliveries?status=success', auth)).json as typeof items;
  assert.deepEqual(succeeded.map((f) => f.id), items.map((i) => i.id), 'status=success: the 2xx deliveries (GitHub: status_code 200–399)');
  const one = await call(s, 'GET', `/app/hook/deliveries/${rest[0]?.id}`, auth);
  assert.equal((one.json as { request: { payload: { action: string } } }).request.payload.action, 'queued');
  const redo = await call(s, 'POST', `/app/hook/deliveries/${rest[0]?.id}/attempts`, auth);
  assert.equal(redo.status, 202);
  await s.settled();
  const last = s.deliveries().at(-1);
  assert.equal(last?.guid, rest[0]?.guid);
  assert.equal(last?.redelivery, true);
  assert.equal(last?.statusCode, 200);
  assert.equal(rcv.received.at(-1)?.headers['x-github-delivery'], rest[0]?.guid);
  assert.equal((await call(s, 'POST', '/app/hook/deliveries/1/attempts', auth)).status, 404);
});

test('REST faults: N server errors on matching endpoints, primary and secondary rate limits, latency', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  s.faults.set({ serverErrors: { count: 2, status: 503, match: 'generate-jitconfig$' } });
  assert.equal((await call(s, 'GET', '/installation/repositories', tok)).status, 200, 'not matching');
  assert.equal((await jit(s, tok, 'a', ['x'])).status, 503);
  assert.equal((await jit(s, tok, 'a', ['x'])).status, 503);
  assert.equal((await jit(s, tok, 'a', ['x'])).status, 201);

  s.faults.set({ primaryRateLimit: { count: 1, status: 429, resetAfterSeconds: 30 } });
  const limited = await call(s, 'GET', '/installation/repositories', tok);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
  assert.ok(Math.abs(Number(limited.headers.get('x-ratelimit-reset')) - (nowS() + 30)) <= 2);
  assert.equal((await call(s, 'GET', '/installation/repositories', tok)).status, 200);

  s.faults.set({ secondaryRateLimit: { count: 1, retryAfterSeconds: 7 } });
  const second = await call(s, 'GET', '/installation/repositories', tok);
  assert.equal(second.status, 403);
  assert.equal(second.headers.get('retry-after'), '7');
  assert.match((second.json as { message: string }).message, /secondary rate limit/);

  s.faults.set({ latencyMs: 150 });
  const started = Date.now();
  await call(s, 'GET', '/installation/repositories', tok);
  assert.ok(Date.now() - started >= 140);
  s.faults.clear();
  assert.deepEqual(s.requests().filter((r) => r.path.endsWith('generate-jitconfig')).map((r) => r.status), [503, 503, 201]);
});

test('webhook faults: a dropped delivery is recorded as failed, a duplicate arrives twice, a held one arrives late', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  s.faults.set({ webhooks: { drop: 1 } });
  await s.queueJob({ repo: 'app', labels: ['dropped'] });
  assert.equal(rcv.received.length, 0);
  assert.equal(s.deliveries()[0]?.status, 'failed to connect to host');
  assert.equal(s.deliveries()[0]?.statusCode, 0);

  s.faults.set({ webhooks: { duplicate: 1 } });
  await s.queueJob({ repo: 'app', labels: ['twice'] });
  assert.equal(rcv.received.length, 2);
  assert.equal(rcv.received[0]?.headers['x-github-delivery'], rcv.received[1]?.headers['x-github-delivery']);

  s.faults.set({ webhooks: { reorder: 1, holdMs: 5000 } });
  await s.queueJob({ repo: 'app', labels: ['first'] });
  await s.queueJob({ repo: 'app', labels: ['second'] });
  await s.settled();
  const labels = rcv.received.slice(2).map((r) => (r.json.workflow_job as { labels: string[] }).labels[0]);
  assert.deepEqual(labels, ['second', 'first']);
});

test('deleting a runner: 422 while it runs a job, 204 when idle, and it can no longer take jobs', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  await s.queueJob({ repo: 'app', labels: ['flint'] });
  const busy = await jit(s, tok, 'busy', ['flint']);
  const c = await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: busy.json.encoded_jit_config });
  const session = (c.json as { session: string }).session;
  assert.equal((await call(s, 'POST', '/_sim/runner/acquire', undefined, { session })).status, 200);
  assert.equal((await call(s, 'GET', `/orgs/acme/actions/runners/${busy.json.runner.id}`, tok)).status, 200);
  assert.equal((await call(s, 'DELETE', `/orgs/acme/actions/runners/${busy.json.runner.id}`, tok)).status, 422);
  const idle = await jit(s, tok, 'idle', ['flint']);
  assert.equal((await call(s, 'DELETE', `/orgs/acme/actions/runners/${idle.json.runner.id}`, tok)).status, 204);
  assert.equal((await call(s, 'GET', `/orgs/acme/actions/runners/${idle.json.runner.id}`, tok)).status, 404);
  assert.equal((await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: idle.json.encoded_jit_config })).status, 404);
  const list = await call(s, 'GET', '/orgs/acme/actions/runners?name=busy', tok);
  assert.equal((list.json as { total_count: number }).total_count, 1);
});

test('the control API queues jobs, sets faults and reports state', async (t) => {
  const s = await sim(t);
  const q = await call(s, 'POST', '/_sim/jobs', undefined, { repo: 'web', labels: ['flint'] });
  assert.equal(q.status, 201);
  assert.equal((await call(s, 'POST', '/_sim/jobs', undefined, { repo: 'nope', labels: ['flint'] })).status, 422);
  assert.equal((await call(s, 'POST', '/_sim/faults', undefined, { serverErrors: { count: 1 } })).status, 204);
  const tok = await installationToken(s).catch(() => undefined);
  assert.equal(tok, undefined, 'the token request met the 502');
  assert.equal((await call(s, 'DELETE', '/_sim/faults')).status, 204);
  assert.equal((await call(s, 'POST', '/_sim/faults', undefined, { serverErrors: { count: 1, match: '(' } })).status, 422, 'a bad pattern');
  assert.throws(() => s.faults.set({ serverErrors: { count: 1, match: '[' } }), SyntaxError);
  const state = (await call(s, 'GET', '/_sim/state')).json as { jobs: Array<{ id: number }>; apiUrl: string };
  assert.equal(state.apiUrl, s.apiUrl);
  assert.equal((await call(s, 'POST', '/_sim/settled')).status, 204, 'every delivery attempted');
  assert.deepEqual(state.jobs.map((j) => j.id), [(q.json as { jobId: number }).jobId]);
  assert.equal((await call(s, 'PUT', '/_sim/installation', undefined, { installed: false })).status, 204);
  assert.equal((await call(s, 'GET', '/orgs/acme/installation', `Bearer ${appJwt(s)}`)).status, 404);
});

test('cancelling a queued job completes it as cancelled with no runner; cancelling a running one removes its runner', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  const tok = await installationToken(s);
  const queued = await s.queueJob({ repo: 'app', labels: ['flint'] });
  await s.cancelJob(queued.jobId);
  const done = rcv.received.at(-1)?.json;
  assert.equal(done?.action, 'completed');
  assert.equal((done?.workflow_job as { conclusion: string }).conclusion, 'cancelled');
  assert.equal((done?.workflow_job as { runner_id: number | null }).runner_id, null);
  await assert.rejects(s.cancelJob(queued.jobId), /already completed/);

  const running = await s.queueJob({ repo: 'app', labels: ['flint'] });
  const { json } = await jit(s, tok, 'r1', ['flint']);
  const session = ((await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config })).json as { session: string }).session;
  assert.equal((await call(s, 'POST', '/_sim/runner/acquire', undefined, { session })).status, 200);
  const cancelled = await call(s, 'POST', `/_sim/jobs/${running.jobId}/cancel`);
  assert.deepEqual(cancelled.json, { jobId: running.jobId, conclusion: 'cancelled' });
  assert.deepEqual(s.runners(), []);
  assert.equal((await call(s, 'POST', '/_sim/runner/complete', undefined, { session })).status, 404);
  assert.equal((await call(s, 'POST', `/_sim/jobs/${running.jobId}/cancel`)).status, 409);
});

test('the primary rate limit also trips for real once a credential spends its hourly budget', async (t) => {
  const s = await sim(t, { rateLimit: 3 });
  const tok = await installationToken(s);
  for (let i = 1; i <= 3; i++) {
    const r = await call(s, 'GET', '/installation/repositories', tok);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-ratelimit-remaining'), String(3 - i));
  }
  const over = await call(s, 'GET', '/installation/repositories', tok);
  assert.equal(over.status, 403);
  assert.equal(over.headers.get('x-ratelimit-remaining'), '0');
  assert.match((over.json as { message: string }).message, /API rate limit exceeded for installation ID/);
  assert.equal((await call(s, 'GET', '/app', `Bearer ${appJwt(s)}`)).status, 200, 'the App JWT has its own budget');
});

test('publicUrl goes into links and JIT configs while apiUrl stays the listening address', async (t) => {
  const s = await sim(t, { publicUrl: 'http://192.0.2.1:8080/' });
  const tok = await installationToken(s);
  const { json } = await jit(s, tok, 'p1', ['flint']);
  const cfg = decodeJitConfig(json.encoded_jit_config);
  assert.equal(cfg.runner.gitHubUrl, 'http://192.0.2.1:8080/acme');
  assert.match(s.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const inst = await call(s, 'GET', '/orgs/acme/installation', `Bearer ${appJwt(s)}`);
  assert.equal((inst.json as { access_tokens_url: string }).access_tokens_url, `http://192.0.2.1:8080/app/installations/${s.installationId}/access_tokens`);
});

test('a delivery held back by a reorder fault goes out after holdMs even when nothing follows it', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  s.faults.set({ webhooks: { reorder: 1, holdMs: 200 } });
  const started = Date.now();
  await s.queueJob({ repo: 'app', labels: ['late'] });
  assert.equal(rcv.received.length, 0);
  await rcv.waitFor(1, 3000);
  assert.ok(Date.now() - started >= 190);
  await s.settled();
  assert.equal(s.deliveries().length, 1);
});

test('close() ends a runner long poll at once instead of waiting out wait_seconds', async (t) => {
  const s = await startSimulator();
  const tok = await installationToken(s);
  const { json } = await jit(s, tok, 'lp', ['flint']);
  const session = ((await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config })).json as { session: string }).session;
  const poll = fetch(`${s.apiUrl}/_sim/runner/acquire`, { method: 'POST', body: JSON.stringify({ session, wait_seconds: 40 }) }).then((r) => r.status, () => 'aborted');
  await sleep(200);
  const started = Date.now();
  await s.close();
  await poll;
  assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
  t.diagnostic(`close with a pending long poll: ${Date.now() - started} ms`);
});

test('a runner lost mid-job goes offline but stays registered until deleted, and its job fails', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  const tok = await installationToken(s);
  const { jobId } = await s.queueJob({ repo: 'app', labels: ['flint'] });
  const { json } = await jit(s, tok, 'doomed', ['flint']);
  const session = ((await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config })).json as { session: string }).session;
  await call(s, 'POST', '/_sim/runner/acquire', undefined, { session });
  assert.equal((await call(s, 'POST', `/_sim/runners/${json.runner.id}/lost`)).status, 204);
  await s.settled();
  assert.equal(rcv.received.at(-1)?.json.action, 'completed');
  assert.equal(s.jobs().find((j) => j.id === jobId)?.conclusion, 'failure');
  const listed = await call(s, 'GET', `/orgs/acme/actions/runners/${json.runner.id}`, tok);
  assert.equal((listed.json as { status: string; busy: boolean }).status, 'offline');
  assert.equal((listed.json as { busy: boolean }).busy, false);
  assert.equal((await call(s, 'POST', '/_sim/runner/acquire', undefined, { session })).status, 404, 'the lost runner cannot come back');
  assert.equal((await call(s, 'DELETE', `/orgs/acme/actions/runners/${json.runner.id}`, tok)).status, 204);
  await assert.rejects(s.loseRunner(json.runner.id), /does not exist/);
});

test('ten runners polling at once take ten jobs, each job exactly once', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  const tok = await installationToken(s);
  const configs = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await jit(s, tok, `c${i}`, ['flint'])).json.encoded_jit_config));
  const runs = configs.map((jitConfig) => runFakeRunner({ apiUrl: s.apiUrl, jitConfig, waitSeconds: 10 }));
  await sleep(100);
  for (let i = 0; i < 10; i++) await s.queueJob({ repo: i % 2 === 0 ? 'app' : 'web', labels: ['flint'] });
  const results = await Promise.all(runs);
  const taken = results.map((r) => (r.outcome === 'completed' ? r.job.job_id : 0));
  assert.equal(new Set(taken).size, 10);
  assert.ok(s.jobs().every((j) => j.status === 'completed' && j.conclusion === 'success'));
  await s.settled();
  const actions = rcv.received.map((r) => r.json.action);
  assert.deepEqual([actions.filter((a) => a === 'queued').length, actions.filter((a) => a === 'in_progress').length, actions.filter((a) => a === 'completed').length], [10, 10, 10]);
});

test('a receiver that is down is recorded as failed to connect, and a redelivery reaches it once it is back', async (t) => {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: 'http://127.0.0.1:1/webhook', secret: 's' } });
  await s.queueJob({ repo: 'app', labels: ['flint'] });
  const [failed] = s.deliveries();
  assert.equal(failed?.status, 'failed to connect to host');
  assert.equal(failed?.statusCode, 0);
  s.setWebhook({ url: rcv.url, secret: 's' });
  assert.equal((await call(s, 'POST', `/app/hook/deliveries/${failed?.id}/attempts`, `Bearer ${appJwt(s)}`)).status, 202);
  await s.settled();
  assert.equal(rcv.received.length, 1);
  assert.equal(rcv.received[0]?.headers['x-github-delivery'], failed?.guid);
});

test('a receiver slower than the timeout is recorded as timed out', async (t) => {
  const hanging = createServer(() => { /* never answers */ });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { hanging.closeAllConnections(); hanging.close(() => resolve()); }));
  const { port } = hanging.address() as AddressInfo; // TCP listener
  const s = await sim(t, { webhook: { url: `http://127.0.0.1:${port}/`, secret: 's' }, webhookTimeoutMs: 300 });
  await s.queueJob({ repo: 'app', labels: ['flint'] });
  const [d] = s.deliveries();
  assert.equal(d?.status, 'timed out');
  assert.equal(d?.statusCode, 0);
  assert.ok((d?.durationMs ?? 0) >= 290);
});

test('X-GitHub-Api-Version: a known version is echoed, an unknown one is 400', async (t) => {
  const s = await sim(t);
  const ask = (v: string): Promise<Response> => fetch(`${s.apiUrl}/app`, { headers: { authorization: `Bearer ${appJwt(s)}`, 'x-github-api-version': v } });
  const ok = await ask('2022-11-28');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('x-github-api-version-selected'), '2022-11-28');
  const bad = await ask('2019-01-01');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { message: string }).message, /API version 2019-01-01 is not supported/);
});

test('runner endpoints take form-encoded bodies (busybox wget --post-data), keeping a + in values', async (t) => {
  assert.deepEqual(parseLooseBody('jitconfig=ab+c/d==&wait_seconds=3'), { jitconfig: 'ab+c/d==', wait_seconds: '3' });
  assert.deepEqual(parseLooseBody('{"session":"x"}'), { session: 'x' });
  const s = await sim(t);
  const tok = await installationToken(s);
  const made = await jit(s, tok, 'form', ['flint']);
  const res = await fetch(`${s.apiUrl}/_sim/runner/connect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `jitconfig=${made.json.encoded_jit_config}` });
  assert.equal(res.status, 200, await res.clone().text());
  const { session } = await res.json() as { session: string };
  const polled = await fetch(`${s.apiUrl}/_sim/runner/acquire`, { method: 'POST', body: `session=${session}&wait_seconds=0` });
  assert.equal(polled.status, 204);
});

test('issuedSecrets lists every installation token and JIT config handed out and the webhook secret; GET /_sim/secrets answers the same', async (t) => {
  const s = await sim(t, { webhook: { url: 'http://127.0.0.1:9/hook', secret: 'sim-hook-secret' } });
  assert.deepEqual(s.issuedSecrets(), { installationTokens: [], jitConfigs: [], webhookSecret: 'sim-hook-secret' });
  const tok = await installationToken(s);
  const a = await jit(s, tok, 'r-1', ['flint']);
  const b = await jit(s, tok, 'r-2', ['flint']);
  const issued = s.issuedSecrets();
  assert.deepEqual(issued.installationTokens, [tok.replace(/^token /, '')]);
  assert.deepEqual(issued.jitConfigs, [a.json.encoded_jit_config, b.json.encoded_jit_config]);
  assert.deepEqual((await call(s, 'GET', '/_sim/secrets')).json, issued);
  s.setWebhook(undefined);
  assert.equal(s.issuedSecrets().webhookSecret, null);
});

test('a runner long poll whose client went away takes no job: one queued afterwards waits for a runner that is listening', async (t) => {
  const s = await sim(t);
  const tok = await installationToken(s);
  const { json } = await jit(s, tok, 'gone', ['flint']);
  const session = ((await call(s, 'POST', '/_sim/runner/connect', undefined, { jitconfig: json.encoded_jit_config })).json as { session: string }).session;
  // The runner's process is killed mid-poll (its VM asked to stop): its connection closes, the runner stays registered.
  const abort = new AbortController();
  const poll = fetch(`${s.apiUrl}/_sim/runner/acquire`, { method: 'POST', body: JSON.stringify({ session, wait_seconds: 40 }), signal: abort.signal }).then(() => 'answered', () => 'aborted');
  await sleep(200);
  abort.abort();
  assert.equal(await poll, 'aborted');
  // The simulator runs in this process: its socket learns of the close in a
  // later turn's I/O phase. Queued in the same turn, the job could meet the
  // poll's next round first, before any server could know the client left.
  await sleep(200);
  const { jobId } = await s.queueJob({ repo: 'app', labels: ['flint'] });
  await sleep(400); // several of the poll's 100 ms rounds
  assert.equal(s.jobs().find((j) => j.id === jobId)?.status, 'queued', 'not handed to a poll nobody reads');
  assert.equal(s.runners().find((r) => r.name === 'gone')?.busy, false);
});
