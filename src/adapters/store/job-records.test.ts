import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobRecordContract } from '../../../test/contracts/job-records.contract.ts';
import { MemoryVmStore } from '../../../test/fakes/memory-vm-store.ts';
import { openDatabase } from './db.ts';
import { createSqliteIntakeStore } from './intake-store.ts';
import { createSqliteJobRecords } from './job-records.ts';
import { createMemoryIntakeStore } from './memory-intake-store.ts';
import { createMemoryJobRecords } from './memory-job-records.ts';
import { SqliteVmStore } from './vms.ts';
import { delivery } from './intake-store.contract.ts';

jobRecordContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-records-'));
  const db = openDatabase(dir);
  // The records store first: it must make the tables it joins whatever order the daemon opens them in.
  const records = createSqliteJobRecords(db);
  return {
    intake: createSqliteIntakeStore(db), vms: new SqliteVmStore(db), records,
    dispose: () => { db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
});

jobRecordContract('memory', () => {
  const intake = createMemoryIntakeStore();
  const vms = new MemoryVmStore();
  return { intake, vms, records: createMemoryJobRecords({ intake, vms }), dispose: () => undefined };
});

test('sqlite: a state file from before the job times is brought up to date, and its old jobs have no times', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let db = openDatabase(dir);
  // The `jobs` table as the first release made it.
  db.exec(`CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, run_attempt INTEGER NOT NULL, repository TEXT NOT NULL, name TEXT NOT NULL,
    workflow_name TEXT, labels TEXT NOT NULL, definition TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed')),
    conclusion TEXT, runner_name TEXT, first_seen_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
  db.exec(`INSERT INTO jobs VALUES (1, 7001, 1, 'acme/widgets', 'old', NULL, '[]', 'default', 'queued', NULL, NULL, 5, 5)`);
  db.close();
  db = openDatabase(dir);
  t.after(() => db.close());
  const intake = createSqliteIntakeStore(db);
  const records = createSqliteJobRecords(db);
  assert.deepEqual((await records.getJobRecord(1))?.at, { queued: null, runnerRequested: null, vmStarted: null, booted: null, runnerOnline: null, jobStarted: null, finished: null });
  await intake.ingest([delivery(1, 'in_progress', { at: 9, runner: 'r' })]);
  assert.equal((await records.getJobRecord(1))?.at.jobStarted, 9);
  // Opening again finds the columns there and adds nothing.
  createSqliteIntakeStore(db);
  createSqliteJobRecords(db);
});
