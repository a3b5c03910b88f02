import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { JOB_ACTIONS } from '../../core/jobs.ts';
import type { StoredJob } from '../../daemon/ports/store.ts';
import { openDatabase } from './db.ts';
import { createSqliteIntakeStore } from './intake-store.ts';
import { createMemoryIntakeStore } from './memory-intake-store.ts';
import { startThreadedIntakeStore } from './intake-store-worker.ts';
import { delivery, intakeStoreContract } from './intake-store.contract.ts';

intakeStoreContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  const db = openDatabase(dir);
  return { store: createSqliteIntakeStore(db), dispose: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
});

intakeStoreContract('sqlite on a thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  const store = await startThreadedIntakeStore(dir, { synchronous: 'FULL' }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return { store, dispose: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
});

intakeStoreContract('memory', () => ({ store: createMemoryIntakeStore(), dispose: () => undefined }));

test('sqlite: close and reopen the database and nothing acknowledged is lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let db = openDatabase(dir);
  let store = createSqliteIntakeStore(db);
  await store.ingest([delivery(1, 'queued', { id: 'r1' }), delivery(2, 'completed', { id: 'r2' })]);
  db.close();
  db = openDatabase(dir);
  t.after(() => db.close());
  store = createSqliteIntakeStore(db);
  assert.equal(await store.countDeliveries(), 2);
  assert.equal((await store.getJob(1))?.status, 'queued');
  // Dedupe survives the restart too.
  assert.deepEqual(await store.ingest([delivery(2, 'queued', { id: 'r2' }), delivery(2, 'queued', { id: 'r3' })]), ['duplicate', 'stale']);
});

test('sqlite: a batch that fails is not half-applied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  const db = openDatabase(dir);
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const store = createSqliteIntakeStore(db);
  // A trigger that rejects one job id makes the second delivery of the batch fail.
  db.exec("CREATE TRIGGER fail_job_99 BEFORE INSERT ON jobs WHEN NEW.id = 99 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  await assert.rejects(store.ingest([delivery(1, 'queued', { id: 'ok' }), delivery(99, 'queued', { id: 'bad' })]), { code: 'FLINT_ERR_STORE_WRITE_FAILED' });
  assert.equal(await store.countDeliveries(), 0);
  assert.equal(await store.getJob(1), undefined);
});

test('openDatabase sets synchronous explicitly, the same on first open and on reopen', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // SQLite's numeric codes: 1 NORMAL, 2 FULL.
  for (const [mode, code] of [['FULL', 2], ['FULL', 2], ['NORMAL', 1]] as const) {
    const db = openDatabase(dir, { synchronous: mode });
    assert.equal(db.pragma('synchronous', { simple: true }), code, mode);
    db.close();
  }
  const db = openDatabase(dir);
  assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL by default, also for a file already in WAL mode');
  db.close();
});

test('thread: a store that cannot open its database says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A regular file where the state directory should be.
  writeFileSync(join(dir, 'not-a-dir'), '');
  await assert.rejects(startThreadedIntakeStore(join(dir, 'not-a-dir'), { synchronous: 'FULL' }), { code: 'FLINT_ERR_STORE_OPEN_FAILED' });
});

test('thread: store errors keep their codes across the thread', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-'));
  const store = await startThreadedIntakeStore(dir, { synchronous: 'NORMAL' });
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const db = openDatabase(dir);
  db.exec("CREATE TRIGGER fail_job_99 BEFORE INSERT ON jobs WHEN NEW.id = 99 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  db.close();
  await assert.rejects(store.ingest([delivery(99, 'queued')]), { code: 'FLINT_ERR_STORE_WRITE_FAILED' });
  assert.equal(await store.countDeliveries(), 0);
});

test('property: SQLite and the in-memory store agree on any sequence of batches, duplicates included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-store-prop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let run = 0;
  const step = fc.record({
    job: fc.integer({ min: 1, max: 4 }),
    action: fc.constantFrom(...JOB_ACTIONS),
    // Small id space: repeats are duplicates of an earlier delivery.
    id: fc.integer({ min: 1, max: 12 }),
    served: fc.boolean(),
    runner: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
  });
  await fc.assert(fc.asyncProperty(fc.array(fc.array(step, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 }), async (batches) => {
    // NORMAL: the same semantics, without an fsync per batch (speed only).
    const db = openDatabase(join(dir, `run-${++run}`), { synchronous: 'NORMAL' });
    try {
      const sqlite = createSqliteIntakeStore(db);
      const memory = createMemoryIntakeStore();
      let at = 0;
      for (const b of batches) {
        const batch = b.map((s) => delivery(s.job, s.action, {
          id: `d${s.id}`, at: ++at, definition: s.served ? 'default' : null, ...(s.runner === undefined ? {} : { runner: s.runner }),
        }));
        assert.deepEqual(await sqlite.ingest(batch), await memory.ingest(batch));
      }
      const view = (jobs: readonly StoredJob[]) => jobs.map((j) => [j.id, j.status, j.conclusion, j.runnerName, j.firstSeenAt, j.updatedAt]);
      assert.deepEqual(view(await sqlite.listJobs()), view(await memory.listJobs()));
      assert.equal(await sqlite.countDeliveries(), await memory.countDeliveries());
    } finally {
      db.close();
    }
  }), { numRuns: 60 });
});
