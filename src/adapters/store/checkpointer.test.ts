import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCheckpointer } from './checkpointer.ts';
import { openDatabase } from './db.ts';
import type { Db } from './db.ts';

const HOUR = 3600_000;

function open(t: { after: (fn: () => void) => void }): { db: Db; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'flint-ckpt-'));
  const db = openDatabase(dir);
  t.after(() => { if (db.open) db.close(); rmSync(dir, { recursive: true, force: true }); });
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
  return { db, dir };
}

function warnings(): { warn(obj: object, msg: string): void; readonly seen: string[] } {
  const seen: string[] = [];
  return { seen, warn: (_obj, msg) => { seen.push(msg); } };
}

const autocheckpoint = (db: Db): unknown => db.pragma('wal_autocheckpoint', { simple: true });

test('with the checkpointer, commits leave the WAL to its thread, which copies it into the database; closed, the connection checkpoints again', async (t) => {
  const { db } = open(t);
  const log = warnings();
  // Passes only when asked: the interval is out of the test's way.
  const ckpt = startCheckpointer(db, { synchronous: 'FULL', intervalMs: HOUR, logger: log });
  t.after(() => ckpt.close());
  assert.equal(await ckpt.ready, true);
  assert.equal(ckpt.active, true);
  assert.equal(autocheckpoint(db), 0, 'the connection no longer checkpoints inside a commit');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  // More than SQLite's own threshold of 1,000 pages: a commit would have checkpointed.
  for (let i = 0; i < 300; i++) db.transaction(() => { for (let j = 0; j < 5; j++) insert.run(Buffer.alloc(4000, i)); })();
  const walBytes = statSync(`${db.name}-wal`).size;
  assert.ok(walBytes > 1000 * 4096, `the WAL grew past the threshold (${walBytes} bytes): nothing checkpointed on this thread`);
  const result = await ckpt.checkpoint();
  assert.ok(result.log > 1000, `frames in the WAL: ${result.log}`);
  assert.equal(result.checkpointed, result.log, 'all of them copied by the thread');
  const reader = openDatabase(db.name, { file: true });
  t.after(() => reader.close());
  assert.equal(reader.prepare('SELECT count(*) FROM t').pluck().get(), 1500);
  await ckpt.close();
  assert.equal(ckpt.active, false);
  assert.equal(autocheckpoint(db), 1000, 'SQLite\'s own checkpoints are back');
  await assert.rejects(ckpt.checkpoint(), /not running/);
  assert.deepEqual(log.seen, [], 'a close is no failure');
});

test('a checkpointer thread that dies gives the checkpoints back to the connection, and says so', async (t) => {
  const { db } = open(t);
  const log = warnings();
  const ckpt = startCheckpointer(db, { synchronous: 'FULL', intervalMs: HOUR, logger: log });
  t.after(() => ckpt.close());
  assert.equal(await ckpt.ready, true);
  await ckpt.thread.terminate();
  await ckpt.close();
  assert.equal(autocheckpoint(db), 1000);
  assert.equal(log.seen.length, 1);
  assert.match(log.seen[0] ?? '', /checkpointer thread ended; the database connection checkpoints on its own again/);
});

test('a checkpointer thread that cannot open the database leaves the connection checkpointing on its own, and says so', async (t) => {
  const { db, dir } = open(t);
  // The file is gone from its directory (the connection holds it open): the thread finds nothing to open.
  rmSync(dir, { recursive: true, force: true });
  const log = warnings();
  const ckpt = startCheckpointer(db, { synchronous: 'FULL', intervalMs: HOUR, logger: log });
  t.after(() => ckpt.close());
  assert.equal(await ckpt.ready, false);
  assert.equal(ckpt.active, false);
  assert.equal(autocheckpoint(db), 1000);
  assert.equal(log.seen.length, 1);
  assert.match(log.seen[0] ?? '', /could not start/);
});
