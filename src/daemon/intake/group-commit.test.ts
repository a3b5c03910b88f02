import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGroupCommit } from './group-commit.ts';
import { raceTimeout } from '../../adapters/race-timeout.ts';

test('items submitted in one turn are committed together, in order', async () => {
  const batches: number[][] = [];
  const gc = createGroupCommit<number, string>(async (b) => { batches.push([...b]); return b.map((n) => `ok ${n}`); });
  const results = await Promise.all([1, 2, 3].map((n) => gc.submit(n)));
  assert.deepEqual(results, ['ok 1', 'ok 2', 'ok 3']);
  assert.deepEqual(batches, [[1, 2, 3]]);
});

test('items submitted while a commit is in flight wait for it and go in the next batch', async () => {
  const batches: number[][] = [];
  let release!: () => void; // assigned synchronously by the Promise executor below
  const gate = new Promise<void>((r) => { release = r; });
  const gc = createGroupCommit<number, number>(async (b) => {
    batches.push([...b]);
    if (batches.length === 1) await gate;
    return b;
  });
  const first = gc.submit(1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [[1]], 'first commit started');
  const later = [gc.submit(2), gc.submit(3)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [[1]], 'no second commit while the first is in flight');
  release();
  assert.deepEqual(await Promise.all([first, ...later]), [1, 2, 3]);
  assert.deepEqual(batches, [[1], [2, 3]]);
});

test('a batch whose commit is reported done before it is durable lets the next batch commit meanwhile; each item settles with its own batch', async () => {
  const batches: number[][] = [];
  const durable: Array<() => void> = [];
  const gc = createGroupCommit<number, number>(async (b, committed) => {
    batches.push([...b]);
    committed();
    // Durable later (SQLite under FULL: the WAL's fsync).
    await new Promise<void>((r) => { durable.push(r); });
    return b;
  });
  const settled: number[] = [];
  const first = gc.submit(1).then((n) => { settled.push(n); return n; });
  await new Promise((r) => setImmediate(r));
  const second = gc.submit(2).then((n) => { settled.push(n); return n; });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [[1], [2]], 'the second batch committed while the first waits to be durable');
  let flushed = false;
  const flushing = gc.flush().then(() => { flushed = true; });
  durable[1]?.();
  await second;
  assert.deepEqual(settled, [2], 'each settles with its own batch');
  await new Promise((r) => setImmediate(r));
  assert.equal(flushed, false, 'flush waits for the first batch too');
  durable[0]?.();
  assert.deepEqual(await Promise.all([first, second]), [1, 2]);
  await flushing;
});

test('a failed commit rejects exactly its own batch, and the next batch still commits', async () => {
  let calls = 0;
  const gc = createGroupCommit<number, number>(async (b) => {
    calls++;
    if (calls === 1) throw new Error('disk full');
    return b;
  });
  const failed = [gc.submit(1), gc.submit(2)];
  await assert.rejects(failed[0] as Promise<number>, /disk full/);
  await assert.rejects(failed[1] as Promise<number>, /disk full/);
  assert.equal(await gc.submit(3), 3);
});

test('maxBatch splits a large turn into several transactions', async () => {
  const sizes: number[] = [];
  const gc = createGroupCommit<number, number>(async (b) => { sizes.push(b.length); return b; }, { maxBatch: 4 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(i)));
  assert.deepEqual(sizes, [4, 4, 2]);
});

test('flush waits for everything submitted so far', async () => {
  const done: number[] = [];
  const gc = createGroupCommit<number, number>(async (b) => {
    await new Promise((r) => setTimeout(r, 10));
    done.push(...b);
    return b;
  });
  void gc.submit(1);
  void gc.submit(2);
  assert.equal(gc.pending, 2);
  await gc.flush();
  assert.deepEqual(done, [1, 2]);
  assert.equal(gc.pending, 0);
});

test('a store that returns the wrong number of results fails the batch instead of mismatching replies', async () => {
  const gc = createGroupCommit<number, number>(async () => [1]);
  await assert.rejects(Promise.all([gc.submit(1), gc.submit(2)]), /2 items/);
});

test('after a flush that ran ahead of the scheduled commit, later submits still commit', async () => {
  const gc = createGroupCommit<number, number>(async (b) => b);
  const first = gc.submit(1);
  await gc.flush(); // drains the queue before the deferred commit fires on an empty queue
  assert.equal(await first, 1);
  await new Promise((r) => setImmediate(r));
  const second = await raceTimeout(gc.submit(2), 1000, () => 'stuck');
  assert.equal(second, 2);
});

test('property: every submitted item is answered with its own result, whatever the interleaving of submits and flushes', async () => {
  const { default: fc } = await import('fast-check');
  await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom('submit', 'flush', 'tick'), { maxLength: 30 }), async (ops) => {
    const gc = createGroupCommit<number, number>(async (b) => { await Promise.resolve(); return b.map((n) => n * 10); });
    const pending: Promise<void>[] = [];
    let n = 0;
    for (const op of ops) {
      if (op === 'submit') {
        const k = ++n;
        pending.push(gc.submit(k).then((r) => assert.equal(r, k * 10)));
      } else if (op === 'flush') await gc.flush();
      else await new Promise((r) => setImmediate(r));
    }
    const all = Promise.all(pending);
    const outcome = await raceTimeout(all.then(() => 'done'), 2000, () => 'stuck');
    assert.equal(outcome, 'done');
  }), { numRuns: 100 });
});

test('an item submitted by the continuation of the previous item is committed too', { timeout: 5000 }, async () => {
  // Each submit happens in the microtasks that follow the previous result,
  // possibly after the previous drain last looked at the queue but before
  // it finished; callers sit behind a few async layers (as the HTTP handler
  // does), so try many depths. A lost item hangs (and the timeout fails it).
  for (let depth = 0; depth < 12; depth++) {
    const gc = createGroupCommit<number, number>(async (b) => b);
    const layered = async (i: number, d: number): Promise<number> => (d === 0 ? gc.submit(i) : await layered(i, d - 1));
    const got: number[] = [];
    for (let i = 1; i <= 3; i++) got.push(await layered(i, depth));
    assert.deepEqual(got, [1, 2, 3], `depth ${depth}`);
  }
});
