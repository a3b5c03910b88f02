import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, relaxedWrite } from './db.ts';
import type { Db } from './db.ts';

function open(t: { after: (fn: () => void) => void }, synchronous: 'FULL' | 'NORMAL' = 'FULL'): Db {
  const dir = mkdtempSync(join(tmpdir(), 'flint-db-'));
  const db = openDatabase(dir, { synchronous });
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  return db;
}

const level = (db: Db): unknown => db.pragma('synchronous', { simple: true });

test('a relaxed write commits under NORMAL and gives the connection its FULL back for the next (intake) commit', (t) => {
  const db = open(t);
  let during: unknown;
  const r = relaxedWrite(db, () => {
    during = level(db);
    return db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run().changes;
  });
  assert.equal(r, 1);
  assert.equal(during, 1, 'NORMAL while the relaxed transaction runs');
  assert.equal(level(db), 2, 'FULL again afterwards');
  assert.equal(db.inTransaction, false);
  assert.deepEqual(db.prepare('SELECT v FROM t').pluck().all(), ['a']);
});

test('a relaxed write that throws rolls back and still restores FULL', (t) => {
  const db = open(t);
  assert.throws(() => relaxedWrite(db, () => {
    db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run();
    db.prepare("INSERT INTO t (id, v) VALUES (1, 'again')").run();
  }), /UNIQUE/);
  assert.equal(level(db), 2);
  assert.equal(db.inTransaction, false);
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), []);
});

test('inside a transaction already open the relaxed write joins it: the outer commit decides, the setting is untouched', (t) => {
  const db = open(t);
  let during: unknown;
  assert.throws(() => db.transaction(() => {
    relaxedWrite(db, () => {
      during = level(db);
      db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run();
    });
    throw new Error('outer fails');
  })(), /outer fails/);
  assert.equal(during, 2);
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), [], 'rolled back with the outer transaction');
});

test('a connection opened with NORMAL stays NORMAL', (t) => {
  const db = open(t, 'NORMAL');
  relaxedWrite(db, () => db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run());
  assert.equal(level(db), 1);
  assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 1);
});
