/**
 * WAL checkpoints off the event loop.
 *
 * SQLite copies its WAL back into the database file (a checkpoint) inside
 * the commit that finds the WAL over 1,000 pages: on the connection's
 * thread, with a fsync of the WAL before and of the database file after.
 * Flint's one connection lives on the event loop, so every few hundred
 * jobs of a burst one commit stopped webhook parsing and VM handling for
 * those copies and fsyncs. With the checkpointer, the connection never
 * checkpoints on its own (`wal_autocheckpoint = 0`); a worker thread with
 * a connection of its own checkpoints every `intervalMs` instead.
 *
 * Durability is unchanged: a commit is as durable as before when it
 * returns (FULL) or when its WAL is fsynced (db.ts durableWrite); the
 * checkpoint only moves committed pages into the database file. If the
 * thread fails to start or dies, the connection checkpoints on its own
 * again (the default of 1,000 pages), and a warning says so. `close()`
 * does the same before the connection itself is closed.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db } from './db.ts';

export interface CheckpointResult {
  /** Frames in the WAL. */
  readonly log: number;
  /** Of those, frames now in the database file. */
  readonly checkpointed: number;
}

interface ThreadData {
  /** Where better-sqlite3 is (the thread resolves nothing itself). */
  readonly sqlite: string;
  readonly path: string;
  /** The main connection's level: under both, a checkpoint fsyncs the WAL before it copies, and the database file after. */
  readonly synchronous: 'FULL' | 'NORMAL';
  readonly intervalMs: number;
}

type ToThread = { readonly type: 'now'; readonly id: number } | { readonly type: 'close' };
type FromThread =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly id: number; readonly result: CheckpointResult }
  | { readonly type: 'failed'; readonly id: number | null; readonly message: string };

/**
 * The thread's body: a connection of its own to the state database that
 * copies the WAL into the database file every `intervalMs`, and when
 * asked. PASSIVE: it never waits for the writer or a reader, and copies
 * what it can. Plain JavaScript run as the worker's script, so the thread
 * loads no module loader (from the sources, a .ts thread would load tsx):
 * its start and its memory stay small. Speaks ToThread / FromThread.
 */
const THREAD_BODY = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const text = (err) => (err instanceof Error ? err.message : String(err));
let db;
try {
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('synchronous = ' + workerData.synchronous);
} catch (err) {
  parentPort.postMessage({ type: 'failed', id: null, message: text(err) });
  process.exit(1);
}
const pass = () => {
  const row = db.pragma('wal_checkpoint(PASSIVE)')[0] || {};
  return { log: row.log || 0, checkpointed: row.checkpointed || 0 };
};
let reported = null;
const timer = setInterval(() => {
  try {
    pass();
    reported = null;
  } catch (err) {
    // Reported once per kind of failure, not every interval.
    if (text(err) !== reported) parentPort.postMessage({ type: 'failed', id: null, message: text(err) });
    reported = text(err);
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m.type === 'close') {
    clearInterval(timer);
    db.close();
    parentPort.close();
    return;
  }
  try {
    parentPort.postMessage({ type: 'done', id: m.id, result: pass() });
  } catch (err) {
    parentPort.postMessage({ type: 'failed', id: m.id, message: text(err) });
  }
});
parentPort.postMessage({ type: 'ready' });
`;

/** SQLite's own default: a commit checkpoints once the WAL holds this many pages. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 500;

export interface Checkpointer {
  /** True while the thread checkpoints (and the connection does not). */
  readonly active: boolean;
  /** Settles once the thread took over (true) or could not (false). */
  readonly ready: Promise<boolean>;
  /** A checkpoint now, on the thread. */
  checkpoint(): Promise<CheckpointResult>;
  /** Ends the thread; the connection checkpoints on its own again. Idempotent. */
  close(): Promise<void>;
  /** The thread itself (diagnostics, tests). */
  readonly thread: Worker;
}

export interface CheckpointerOptions {
  readonly synchronous: 'FULL' | 'NORMAL';
  readonly intervalMs?: number;
  readonly logger: { warn(obj: object, msg: string): void };
}

/**
 * Starts the thread and hands the checkpointer back at once: the
 * connection stops checkpointing on its own only once the thread is ready
 * (until then, and if it never is, SQLite's own checkpoints go on).
 */
export function startCheckpointer(db: Db, options: CheckpointerOptions): Checkpointer {
  const data: ThreadData = {
    sqlite: createRequire(import.meta.url).resolve('better-sqlite3'),
    path: db.name, synchronous: options.synchronous, intervalMs: options.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
  };
  const thread = new Worker(THREAD_BODY, { eval: true, workerData: data });
  const waiting = new Map<number, { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }>();
  let next = 0;
  let active = false;
  let closing = false;
  let ended: Promise<void> | undefined;
  const onOwn = (why: string): void => {
    const was = active;
    active = false;
    if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    for (const w of waiting.values()) w.reject(new Error(why));
    waiting.clear();
    if (was && !closing) options.logger.warn({ err: why }, 'the WAL checkpointer thread ended; the database connection checkpoints on its own again');
  };
  const exited = new Promise<void>((resolve) => { thread.once('exit', () => resolve()); });
  let settleReady: (ok: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => { settleReady = resolve; });
  void exited.then(() => settleReady(false));
  // The thread holds the process only while someone waits for it (its
  // start, a checkpoint asked for, its close): a forgotten checkpointer
  // keeps no process alive.
  let started = false;
  const hold = (): void => {
    if (!started || closing || waiting.size > 0) thread.ref();
    else thread.unref();
  };
  void ready.then(() => { started = true; hold(); });
  thread.on('message', (m: FromThread) => {
    if (m.type === 'ready') {
      if (closing || !db.open) return;
      active = true;
      db.pragma('wal_autocheckpoint = 0');
      settleReady(true);
    } else if (m.type === 'done') {
      waiting.get(m.id)?.resolve(m.result);
      waiting.delete(m.id);
      hold();
    } else if (m.id !== null) {
      waiting.get(m.id)?.reject(new Error(m.message));
      waiting.delete(m.id);
      hold();
    } else {
      options.logger.warn({ err: m.message }, active
        ? 'a WAL checkpoint failed; the next one tries again'
        : 'the WAL checkpointer thread could not start; the database connection checkpoints on its own');
    }
  });
  thread.on('error', (err) => onOwn(err.message));
  void exited.then(() => onOwn('the thread exited'));
  return {
    get active() { return active; },
    ready,
    thread,
    checkpoint() {
      if (!active) return Promise.reject(new Error('the WAL checkpointer is not running'));
      const id = ++next;
      return new Promise<CheckpointResult>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        hold();
        thread.postMessage({ type: 'now', id } satisfies ToThread);
      });
    },
    close() {
      ended ??= (async () => {
        closing = true;
        hold();
        if (active) thread.postMessage({ type: 'close' } satisfies ToThread);
        else void thread.terminate();
        await exited;
        onOwn('closed');
      })();
      return ended;
    },
  };
}
