/**
 * The contract every TruthStore implementation keeps; run from
 * truth-store.test.ts against SQLite and against the in-memory store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TruthStore } from '../../daemon/ports/store.ts';

export interface TruthStoreUnderTest {
  readonly store: TruthStore;
  readonly dispose: () => void | Promise<void>;
}

export function truthStoreContract(name: string, make: () => TruthStoreUnderTest | Promise<TruthStoreUnderTest>): void {
  const setup = async (t: { after: (fn: () => void | Promise<void>) => void }): Promise<TruthStore> => {
    const s = await make();
    t.after(s.dispose);
    return s.store;
  };

  test(`${name}: a job's last confirmation is kept, the latest wins`, async (t) => {
    const s = await setup(t);
    assert.equal((await s.jobChecks()).size, 0);
    await s.markJobChecked(7, 1000);
    await s.markJobChecked(7, 2000);
    await s.markJobChecked(8, 1500);
    assert.deepEqual([...(await s.jobChecks())].sort((a, b) => a[0] - b[0]), [[7, 2000], [8, 1500]]);
  });

  test(`${name}: a loop's mark is undefined before its first pass, then the last value set`, async (t) => {
    const s = await setup(t);
    assert.equal(await s.getMark('redeliver'), undefined);
    await s.setMark('redeliver', 10);
    await s.setMark('redeliver', 20);
    await s.setMark('other', 5);
    assert.equal(await s.getMark('redeliver'), 20);
  });

  test(`${name}: a redelivery record is replaced by the next one of the same event`, async (t) => {
    const s = await setup(t);
    assert.equal(await s.getRedelivery('g-1'), undefined);
    await s.putRedelivery({ guid: 'g-1', deliveryId: 5, attempts: 1, lastAt: 100 });
    await s.putRedelivery({ guid: 'g-1', deliveryId: 9, attempts: 2, lastAt: 200 });
    assert.deepEqual(await s.getRedelivery('g-1'), { guid: 'g-1', deliveryId: 9, attempts: 2, lastAt: 200 });
  });

  test(`${name}: prune forgets checks and redeliveries older than the cut-off`, async (t) => {
    const s = await setup(t);
    await s.markJobChecked(1, 100);
    await s.markJobChecked(2, 300);
    await s.putRedelivery({ guid: 'old', deliveryId: 1, attempts: 1, lastAt: 100 });
    await s.putRedelivery({ guid: 'new', deliveryId: 2, attempts: 1, lastAt: 300 });
    assert.deepEqual(await s.pruneTruth(200), { jobChecks: 1, redeliveries: 1 });
    assert.deepEqual([...(await s.jobChecks()).keys()], [2]);
    assert.equal(await s.getRedelivery('old'), undefined);
    assert.ok(await s.getRedelivery('new'));
  });
}
