/**
 * Opens Flint's SQLite state database. Every module that persists state
 * keeps its own tables in this one file (created with CREATE TABLE IF NOT
 * EXISTS by that module), so one file under the state directory holds
 * everything and a backup is one copy.
 */
import Database from 'better-sqlite3';
import { chmodSync, close, closeSync, fdatasync, mkdirSync, open as openFd, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { globalTimers } from '../../daemon/loop.ts';
import type { LoopTimers } from '../../daemon/loop.ts';

export type Db = Database.Database;

export const DB_FILE = 'flint.db';

/**
 * The database is Flint's alone (docs/security.md, "Secrets"): created
 * 0600, and a file an older Flint left readable by others is narrowed.
 * SQLite gives the -wal and -shm files the database's mode when it makes
 * them; ones left from before are narrowed too. A file Flint may not
 * change (not its own) is left as it is.
 */
function ownerOnly(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      const { mode } = statSync(f);
      if ((mode & 0o077) !== 0) chmodSync(f, mode & 0o700);
    } catch {
      // absent, or not ours to change
    }
  }
}

/**
 * FULL: a commit survives power loss (WAL fsynced at every commit).
 * NORMAL: a commit survives a crash of Flint, but the last commits before a
 * power loss or kernel crash may be lost (WAL fsynced at checkpoints only).
 */
export type Synchronous = 'FULL' | 'NORMAL';

export function openDatabase(stateDirOrFile: string, options: { file?: boolean; synchronous?: Synchronous } = {}): Db {
  const path = options.file ? stateDirOrFile : join(stateDirOrFile, DB_FILE);
  // 0711: others cannot list or read it, but the unprivileged uid of a
  // definition's VMM can pass through to its own VM's files (docs/security.md).
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  ownerOnly(path);
  const db = new Database(path);
  // WAL: readers never block the writer; busy_timeout: two processes (flint
  // and `flint` CLI commands) may touch the file at once.
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  // Always explicit: this build of SQLite defaults to FULL when it first
  // switches a file to WAL but to NORMAL when it opens a file already in
  // WAL, so without this the durability would change after a restart.
  db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * The connection's own `synchronous` level (0 OFF, 1 NORMAL, 2 FULL, 3
 * EXTRA), read once per connection: Flint sets it when it opens the file
 * (openDatabase) and never changes it afterwards, other than for the
 * length of a relaxed write, which puts it back. Reading it with a fresh
 * PRAGMA before every commit cost as much as a small commit.
 */
const levels = new WeakMap<Db, number | undefined>();

function baseLevel(db: Db): number | undefined {
  if (levels.has(db)) return levels.get(db);
  const level = db.pragma('synchronous', { simple: true });
  const known = typeof level === 'number' ? level : undefined;
  levels.set(db, known);
  return known;
}

/**
 * One transaction function per connection, running whatever it is given:
 * better-sqlite3 builds a new wrapper (and looks up its BEGIN/COMMIT
 * statements) for every `db.transaction(fn)`, which, per commit, cost
 * about as much as a small commit's own work.
 */
const runners = new WeakMap<Db, (write: () => unknown) => unknown>();

function inTransaction<T>(db: Db, write: () => T): T {
  let run = runners.get(db);
  if (run === undefined) {
    run = db.transaction((w: () => unknown) => w());
    runners.set(db, run);
  }
  // The runner hands back exactly what `write` returned.
  return run(write) as T;
}

/**
 * Runs `write` as one transaction committed with `synchronous = NORMAL`,
 * then puts the connection's own setting back. For records whose loss in a
 * power failure or kernel crash costs nothing (see docs/webhooks.md,
 * "Durability"): the VM rows and runner registrations describe processes,
 * taps and registrations on this very host, which such a crash ends with
 * them, and the start-up sweep and the stale-runners loop find what is left
 * by its instance tag. A crash of Flint alone loses no commit (WAL).
 *
 * Why a pragma per transaction and not a second connection: the stores
 * share one connection, and `synchronous` belongs to the connection. The
 * setting is read at commit, so the intake's transactions keep FULL; and a
 * FULL commit fsyncs the whole WAL, so it also makes every NORMAL commit
 * before it durable — durability only ever lags at the end of the log.
 * Inside a transaction already open (a caller's), the caller's commit
 * decides and `write` just runs.
 */
export function relaxedWrite<T>(db: Db, write: () => T): T {
  if (db.inTransaction) return write();
  const level = baseLevel(db);
  // Already NORMAL (1) or OFF (0): nothing to relax, nothing to restore.
  if (level === undefined || level <= 1) return inTransaction(db, write);
  // Set with fresh statements: SQLite applies a PRAGMA when it compiles
  // it, so a prepared one re-run would set nothing.
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    return inTransaction(db, write);
  } finally {
    db.exec(`PRAGMA synchronous = ${level}`);
  }
}

/**
 * Runs `write` as one transaction and resolves once it is as durable as the
 * connection's `synchronous` setting promises — without blocking the event
 * loop on the fsync. Under FULL (WAL mode) the transaction commits with
 * NORMAL (the WAL frames are written, i.e. in the kernel, when it returns)
 * and then the WAL file is fdatasynced on libuv's thread pool; the promise
 * resolves after that fdatasync, which started after the commit. That is
 * what FULL itself does at commit (fsync the WAL), moved off the thread
 * that parses webhooks and runs the VMs. Callers share fsyncs when several
 * are already running (`overlappingSync`).
 *
 * Under NORMAL or OFF, or on a connection not in WAL mode, it is a plain
 * transaction at the connection's setting. Inside a transaction already
 * open, `write` just runs: the caller's commit decides. `committed` is
 * called right after the commit (before the fsync), not when `write` threw.
 */
export async function durableWrite<T>(db: Db, write: () => T, sync: (db: Db) => Promise<void> = syncWal, committed?: () => void): Promise<T> {
  if (db.inTransaction) return write();
  const level = baseLevel(db);
  if (level === undefined || level < 2 || !isWal(db)) {
    const done = inTransaction(db, write);
    committed?.();
    return done;
  }
  const result = relaxedWrite(db, write);
  // Committed and visible; durable once the sync below is done.
  committed?.();
  await sync(db);
  return result;
}

const walModes = new WeakMap<Db, boolean>();

function isWal(db: Db): boolean {
  let wal = walModes.get(db);
  if (wal === undefined) {
    wal = db.pragma('journal_mode', { simple: true }) === 'wal';
    walModes.set(db, wal);
  }
  return wal;
}

/**
 * Up to `depth` flushes at once: a call starts a flush of its own while
 * fewer run (so it never waits for one that started before its commit);
 * a call made while `depth` run gets the next one, which starts when one of
 * them ended (so after the caller's commit), and every call made meanwhile
 * shares it. With group commits that overlap (intake/group-commit.ts), a
 * batch committed while the previous batch's fsync runs gets its own at
 * once instead of waiting for that one to come back through a busy event
 * loop first.
 */
export function overlappingSync(flush: () => Promise<void>, depth = 2): () => Promise<void> {
  let running = 0;
  let next: Promise<void> | undefined;
  let startNext: (() => void) | undefined;
  const start = (): Promise<void> => {
    running++;
    const p = flush();
    const ended = (): void => {
      running--;
      const go = startNext;
      if (go === undefined) return;
      startNext = undefined;
      next = undefined;
      go();
    };
    p.then(ended, ended);
    return p;
  };
  return () => {
    if (running < depth) return start();
    next ??= new Promise<void>((resolve, reject) => {
      startNext = () => { start().then(resolve, reject); };
    });
    return next;
  };
}

const walSyncs = new WeakMap<Db, () => Promise<void>>();

/**
 * How long the WAL's descriptor is kept open after its last sync. While
 * syncs keep coming (a busy intake), each is one fdatasync on the thread
 * pool, not an open, a sync and a close: three trips through the pool,
 * each waiting for a turn of a busy event loop, which made a delivery's
 * answer wait about three times as long.
 */
export const WAL_DESCRIPTOR_IDLE_MS = 1000;

/** fdatasyncs the connection's WAL file (and, the first time, its directory: the WAL's own entry in it). */
export function syncWal(db: Db): Promise<void> {
  let sync = walSyncs.get(db);
  if (sync === undefined) {
    const wal = `${db.name}-wal`;
    const descriptor = keptDescriptor(wal, WAL_DESCRIPTOR_IDLE_MS);
    let dirSynced = false;
    sync = overlappingSync(async () => {
      if (!dirSynced) {
        await fsyncPath(dirname(wal), false);
        dirSynced = true;
      }
      try {
        await descriptor.datasync();
      } catch (err) {
        // Closing the last connection checkpoints the WAL into the database
        // (fsynced) and deletes it: nothing is left to sync.
        if (!db.open && typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') return;
        throw err;
      }
    });
    walSyncs.set(db, sync);
  }
  return sync();
}

/**
 * A read-only descriptor of `path`, opened at the first `datasync()` and
 * closed once a whole `idleMs` passed without one (checked every `idleMs`
 * on `timers`, unref'd by default: it keeps no process alive), so a closed
 * database's WAL is not held open for long. Never closed while a sync on
 * it runs. Syncs may overlap (`overlappingSync`): they share the descriptor.
 */
export function keptDescriptor(path: string, idleMs: number, timers: LoopTimers = globalTimers): { datasync(): Promise<void> } {
  let fd: Promise<number> | undefined;
  let running = 0;
  let syncs = 0;
  let armed = false;
  const arm = (): void => {
    if (armed) return;
    armed = true;
    const seen = syncs;
    timers.setTimeout(() => {
      armed = false;
      if (fd === undefined) return;
      if (running > 0 || syncs !== seen) {
        arm();
        return;
      }
      const old = fd;
      fd = undefined;
      old.then((n) => close(n, () => undefined), () => undefined);
    }, idleMs);
  };
  const openIt = (): Promise<number> => {
    const opening = new Promise<number>((resolve, reject) => {
      openFd(path, 'r', (err, n) => { if (err === null) resolve(n); else reject(err); });
    });
    // A failed open is not kept: the next sync tries again.
    opening.catch(() => { if (fd === opening) fd = undefined; });
    return opening;
  };
  return {
    async datasync() {
      running++;
      syncs++;
      try {
        fd ??= openIt();
        const n = await fd;
        await new Promise<void>((resolve, reject) => {
          fdatasync(n, (err) => { if (err === null) resolve(); else reject(err); });
        });
      } finally {
        running--;
        arm();
      }
    },
  };
}

async function fsyncPath(path: string, dataOnly: boolean): Promise<void> {
  const file = await open(path, 'r');
  try {
    await (dataOnly ? file.datasync() : file.sync());
  } finally {
    await file.close();
  }
}

/**
 * Relaxed writes (see `relaxedWrite`) asked for in the same turn of the
 * event loop, committed together in ONE transaction at the end of that turn
 * (setImmediate); each caller's promise settles after that commit, so
 * "persisted before acted on" holds as with a commit each. For records
 * written often by many VMs at once (every state change of every VM): a
 * burst of VMs then costs one commit per turn, not one per change.
 *
 * Writes run in the order they were asked for. One that throws rejects its
 * own caller only (SQLite undoes just that statement); the others commit.
 */
export type RelaxedBatch = <T>(write: () => T) => Promise<T>;

const batches = new WeakMap<Db, RelaxedBatch>();

/**
 * The connection's one batch (see `relaxedBatch`): every store on it that
 * batches — the VM rows, the runner states, the runner requests — shares
 * it, so their writes of one turn share one commit.
 */
export function sharedRelaxedBatch(db: Db): RelaxedBatch {
  let batch = batches.get(db);
  if (batch === undefined) {
    batch = relaxedBatch(db);
    batches.set(db, batch);
  }
  return batch;
}

export function relaxedBatch(db: Db): RelaxedBatch {
  let queue: Array<{ readonly write: () => unknown; readonly resolve: (v: unknown) => void; readonly reject: (e: unknown) => void }> = [];
  const flush = (): void => {
    const batch = queue;
    queue = [];
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      relaxedWrite(db, () => {
        for (const w of batch) {
          try {
            results.push({ ok: true, value: w.write() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // The commit itself failed: nothing of the batch is stored.
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r === undefined || r.ok) w.resolve(r?.value);
      else w.reject(r.error);
    });
  };
  return <T>(write: () => T) => new Promise<T>((resolve, reject) => {
    // The queue holds writes of many result types; each resolve gets back what its own write returned.
    queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
    if (queue.length === 1) setImmediate(flush);
  });
}
