/**
 * Group commit: every item submitted during one turn of the event loop is
 * written in ONE store transaction, and each submitter's promise settles
 * only after that transaction committed. One fsync then pays for a whole
 * batch of deliveries instead of one each, which is what lets the intake be
 * durable and fast at once.
 *
 * Invariants: commits run one at a time, in submission order; a failed
 * commit rejects exactly the items of its batch (they were not stored) and
 * later batches still run. A store whose commit is visible before it is
 * durable (SQLite under FULL: the WAL's fsync comes after) says so by
 * calling `committed`: the next batch may then commit while this one waits
 * for its fsync, and its own fsync need not wait for that one
 * (adapters/store/db.ts overlappingSync). Each item still settles only once
 * its own batch is done.
 */
export interface GroupCommit<T, R> {
  submit(item: T): Promise<R>;
  /** Resolves when everything submitted so far has been committed (or failed). */
  flush(): Promise<void>;
  /** Items waiting for the next commit (for metrics). */
  readonly pending: number;
}

export interface GroupCommitOptions {
  /** Largest batch per transaction; more waits for the next one. Default 512. */
  readonly maxBatch?: number;
  /** Runs `fn` after the current turn's I/O callbacks. Default setImmediate. */
  readonly defer?: (fn: () => void) => void;
}

interface Waiter<T, R> { readonly item: T; readonly resolve: (r: R) => void; readonly reject: (e: unknown) => void }

export function createGroupCommit<T, R>(
  commit: (batch: readonly T[], committed: () => void) => Promise<readonly R[]>,
  options: GroupCommitOptions = {},
): GroupCommit<T, R> {
  const maxBatch = options.maxBatch ?? 512;
  const defer = options.defer ?? ((fn: () => void) => { setImmediate(fn); });
  let queue: Waiter<T, R>[] = [];
  let running: Promise<void> | undefined;
  let scheduled = false;

  /** Batches committing or waiting for their durability; flush() waits for them. */
  const inFlight = new Set<Promise<void>>();

  /** Commits the next batch; resolves once the next one may start (its commit is done, or it settled). */
  const runOnce = (): Promise<void> => {
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => { release = r; });
    const settled = (async () => {
      try {
        const results = await commit(batch.map((w) => w.item), release);
        if (results.length !== batch.length) throw new Error(`store returned ${results.length} results for ${batch.length} items`);
        // Index is within bounds: results.length === batch.length was just checked.
        batch.forEach((w, i) => w.resolve(results[i] as R));
      } catch (err) {
        for (const w of batch) w.reject(err);
      } finally {
        release();
      }
    })();
    inFlight.add(settled);
    void settled.finally(() => inFlight.delete(settled));
    return released;
  };

  // `running` is set before the drain can finish and cleared only by the
  // drain it belongs to (in a later microtask), so a finished drain is never
  // left marked as running. Items submitted after the drain's last look at
  // the queue but before it was cleared found it "running" and did not kick:
  // the drain kicks for them as it ends.
  const startDrain = (): Promise<void> => {
    const p: Promise<void> = (async () => {
      while (queue.length > 0) await runOnce();
    })().finally(() => {
      if (running !== p) return;
      running = undefined;
      if (queue.length > 0) kick();
    });
    running = p;
    return p;
  };

  function kick(): void {
    if (scheduled || running !== undefined) return;
    scheduled = true;
    defer(() => {
      scheduled = false;
      if (running === undefined) void startDrain();
    });
  }

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        kick();
      });
    },
    async flush() {
      while (queue.length > 0 || running !== undefined || scheduled || inFlight.size > 0) {
        if (running !== undefined) await running;
        else if (queue.length > 0) await startDrain();
        else if (scheduled) await new Promise<void>((r) => { defer(r); });
        else await Promise.all([...inFlight]);
      }
    },
    get pending() {
      return queue.length;
    },
  };
}
