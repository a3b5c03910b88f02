// The GitHub client against the GitHub simulator (a real HTTP server on
// loopback): installation discovery, runner groups, JIT runners, runners,
// jobs, queued-job recovery and webhook deliveries.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { startSimulator, signJwt, decodeJitConfig, type Simulator, type SimulatorOptions } from '../../../tools/github-sim/index.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { createGitHubClient, DEFAULT_RUNNER_GROUP_ID, type GitHubClientOptions } from './client.ts';
import type { GitHubLog } from './log.ts';
import type { GitHubPort } from '../../daemon/ports/github.ts';

interface LogLine { level: string; msg: string; fields: Record<string, unknown> }

function recordingLog(): GitHubLog & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string): void => {
    lines.push({ level, msg, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), text: () => JSON.stringify(lines) };
}

async function setup(t: TestContext, simOpts: SimulatorOptions = {}, clientOpts: Partial<GitHubClientOptions> = {}) {
  const sim = await startSimulator(simOpts);
  t.after(() => sim.close());
  const log = recordingLog();
  const gh: GitHubPort = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    log,
    retryBaseMs: 10,
    ...clientOpts,
  });
  return { sim, gh, log };
}

function count(sim: Simulator, method: string, path: RegExp): number {
  return sim.requests().filter((r) => r.method === method && path.test(r.path)).length;
}

/** An installation token straight from the simulator, for seeding state without the client under test. */
async function rawToken(sim: Simulator): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = signJwt({ iat: now - 30, exp: now + 500, iss: sim.appId }, sim.privateKeyPem);
  const res = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
  assert.equal(res.status, 201);
  const body = await res.json() as { token: string }; // shape checked by the simulator's contract test
  return body.token;
}

async function seedRunners(sim: Simulator, n: number): Promise<void> {
  const token = await rawToken(sim);
  for (let i = 0; i < n; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, n - i) }, async (_, k) => {
      const res = await fetch(`${sim.apiUrl}/orgs/${sim.org}/actions/runners/generate-jitconfig`, {
        method: 'POST',
        headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `seed-${i + k}`, runner_group_id: 1, labels: ['seed'] }),
      });
      assert.equal(res.status, 201);
    }));
  }
}

async function control(sim: Simulator, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${sim.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(res.status < 300, `${path} answered ${res.status}: ${await res.clone().text()}`);
  return res.status === 204 ? {} : await res.json() as Record<string, unknown>; // control API answers JSON objects
}

test('the installation is discovered once and reused', async (t) => {
  const { sim, gh } = await setup(t);
  assert.equal(await gh.installationId(), sim.installationId);
  assert.equal(await gh.installationId(), sim.installationId);
  await gh.listRunners({ kind: 'organization' });
  assert.equal(count(sim, 'GET', /^\/orgs\/acme\/installation$/), 1);
});

test('an App not installed on the organization is a clear error that says where to install it', async (t) => {
  const { gh } = await setup(t, { installed: false });
  for (const op of [() => gh.installationId(), () => gh.listRunners({ kind: 'organization' })]) {
    await assert.rejects(op(), (err) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_APP_NOT_INSTALLED'), String(err));
      assert.match(err.message, /not installed on organization "acme"/);
      assert.match(err.hint, /Install the App on organization acme/);
      return true;
    });
  }
});

test('a private key of another App is refused: FLINT_ERR_GITHUB_AUTH_FAILED', async (t) => {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const sim = await startSimulator();
  t.after(() => sim.close());
  const gh = createGitHubClient({ github: { appId: String(sim.appId), organization: sim.org, privateKey: other, apiUrl: sim.apiUrl } });
  await assert.rejects(gh.installationId(), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_AUTH_FAILED'));
});

test('a private key that is not a PEM fails as FLINT_ERR_GITHUB_PRIVATE_KEY_INVALID without echoing the key', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const secret = 'not-a-key-SECRET-MATERIAL-1234567890';
  const gh = createGitHubClient({ github: { appId: String(sim.appId), organization: sim.org, privateKey: secret, apiUrl: sim.apiUrl } });
  await assert.rejects(gh.installationId(), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_PRIVATE_KEY_INVALID'), String(err));
    assert.ok(!err.message.includes(secret) && !JSON.stringify(err.details).includes(secret));
    return true;
  });
  assert.equal(sim.requests().length, 0, 'nothing was sent');
});

test('runner group names resolve to ids (case-insensitively); a missing group lists the ones that exist', async (t) => {
  const { gh } = await setup(t, { runnerGroups: ['Default', 'gpu-large'] });
  assert.deepEqual((await gh.listRunnerGroups()).map((g) => [g.name, g.isDefault]), [['Default', true], ['gpu-large', false]]);
  const gpu = await gh.runnerGroupId('gpu-large');
  assert.equal(await gh.runnerGroupId('GPU-Large'), gpu);
  assert.equal(await gh.runnerGroupId('Default'), DEFAULT_RUNNER_GROUP_ID);
  await assert.rejects(gh.runnerGroupId('arm64'), (err) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND'));
    assert.match(err.message, /"arm64" does not exist in organization acme; the groups there are: "Default", "gpu-large"/);
    return true;
  });
});

test('a JIT runner at organization level is registered offline in its group; its config is never logged', async (t) => {
  const { sim, gh, log } = await setup(t, { runnerGroups: ['Default', 'flint'] });
  const group = await gh.runnerGroupId('flint');
  const jit = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-h7k2-00001', runnerGroupId: group, labels: ['flint', 'Linux'], workFolder: '_w' });
  assert.equal(jit.runnerName, 'flint-h7k2-00001');
  const cfg = decodeJitConfig(jit.encodedJitConfig);
  assert.equal(cfg.runner.agentId, jit.runnerId);
  assert.equal(cfg.runner.agentName, 'flint-h7k2-00001');
  assert.equal(cfg.runner.workFolder, '_w');
  assert.equal(cfg.runner.poolId, group);
  const r = sim.runners().find((x) => x.id === jit.runnerId);
  assert.ok(r);
  assert.equal(r.status, 'offline');
  assert.equal(r.groupId, group);
  assert.equal(r.scope, 'org');
  assert.ok(r.labels.includes('flint'));
  assert.ok(!log.text().includes(jit.encodedJitConfig.slice(0, 40)), 'no part of the JIT config in the log');
  assert.ok(!/eyJ|ghs_|BEGIN RSA/.test(log.text()), 'no JWT, token, key or base64 JSON (JIT config) in the log');
  assert.ok(log.lines.some((l) => l.msg === 'registered a JIT runner' && l.fields.runnerId === jit.runnerId));
});

test('a JIT runner at repository level lands in that repository', async (t) => {
  const { sim, gh } = await setup(t);
  const scope = { kind: 'repository', owner: 'acme', repo: 'web' } as const;
  const jit = await gh.createJitRunner({ scope, name: 'flint-h7k2-00002', runnerGroupId: DEFAULT_RUNNER_GROUP_ID, labels: ['flint'] });
  assert.deepEqual(sim.runners().find((x) => x.id === jit.runnerId)?.scope, { repo: 'web' });
  assert.deepEqual((await gh.listRunners(scope)).map((r) => r.id), [jit.runnerId]);
  assert.deepEqual(await gh.listRunners({ kind: 'organization' }), []);
  assert.equal((await gh.getRunner(scope, jit.runnerId))?.name, 'flint-h7k2-00002');
  await gh.deleteRunner(scope, jit.runnerId);
  assert.equal(sim.runners().length, 0);
});

test('a lost JIT answer: the offline runner of the same name is replaced and registration succeeds', async (t) => {
  const { sim, gh, log } = await setup(t);
  const req = { scope: { kind: 'organization' }, name: 'flint-h7k2-00003', runnerGroupId: 1, labels: ['flint'] } as const;
  const first = await gh.createJitRunner(req);
  const second = await gh.createJitRunner(req);
  assert.notEqual(second.runnerId, first.runnerId);
  assert.deepEqual(sim.runners().map((r) => r.id), [second.runnerId]);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /already registered but offline/.test(l.msg)));
});

test('a runner of the same name that is online is not touched: FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN', async (t) => {
  const { sim, gh } = await setup(t);
  const req = { scope: { kind: 'organization' }, name: 'flint-h7k2-00004', runnerGroupId: 1, labels: ['flint'] } as const;
  const first = await gh.createJitRunner(req);
  await control(sim, '/_sim/runner/connect', { jitconfig: first.encodedJitConfig });
  await assert.rejects(gh.createJitRunner(req), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN'));
  assert.deepEqual(sim.runners().map((r) => r.id), [first.runnerId]);
});

test('listing 12 runners five per page walks every page', async (t) => {
  // The simulator makes an RSA key per JIT config, so many runners are
  // slow to create; small pages exercise the same paging (250 runners at
  // GitHub's 100 per page: client-pagination.test.ts).
  const { sim, gh } = await setup(t, {}, { pageSize: 5 });
  await seedRunners(sim, 12);
  const runners = await gh.listRunners({ kind: 'organization' });
  assert.equal(runners.length, 12);
  assert.equal(new Set(runners.map((r) => r.id)).size, 12);
  assert.equal(count(sim, 'GET', /^\/orgs\/acme\/actions\/runners$/), 3);
});

test('a missing runner reads as undefined; deleting a runner twice succeeds', async (t) => {
  const { sim, gh, log } = await setup(t);
  const jit = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-h7k2-00005', runnerGroupId: 1, labels: ['flint'] });
  assert.equal(await gh.getRunner({ kind: 'organization' }, jit.runnerId + 1000), undefined);
  await gh.deleteRunner({ kind: 'organization' }, jit.runnerId);
  await gh.deleteRunner({ kind: 'organization' }, jit.runnerId);
  assert.equal(await gh.getRunner({ kind: 'organization' }, jit.runnerId), undefined);
  assert.equal(sim.runners().length, 0);
  assert.deepEqual(log.lines.filter((l) => l.level === 'error' || l.level === 'warn'), [], 'expected 404s are not reported as problems');
});

test('deleting a runner that is running a job is FLINT_ERR_GITHUB_RUNNER_BUSY', async (t) => {
  const { sim, gh } = await setup(t);
  const jit = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-h7k2-00006', runnerGroupId: 1, labels: ['flint'] });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['flint'] });
  const { session } = await control(sim, '/_sim/runner/connect', { jitconfig: jit.encodedJitConfig });
  await control(sim, '/_sim/runner/acquire', { session });
  await assert.rejects(gh.deleteRunner({ kind: 'organization' }, jit.runnerId), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_BUSY'));
  const job = await gh.getJob('acme', 'app', jobId);
  assert.equal(job?.status, 'in_progress');
  assert.equal(job.runnerName, 'flint-h7k2-00006');
  const runner = await gh.getRunner({ kind: 'organization' }, jit.runnerId);
  assert.equal(runner?.busy, true);
  assert.equal(runner.status, 'online');
});

test('a job reads with its current status; a job that does not exist is undefined', async (t) => {
  const { sim, gh } = await setup(t);
  const { jobId, runId } = await sim.queueJob({ repo: 'web', labels: ['flint', 'large'], name: 'test' });
  const job = await gh.getJob('acme', 'web', jobId);
  assert.deepEqual(
    job && { id: job.id, runId: job.runId, owner: job.owner, repo: job.repo, name: job.name, status: job.status, labels: job.labels },
    { id: jobId, runId, owner: 'acme', repo: 'web', name: 'test', status: 'queued', labels: ['flint', 'large'] },
  );
  assert.equal(job?.runAttempt, 1);
  assert.equal(await gh.getJob('acme', 'web', jobId + 999), undefined);
  assert.equal(await gh.getJob('acme', 'app', jobId), undefined, 'the job is in another repository');
});

test('queued jobs are found across 105 repositories, 150 queued runs in one, 120 jobs in one run, and in runs already in progress', async (t) => {
  const repos = Array.from({ length: 105 }, (_, i) => `repo-${String(i).padStart(3, '0')}`);
  const { sim, gh } = await setup(t, { repos }, { scanConcurrency: 8 });
  const want = new Set<number>();
  for (let i = 0; i < 150; i++) want.add((await sim.queueJob({ repo: 'repo-000', labels: ['flint'] })).jobId);
  const big = await sim.queueJob({ repo: 'repo-050', labels: ['flint'] });
  want.add(big.jobId);
  for (let i = 1; i < 120; i++) want.add((await sim.queueJob({ repo: 'repo-050', labels: ['flint'], runId: big.runId, name: `shard-${i}` })).jobId);
  for (const r of repos.slice(90)) want.add((await sim.queueJob({ repo: r, labels: ['flint'] })).jobId);
  // A run with one job taken by a runner (so the run is in_progress) and one still queued.
  const taken = await sim.queueJob({ repo: 'repo-104', labels: ['taken'] });
  const waiting = await sim.queueJob({ repo: 'repo-104', labels: ['flint'], runId: taken.runId, name: 'waits' });
  want.add(waiting.jobId);
  const jit = await gh.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-h7k2-00007', runnerGroupId: 1, labels: ['taken'] });
  const { session } = await control(sim, '/_sim/runner/connect', { jitconfig: jit.encodedJitConfig });
  const acquired = await control(sim, '/_sim/runner/acquire', { session });
  assert.equal(acquired.job_id, taken.jobId);

  const jobs = await gh.listQueuedJobs();
  assert.equal(jobs.length, want.size);
  assert.deepEqual(new Set(jobs.map((j) => j.id)), want);
  assert.ok(jobs.every((j) => j.status === 'queued' && j.owner === 'acme'));
  assert.equal(jobs.find((j) => j.id === waiting.jobId)?.repo, 'repo-104');
  assert.equal(count(sim, 'GET', /^\/installation\/repositories$/), 2, 'two pages of repositories');
  assert.equal(sim.requests().filter((r) => r.path === '/repos/acme/repo-000/actions/runs' && r.query.includes('status=queued')).length, 2, 'two pages of runs');
  assert.equal(count(sim, 'GET', new RegExp(`^/repos/acme/repo-050/actions/runs/${big.runId}/jobs$`)), 2, 'two pages of jobs');
});

/** A webhook receiver whose answer the test switches. */
async function receiver(t: TestContext): Promise<{ url: string; status: { code: number } }> {
  const status = { code: 500 };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status.code);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`, status }; // listening on TCP: AddressInfo
}

test('failed webhook deliveries: one per event without a successful attempt; a redelivery that succeeds clears it', async (t) => {
  const hook = await receiver(t);
  const { sim, gh, log } = await setup(t, { webhook: { url: hook.url, secret: 's3cret' } });
  for (let i = 0; i < 3; i++) await sim.queueJob({ repo: 'app', labels: ['flint'] });
  await sim.settled();
  const failed = await gh.listFailedDeliveries();
  assert.equal(failed.length, 3);
  assert.ok(failed.every((d) => d.event === 'workflow_job' && d.action === 'queued' && d.statusCode === 500));

  hook.status.code = 200;
  const first = failed[0];
  assert.ok(first);
  await gh.redeliver(first.id);
  await sim.settled();
  const after = await gh.listFailedDeliveries();
  assert.deepEqual(after.map((d) => d.guid).sort(), failed.slice(1).map((d) => d.guid).sort());
  assert.ok(log.lines.some((l) => l.msg === 'asked GitHub to redeliver a webhook delivery' && l.fields.deliveryId === first.id));

  // A failed redelivery of an event keeps the event listed once, with its newest attempt.
  hook.status.code = 502;
  const second = after[0];
  assert.ok(second);
  await gh.redeliver(second.id);
  await sim.settled();
  const again = await gh.listFailedDeliveries();
  assert.equal(again.length, 2);
  const same = again.find((d) => d.guid === second.guid);
  assert.ok(same && same.redelivery && same.statusCode === 502 && same.id > second.id);
});

test('failed deliveries since a time: older pages are not fetched; the page limit bounds a long history', async (t) => {
  const hook = await receiver(t);
  const { sim, gh } = await setup(t, { webhook: { url: hook.url, secret: 's3cret' } });
  for (let i = 0; i < 230; i++) await sim.queueJob({ repo: 'app', labels: ['flint'] });
  await sim.settled();
  assert.equal((await gh.listFailedDeliveries()).length, 230);
  assert.equal(count(sim, 'GET', /^\/app\/hook\/deliveries$/), 3, 'three cursor pages');
  const before = count(sim, 'GET', /^\/app\/hook\/deliveries$/);
  assert.deepEqual(await gh.listFailedDeliveries({ since: new Date(Date.now() + 60_000) }), []);
  assert.equal(count(sim, 'GET', /^\/app\/hook\/deliveries$/) - before, 1, 'stopped after the first page');

  const log = recordingLog();
  const bounded = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl }, log, maxDeliveryPages: 2,
  });
  const pagesBefore = count(sim, 'GET', /^\/app\/hook\/deliveries$/);
  assert.equal((await bounded.listFailedDeliveries()).length, 200, 'the newest two pages');
  assert.equal(count(sim, 'GET', /^\/app\/hook\/deliveries$/) - pagesBefore, 2);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /stopped at the page limit/.test(l.msg)));
});
