import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from './db.ts';
import { createSqliteTruthStore } from './truth-store.ts';
import { createMemoryTruthStore } from './memory-truth-store.ts';
import { truthStoreContract } from './truth-store.contract.ts';

truthStoreContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-truth-'));
  const db = openDatabase(dir);
  return { store: createSqliteTruthStore(db), dispose: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
});

truthStoreContract('memory', () => ({ store: createMemoryTruthStore(), dispose: () => undefined }));

test('sqlite: marks and redeliveries survive a restart (a reopened database)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-truth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = openDatabase(dir);
  const a = createSqliteTruthStore(first);
  await a.setMark('redeliver', 1234);
  await a.putRedelivery({ guid: 'g', deliveryId: 3, attempts: 1, lastAt: 99 });
  await a.markJobChecked(42, 77);
  first.close();
  const second = openDatabase(dir);
  t.after(() => second.close());
  const b = createSqliteTruthStore(second);
  assert.equal(await b.getMark('redeliver'), 1234);
  assert.equal((await b.getRedelivery('g'))?.attempts, 1);
  assert.equal((await b.jobChecks()).get(42), 77);
});
