/**
 * The composition root without VMs: startFlint with the fast fakes of the
 * host's edges (test/fakes) and GitHub in memory. What the root itself
 * guarantees: one connection to the state database carries every store and
 * /healthz, every periodic job is a named loop on the loop primitive, and
 * an accepted webhook reaches the scheduler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { demoConfig } from '../config/demo.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { DB_FILE } from '../adapters/store/db.ts';
import { FakeDisks } from '../../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../../test/fakes/fake-network.ts';
import { InstantDriver } from '../../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { signedDelivery, workflowJobPayload } from '../../bench/_payload.ts';
import { startFlint } from './flint.ts';
import type { FlintOptions } from './flint.ts';

const SECRET = 'flint-root-test-secret';
const HOUR = 3600_000;

/** This process's open descriptors on `path` (each SQLite connection holds one on the database file). */
function openDescriptors(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n += 1;
    } catch {
      // closed between the listing and the readlink
    }
  }
  return n;
}

function fakeRootOptions(t: { after: (fn: () => unknown) => void }, address = '127.0.0.1:0') {
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-root-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const github = new MemoryGitHub({ org: 'flint-root' });
  const config = demoConfig({
    apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-root',
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address, maxRunners: 2, instanceId: 'rt',
  });
  const driver = new InstantDriver((guest) => { guest.say('FLINT-MARKER booted'); });
  const options = {
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL',
    // Every loop waits an hour: only a poke can make the scheduler tick after its first one.
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    maxVcpus: 1000, maxMemoryMib: 1_000_000,
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks(), github },
  } satisfies FlintOptions;
  return { options, driver, config };
}

async function rootOnFakes(t: { after: (fn: () => unknown) => void }) {
  const { options, driver, config } = fakeRootOptions(t);
  const flint = await startFlint(options);
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  return { flint, driver, config, close: async () => { closed = true; await flint.close(); } };
}

test('one connection to the state database carries every store and /healthz, at the --db-sync durability', async (t) => {
  const { flint, config, close } = await rootOnFakes(t);
  const dbPath = join(config.stateDir, DB_FILE);
  assert.equal(await flint.checkpointer.ready, true);
  assert.equal(openDescriptors(dbPath), 2, 'the intake, VM, job-record and truth stores share one connection; the WAL checkpointer has its own');
  const health = await fetch(`${flint.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok', ok: true, database: 'open', synchronous: 'NORMAL' });
  await close();
  assert.equal(openDescriptors(dbPath), 0, 'and close() closes both');
});

test('every periodic job is a named loop on the loop primitive, listed with its status', async (t) => {
  const { flint } = await rootOnFakes(t);
  const loops = flint.loops();
  assert.deepEqual(loops.map((l) => l.name).sort(), [
    'console-retention', 'delivery-retention', 'job-truth', 'missed-webhooks', 'record-retention', 'redeliver', 'scale', 'stale-runners',
  ]);
  const byName = new Map(loops.map((l) => [l.name, l]));
  assert.equal(byName.get('delivery-retention')?.intervalMs, HOUR);
  const retention = byName.get('console-retention');
  // Its first pass starts at start; it reads the disk asynchronously, so it may still be under way.
  assert.equal((retention?.runs ?? 0) + (retention?.running === true ? 1 : 0), 1, 'console-retention started one pass at start');
  assert.equal(typeof byName.get('console-retention')?.lastStartAt, 'number');
  for (const l of loops) assert.equal(l.lastError, undefined, `${l.name}: no failed pass`);
  assert.ok(loops.every((l) => l.running || l.nextRunAt !== undefined), 'each loop is running or has its next pass due');
});

test('an accepted queued webhook pokes the scheduler: a VM starts long before the next tick', async (t) => {
  const { flint, driver } = await rootOnFakes(t);
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 4242, action: 'queued' }));
  const res = await fetch(`${flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
  assert.equal(res.status, 202);
  const deadline = Date.now() + 10_000;
  while (driver.starts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(driver.starts.length, 1);
});

test('an address already in use fails the start with FLINT_ERR_LISTEN_FAILED, and the database connection is closed again', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port; // a TCP listener's address
  const { options, config } = fakeRootOptions(t, `127.0.0.1:${port}`);
  await assert.rejects(startFlint(options), { code: 'FLINT_ERR_LISTEN_FAILED' });
  assert.equal(openDescriptors(join(config.stateDir, DB_FILE)), 0);
});
