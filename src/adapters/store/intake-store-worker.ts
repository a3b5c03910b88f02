/**
 * The SQLite intake store on its own thread. Same port, same contract tests
 * as createSqliteIntakeStore; the difference is where the commit's fsync
 * waits. With synchronous=FULL every commit waits for the disk; on the
 * main thread that wait stops webhook parsing too, here the event loop
 * keeps taking deliveries (the next group-commit batch) while the previous
 * batch is being made durable.
 *
 * Measured on a 2-core host shared with other work (docs/webhooks.md), it
 * was not faster than committing on the event-loop thread and its extra
 * cross-thread wake-ups added latency under CPU load, so `flint serve` does
 * not use it; `npm run bench -- webhook-intake --store thread` compares the
 * two on other hosts.
 */
import { Worker } from 'node:worker_threads';
import { FlintError } from '../../core/errors/index.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import { catalogue } from '../../core/errors/index.ts';
import type { IntakeStore } from '../../daemon/ports/store.ts';
import type { DeliveryOutcome } from '../../core/jobs.ts';
import type { Synchronous } from './db.ts';
import type { Call, Method, Reply, ThreadData } from './intake-store-thread.ts';

export interface ThreadedIntakeStore extends IntakeStore {
  /** Closes the thread's database connection and ends the thread. */
  close(): Promise<void>;
}

function spawnThread(data: ThreadData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./intake-store-thread.js', import.meta.url), { workerData: data });
  // Running from the TypeScript sources (tests, `FLINT_FROM_SOURCE`): a
  // worker does not inherit this process's loader hooks, so the thread
  // registers tsx itself before it loads the .ts module.
  const tsx = import.meta.resolve('tsx/esm/api');
  const thread = new URL('./intake-store-thread.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(thread)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

export async function startThreadedIntakeStore(stateDir: string, options: { synchronous: Synchronous }): Promise<ThreadedIntakeStore> {
  const worker = spawnThread({ stateDir, synchronous: options.synchronous });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let next = 0;
  let dead: Error | undefined;
  const failAll = (err: Error): void => {
    dead = err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  worker.on('message', (r: Reply) => {
    const w = waiting.get(r.id);
    if (w === undefined) return;
    waiting.delete(r.id);
    if (r.ok) w.resolve(r.value);
    else {
      const code = r.code !== undefined && r.code in catalogue ? (r.code as ErrorCode) : 'FLINT_ERR_STORE_WRITE_FAILED'; // checked against the catalogue
      w.reject(new FlintError(code, r.message));
    }
  });
  worker.on('error', (err) => failAll(new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `the store thread failed: ${err.message}`, { cause: err })));
  worker.on('exit', (code) => failAll(new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `the store thread exited (${code})`)));

  const call = <T>(method: Method | 'close', ...args: unknown[]): Promise<T> => {
    if (dead !== undefined) return Promise.reject(dead);
    const id = ++next;
    return new Promise<T>((resolve, reject) => {
      // The thread answers with what the named IntakeStore method returned (a T).
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, args } satisfies Call);
    });
  };

  const store: ThreadedIntakeStore = {
    // The thread's commit is durable when its answer arrives: `committed` is called then.
    ingest: async (batch, committed) => {
      const outcomes = await call<readonly DeliveryOutcome[]>('ingest', batch);
      if (batch.length > 0) committed?.();
      return outcomes;
    },
    getJob: (id) => call('getJob', id),
    listJobs: (filter) => call('listJobs', filter),
    countJobsByDefinition: (status) => call('countJobsByDefinition', status),
    busyRunnerNames: () => call('busyRunnerNames'),
    getDelivery: (id) => call('getDelivery', id),
    countDeliveries: () => call('countDeliveries'),
    keepUnparsable: (batch) => call('keepUnparsable', batch),
    listUnparsable: (filter) => call('listUnparsable', filter),
    updateUnparsable: (id, update) => call('updateUnparsable', id, update),
    prune: (before) => call('prune', before),
    async close() {
      if (dead !== undefined) return;
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      await call('close');
      await exited;
    },
  };
  // Opening the database happens in the thread; surface its errors here.
  await store.countDeliveries().catch((err: unknown) => {
    void worker.terminate();
    throw isOpenError(err) ? new FlintError('FLINT_ERR_STORE_OPEN_FAILED', `cannot open the state database in ${stateDir}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err }) : err;
  });
  return store;
}

function isOpenError(err: unknown): boolean {
  return err instanceof FlintError && err.code !== 'FLINT_ERR_STORE_SCHEMA';
}
