// The intake against the GitHub simulator's real, signed deliveries
// (tools/github-sim): ping, queued, duplicates, out-of-order and cancelled jobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../../tools/github-sim/index.ts';
import type { Simulator } from '../../../tools/github-sim/index.ts';
import { openDatabase } from '../../adapters/store/db.ts';
import type { Db } from '../../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../../adapters/store/intake-store.ts';
import { createIntake } from '../../daemon/intake/intake.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';
import { buildServer } from './server.ts';

const SECRET = 'sim-webhook-secret';
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
let db: Db;
let store: IntakeStore;
let server: Server;
let sim: Simulator;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flint-sim-intake-'));
  db = openDatabase(dir);
  store = createSqliteIntakeStore(db);
  const intake = createIntake({ store, runners: [{ name: 'default', labels: ['self-hosted', 'linux', 'x64'] }], secrets: [SECRET], clock: Date.now, logger: quiet });
  server = buildServer({ intake, logger: quiet });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo; // a TCP listener
  sim = await startSimulator({ repos: ['app'], webhook: { url: `http://127.0.0.1:${port}/webhook`, secret: SECRET } });
});

after(async () => {
  await sim.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const lastDelivery = () => sim.deliveries().at(-1);

test('the simulator\'s ping is answered 200', async () => {
  await sim.ping();
  await sim.settled();
  assert.equal(lastDelivery()?.event, 'ping');
  assert.equal(lastDelivery()?.statusCode, 200);
});

test('a queued job from the simulator is stored; an unserviceable one is ignored', async () => {
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'Linux'] });
  const other = await sim.queueJob({ repo: 'app', labels: ['ubuntu-latest'] });
  await sim.settled();
  assert.equal((await store.getJob(jobId))?.status, 'queued');
  assert.equal((await store.getJob(jobId))?.repository, `${sim.org}/app`);
  assert.equal(await store.getJob(other.jobId), undefined);
  assert.ok(sim.deliveries().slice(-2).every((d) => d.statusCode === 202));
});

test('a delivery the simulator sends twice is stored once', async () => {
  const before = await store.countDeliveries();
  sim.faults.set({ webhooks: { duplicate: 1 } });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
  await sim.settled();
  sim.faults.clear();
  const twice = sim.deliveries().filter((d) => d.event === 'workflow_job').slice(-2);
  assert.equal(twice[0]?.guid, twice[1]?.guid);
  assert.deepEqual(twice.map((d) => d.statusCode).sort(), [200, 202]);
  assert.equal(await store.countDeliveries(), before + 1);
  assert.equal((await store.getJob(jobId))?.status, 'queued');
});

test('cancelled while queued, with the queued delivery held back: the job stays completed', async () => {
  sim.faults.set({ webhooks: { reorder: 1, holdMs: 200 } });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
  await sim.cancelJob(jobId);
  await sim.settled();
  sim.faults.clear();
  const job = await store.getJob(jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'cancelled');
  const outcomes = await Promise.all(sim.deliveries().slice(-2).map((d) => store.getDelivery(d.guid)));
  assert.deepEqual(outcomes.map((d) => `${d?.action}:${d?.outcome}`).sort(), ['completed:accepted', 'queued:stale']);
});
