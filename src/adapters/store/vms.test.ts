import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmStoreContract } from '../../../test/contracts/vm-store.contract.ts';
import { openDatabase } from './db.ts';
import { SqliteVmStore } from './vms.ts';

vmStoreContract('SQLite VM store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-vms-'));
  const db = openDatabase(dir);
  return { store: new SqliteVmStore(db), close: async () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
});

test('the VM sequence survives closing and reopening the database (ids never repeat after a restart)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-vms-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = openDatabase(dir);
  const s1 = new SqliteVmStore(a);
  return s1.nextSequence('ab1').then(async (n0) => {
    await s1.nextSequence('ab1');
    a.close();
    const b = openDatabase(dir);
    t.after(() => b.close());
    assert.equal(n0, 0);
    assert.equal(await new SqliteVmStore(b).nextSequence('ab1'), 2);
  });
});

test('a database made before the owner column existed gets it on open', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-vms-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const old = openDatabase(dir);
  old.exec(`CREATE TABLE vms (id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, runner TEXT NOT NULL, hypervisor TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, work_dir TEXT NOT NULL, pid INTEGER, created_at INTEGER NOT NULL, prepare_ms INTEGER, started_at INTEGER, booted_at INTEGER,
    runner_started_at INTEGER, ended_at INTEGER, runner_exit_code INTEGER, vmm_exit_code INTEGER, vmm_signal TEXT)`);
  old.prepare(`INSERT INTO vms (id, instance_id, runner, hypervisor, state, work_dir, created_at) VALUES ('ab1-00001', 'ab1', 'r', 'qemu', 'booting', '/x', 1)`).run();
  old.close();
  const db = openDatabase(dir);
  t.after(() => db.close());
  const store = new SqliteVmStore(db);
  const rec = await store.get('ab1-00001');
  assert.equal(rec?.owner, null);
  assert.deepEqual((await store.listUnfinished('ab1')).map((r) => r.id), ['ab1-00001']);
});
