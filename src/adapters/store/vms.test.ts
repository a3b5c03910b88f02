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
