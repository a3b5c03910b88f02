// Job truth both ways against the GitHub simulator: the real GitHub client,
// the SQLite stores and the real intake behind its HTTP server; webhook
// deliveries dropped by the simulator's faults.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../../tools/github-sim/index.ts';
import { runFakeRunner } from '../../tools/github-sim/fake-runner.ts';
import { openDatabase, type Db } from '../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../adapters/store/intake-store.ts';
import { createSqliteTruthStore } from '../adapters/store/truth-store.ts';
import { createGitHubClient } from '../adapters/github/client.ts';
import { createIntake } from './intake/intake.ts';
import { buildServer } from '../entrypoints/http/server.ts';
import { confirmOverdueJobs, JOB_TRUTH_DEFAULTS } from './job-truth.ts';
import { redeliverFailed, REDELIVER_DEFAULTS } from './redeliver.ts';
import type { GitHubPort } from './ports/github.ts';
import type { IntakeStore, TruthStore } from './ports/store.ts';

const SECRET = 'sim-truth-secret';
const LABELS = ['self-hosted', 'linux'];
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
let db: Db;
let store: IntakeStore;
let truth: TruthStore;
let server: Server;
let sim: Simulator;
let github: GitHubPort;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flint-truth-sim-'));
  db = openDatabase(dir);
  store = createSqliteIntakeStore(db);
  truth = createSqliteTruthStore(db);
  const intake = createIntake({ store, runners: [{ name: 'default', labels: LABELS }], secrets: [SECRET], clock: Date.now, logger: quiet });
  server = buildServer({ intake, logger: quiet });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo; // a TCP listener
  sim = await startSimulator({ repos: ['app'], webhook: { url: `http://127.0.0.1:${port}/webhook`, secret: SECRET } });
  github = createGitHubClient({ github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl }, retries: 0 });
});

after(async () => {
  await sim.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('in_progress and completed deliveries dropped: after a job-truth pass the job is completed and no demand is left', async () => {
  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS });
  await sim.settled();
  assert.equal((await store.getJob(jobId))?.status, 'queued');
  sim.faults.set({ webhooks: { drop: 2 } });
  const jit = await github.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-truth-1', runnerGroupId: 1, labels: LABELS });
  const ran = await runFakeRunner({ apiUrl: sim.apiUrl, jitConfig: jit.encodedJitConfig, waitSeconds: 10 });
  assert.equal(ran.outcome, 'completed');
  await sim.settled();
  sim.faults.clear();
  assert.deepEqual(sim.deliveries().slice(-2).map((d) => [d.action, d.statusCode]), [['in_progress', 0], ['completed', 0]]);
  assert.equal((await store.getJob(jobId))?.status, 'queued', 'a phantom: Flint still counts it as demand');

  // Overdue: the clock is 6 minutes on.
  const changes = await confirmOverdueJobs({
    github, store, truth, thresholds: JOB_TRUTH_DEFAULTS, clock: { now: () => Date.now() + 6 * 60_000 }, logger: quiet,
  });
  assert.deepEqual(changes, [{ jobId, from: 'queued', to: 'completed' }]);
  const job = await store.getJob(jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success');
  assert.equal(job?.runnerName, 'flint-truth-1');
  assert.deepEqual(await store.listJobs({ status: 'queued' }), []);
  assert.deepEqual(await store.listJobs({ status: 'in_progress' }), []);
});

test('a queued delivery the simulator failed to make is redelivered by the redeliver loop and recorded', async () => {
  sim.faults.set({ webhooks: { drop: 1 } });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS });
  await sim.settled();
  sim.faults.clear();
  const failed = sim.deliveries().at(-1);
  assert.equal(failed?.statusCode, 0);
  assert.equal(await store.getJob(jobId), undefined);

  const pass = await redeliverFailed({ github, store, truth, settings: REDELIVER_DEFAULTS, clock: { now: () => Date.now() }, logger: quiet });
  // The in_progress and completed dropped by the test before are failed deliveries too: asked for again, oldest first.
  assert.equal(pass.redelivered.at(-1), failed?.id);
  assert.deepEqual(pass.redelivered, sim.deliveries().filter((d) => d.statusCode === 0).map((d) => d.id));
  await sim.settled();
  assert.ok(sim.deliveries().filter((d) => d.redelivery).every((d) => d.statusCode >= 200 && d.statusCode < 300), 'every redelivery reached the intake');
  const again = sim.deliveries().find((d) => d.redelivery && d.guid === failed?.guid);
  assert.equal(again?.guid, failed?.guid);
  assert.equal(again?.redelivery, true);
  assert.equal(again?.statusCode, 202);
  assert.equal((await store.getJob(jobId))?.status, 'queued');
  assert.equal((await store.getDelivery(failed?.guid ?? ''))?.outcome, 'accepted');

  const next = await redeliverFailed({ github, store, truth, settings: REDELIVER_DEFAULTS, clock: { now: () => Date.now() }, logger: quiet });
  assert.deepEqual(next.redelivered, [], 'the event now has a successful attempt: not asked for again');
});
