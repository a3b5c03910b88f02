/**
 * The body of the intake store's writer thread (see intake-store-worker.ts):
 * owns one SQLite connection and runs the store's methods on request, so
 * that a commit's fsync blocks this thread and not the event loop that
 * parses webhooks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './db.ts';
import type { Synchronous } from './db.ts';
import { createSqliteIntakeStore } from './intake-store.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';

export interface ThreadData { readonly stateDir: string; readonly synchronous: Synchronous }
export type Method = keyof IntakeStore;
export interface Call { readonly id: number; readonly method: Method | 'close'; readonly args: readonly unknown[] }
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string | undefined; readonly message: string };

// workerData is what intake-store-worker.ts passes: a ThreadData.
const data = workerData as ThreadData;
const port = parentPort;
if (port === null) throw new Error('intake-store-thread runs only as a worker thread');
let db: ReturnType<typeof openDatabase> | undefined;
let store: IntakeStore | undefined;
let startError: unknown;
try {
  db = openDatabase(data.stateDir, { synchronous: data.synchronous });
  store = createSqliteIntakeStore(db);
} catch (err) {
  startError = err;
}

const fail = (id: number, err: unknown): Reply => ({
  id, ok: false, message: err instanceof Error ? err.message : String(err),
  code: typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined,
});

port.on('message', (call: Call) => {
  if (call.method === 'close') {
    db?.close();
    port.postMessage({ id: call.id, ok: true, value: undefined } satisfies Reply);
    port.close();
    return;
  }
  if (store === undefined) {
    port.postMessage(fail(call.id, startError));
    return;
  }
  // The method table is the IntakeStore port; args come from the typed
  // wrapper in intake-store-worker.ts, which calls with the port's own signature.
  const fn = store[call.method] as (...args: readonly unknown[]) => Promise<unknown>;
  fn(...call.args).then(
    (value) => port.postMessage({ id: call.id, ok: true, value } satisfies Reply),
    (err: unknown) => port.postMessage(fail(call.id, err)),
  );
});
