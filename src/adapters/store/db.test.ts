import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DB_FILE, durableWrite, keptDescriptor, openDatabase, overlappingSync, relaxedBatch, relaxedWrite, sharedRelaxedBatch, syncWal } from './db.ts';
import { fakeTime } from '../../../test/fakes/fake-time.ts';
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

test('a durable write under FULL commits with NORMAL, then resolves only once the WAL sync it waits for has finished', async (t) => {
  const db = open(t);
  let during: unknown;
  let release: () => void = () => undefined;
  let syncs = 0;
  const sync = (): Promise<void> => {
    syncs++;
    return new Promise<void>((r) => { release = r; });
  };
  let settled = false;
  const p = durableWrite(db, () => {
    during = level(db);
    return db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run().changes;
  }, sync).then((n) => { settled = true; return n; });
  assert.equal(during, 1, 'committed with NORMAL: no fsync on this thread');
  assert.equal(level(db), 2, 'the connection is FULL again at once');
  assert.equal(syncs, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'not acknowledged before the sync');
  release();
  assert.equal(await p, 1);
  assert.deepEqual(db.prepare('SELECT v FROM t').pluck().all(), ['a']);
});

test('a durable write that throws rolls back and syncs nothing; under NORMAL it syncs nothing either', async (t) => {
  const db = open(t);
  let syncs = 0;
  const sync = async (): Promise<void> => { syncs++; };
  await assert.rejects(durableWrite(db, () => {
    db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run();
    db.prepare("INSERT INTO t (id, v) VALUES (1, 'again')").run();
  }, sync), /UNIQUE/);
  assert.equal(level(db), 2);
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), []);
  const normal = open(t, 'NORMAL');
  await durableWrite(normal, () => normal.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run(), sync);
  assert.equal(syncs, 0);
});

test('a durable write tells `committed` after the commit and before the fsync it waits for; not when the write throws', async (t) => {
  const db = open(t);
  let synced!: () => void; // assigned by the sync below, which durableWrite calls synchronously
  const sync = (): Promise<void> => new Promise<void>((r) => { synced = r; });
  const order: string[] = [];
  const done = durableWrite(db, () => db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run().changes, sync, () => {
    order.push(`committed: ${String(db.prepare('SELECT count(*) FROM t').pluck().get())} row, in a transaction: ${String(db.inTransaction)}`);
  });
  void done.then(() => order.push('resolved'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['committed: 1 row, in a transaction: false'], 'told while the fsync is still running');
  synced();
  assert.equal(await done, 1);
  assert.deepEqual(order, ['committed: 1 row, in a transaction: false', 'resolved']);
  let told = false;
  await assert.rejects(durableWrite(db, () => db.prepare("INSERT INTO t (id, v) VALUES (1, 'again')").run(), sync, () => { told = true; }), /UNIQUE/);
  assert.equal(told, false);
});

test('the real WAL sync of an open database resolves, and after the database closed it has nothing left to do', async (t) => {
  const db = open(t);
  const n = await durableWrite(db, () => db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run().changes);
  assert.equal(n, 1);
  const dir = mkdtempSync(join(tmpdir(), 'flint-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const other = openDatabase(dir);
  other.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  other.close();
  await syncWal(other);
});

/** How many of this process's descriptors are open on `path`. */
function descriptorsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // Closed while listed (the listing's own descriptor).
    }
  }
  return n;
}

test('the WAL descriptor is opened once for many syncs, closed after a whole idle period without one, and opened again by the next', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'wal');
  writeFileSync(path, 'x');
  const time = fakeTime();
  const kept = keptDescriptor(path, 1000, time);
  assert.equal(descriptorsOn(path), 0);
  await kept.datasync();
  await kept.datasync();
  assert.equal(descriptorsOn(path), 1, 'one descriptor for both syncs');
  await time.advance(600);
  await kept.datasync();
  await time.advance(600);
  assert.equal(descriptorsOn(path), 1, 'a sync within the period keeps it');
  await time.advance(1000);
  assert.equal(descriptorsOn(path), 0, 'closed after a whole period without a sync');
  await kept.datasync();
  assert.equal(descriptorsOn(path), 1, 'opened again');
  await time.advance(2000);
  assert.equal(descriptorsOn(path), 0);
  rmSync(path);
  await assert.rejects(kept.datasync(), { code: 'ENOENT' }, 'a missing file is the caller\'s to judge');
  await time.advance(2000);
});

test('overlapping syncs: up to two run at once; a call while two run gets the next, which starts when one ended; calls meanwhile share it', async () => {
  const started: Array<() => void> = [];
  const sync = overlappingSync(() => new Promise<void>((r) => { started.push(r); }));
  const first = sync();
  const second = sync();
  assert.equal(started.length, 2, 'the second starts at once, beside the first');
  assert.notEqual(first, second);
  const third = sync();
  const fourth = sync();
  assert.equal(started.length, 2, 'no third at once');
  assert.equal(third, fourth, 'waiting calls share the next flush');
  started[1]?.();
  await second;
  await new Promise((r) => setImmediate(r));
  assert.equal(started.length, 3, 'the next started when one ended');
  let done = false;
  void third.then(() => { done = true; });
  started[0]?.();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'not before its own flush');
  started[2]?.();
  await third;
  const fifth = sync();
  assert.equal(started.length, 4, 'room again: a new call starts at once');
  started[3]?.();
  await fifth;
});

test('batched relaxed writes of one turn commit in one NORMAL transaction after it; a failing write rejects only its own caller', async (t) => {
  const db = open(t);
  const batched = relaxedBatch(db);
  const seen: unknown[] = [];
  const insert = (id: number, v: string) => batched(() => {
    seen.push([db.inTransaction, level(db)]);
    return db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(id, v).changes;
  });
  const a = insert(1, 'a');
  const dup = insert(1, 'again');
  const b = insert(2, 'b');
  assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 0, 'nothing is written before the turn ends');
  assert.equal(await a, 1);
  await assert.rejects(dup, /UNIQUE/);
  assert.equal(await b, 1);
  assert.deepEqual(seen, [[true, 1], [true, 1], [true, 1]], 'all three inside one NORMAL transaction');
  assert.equal(level(db), 2);
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').pluck().all(), ['a', 'b']);
  assert.equal(await insert(3, 'c'), 1, 'a later turn gets a commit of its own');
});

test('every store\'s batched writes on one connection share its one batch: the writes of a turn, whoever asked, are one commit', async (t) => {
  const db = open(t);
  assert.equal(sharedRelaxedBatch(db), sharedRelaxedBatch(db), 'one batch per connection');
  const other = open(t);
  assert.notEqual(sharedRelaxedBatch(db), sharedRelaxedBatch(other), 'connections do not share');
  // Two "stores" taking the shared batch each on their own, as vms.ts and runner-states.ts do.
  const first = sharedRelaxedBatch(db);
  const second = sharedRelaxedBatch(db);
  const before = db.prepare('SELECT count(*) FROM t').pluck();
  let inside = 0;
  const write = (batch: typeof first, id: number) => batch(() => {
    // A savepoint name only the enclosing transaction knows: it exists in every write of one commit.
    if (id === 1) db.exec('SAVEPOINT shared');
    else db.exec('RELEASE shared');
    inside += 1;
    return db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(id, 'x').changes;
  });
  const a = write(first, 1);
  const b = write(second, 2);
  assert.equal(before.get(), 0);
  assert.deepEqual(await Promise.all([a, b]), [1, 1], 'the savepoint opened by the first write was still there for the second');
  assert.equal(inside, 2);
  assert.equal(before.get(), 2);
});

test('the connection\'s level is read once: a relaxed write puts back the level the file was opened with', (t) => {
  const db = open(t, 'NORMAL');
  relaxedWrite(db, () => db.prepare("INSERT INTO t (id, v) VALUES (1, 'a')").run());
  assert.equal(level(db), 1, 'NORMAL stays NORMAL');
  const full = open(t);
  for (let i = 0; i < 3; i += 1) relaxedWrite(full, () => full.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(i, 'a'));
  assert.equal(level(full), 2, 'FULL after every relaxed write');
});

test('the database and its WAL files are readable by Flint alone; a file an older Flint left readable by others is narrowed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mode = (f: string): number => statSync(join(dir, f)).mode & 0o777;
  let db = openDatabase(dir);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  db.exec('INSERT INTO t VALUES (1)');
  for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) assert.equal(mode(f), 0o600, `${f} is 0600`);
  db.close();
  chmodSync(join(dir, DB_FILE), 0o644);
  writeFileSync(join(dir, `${DB_FILE}-shm`), '', { mode: 0o644 });
  chmodSync(join(dir, `${DB_FILE}-shm`), 0o644);
  db = openDatabase(dir);
  t.after(() => db.close());
  assert.equal(mode(DB_FILE), 0o600);
  assert.equal(mode(`${DB_FILE}-shm`), 0o600);
  assert.deepEqual(db.prepare('SELECT id FROM t').all(), [{ id: 1 }], 'the data is still there');
});
