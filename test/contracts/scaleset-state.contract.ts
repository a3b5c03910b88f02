/** The contract every ScaleSetStateStore keeps (SQLite, memory, PostgreSQL). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScaleSetListenerState, ScaleSetStateStore } from '../../src/daemon/ports/scaleset-store.ts';

export interface ScaleSetStateUnderTest {
  readonly store: ScaleSetStateStore;
  /** A second store on the same durable storage (a restarted Flint); undefined for stores without any. */
  readonly reopen?: () => ScaleSetStateStore | Promise<ScaleSetStateStore>;
  readonly dispose: () => void | Promise<void>;
}

const key = { runnerGroup: 'Default', name: 'flint-small' };
const base: ScaleSetListenerState = { ...key, scaleSetId: 7, sessionId: 's-1', lastMessageId: 0, owner: 'flint-ab1', updatedAt: 1000 };

export function scaleSetStateContract(name: string, make: () => ScaleSetStateUnderTest | Promise<ScaleSetStateUnderTest>): void {
  test(`${name}: nothing is on record for a scale set never listened to`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    assert.equal(await s.store.get(key), undefined);
  });

  test(`${name}: a put is read back and replaces the earlier state; scale sets are told apart by group and name`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await s.store.put(base);
    await s.store.put({ ...base, runnerGroup: 'Other', scaleSetId: 9 });
    assert.deepEqual(await s.store.get(key), base);
    const next = { ...base, sessionId: 's-2', lastMessageId: 4, updatedAt: 2000 };
    await s.store.put(next);
    assert.deepEqual(await s.store.get(key), next);
    assert.equal((await s.store.get({ runnerGroup: 'Other', name: key.name }))?.scaleSetId, 9);
  });

  test(`${name}: advance records the last committed message for the owner's session only`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    assert.equal(await s.store.advance(key, { owner: 'flint-ab1', sessionId: 's-1', scaleSetId: 7, lastMessageId: 3, at: 1500 }), false, 'no row: nothing to advance');
    await s.store.put(base);
    assert.equal(await s.store.advance(key, { owner: 'flint-ab1', sessionId: 's-1', scaleSetId: 8, lastMessageId: 3, at: 1500 }), true);
    assert.deepEqual(await s.store.get(key), { ...base, scaleSetId: 8, lastMessageId: 3, updatedAt: 1500 });
    assert.equal(await s.store.advance(key, { owner: 'flint-zz9', sessionId: 's-1', scaleSetId: 8, lastMessageId: 5, at: 1600 }), false, 'another owner');
    assert.equal(await s.store.advance(key, { owner: 'flint-ab1', sessionId: 's-old', scaleSetId: 8, lastMessageId: 5, at: 1600 }), false, 'another session');
    assert.equal((await s.store.get(key))?.lastMessageId, 3);
  });

  test(`${name}: clearSession forgets the owner's session and leaves another owner's alone`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await s.store.put(base);
    await s.store.clearSession(key, 'flint-zz9', 1700);
    assert.equal((await s.store.get(key))?.sessionId, 's-1');
    await s.store.clearSession(key, 'flint-ab1', 1800);
    assert.deepEqual(await s.store.get(key), { ...base, sessionId: null, updatedAt: 1800 });
    await s.store.clearSession({ runnerGroup: 'x', name: 'y' }, 'flint-ab1', 1900);
    assert.equal(await s.store.get({ runnerGroup: 'x', name: 'y' }), undefined, 'an unknown scale set stays unknown');
  });

  test(`${name}: the state survives a restart`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    if (s.reopen === undefined) return t.skip('no durable storage');
    await s.store.put({ ...base, lastMessageId: 12 });
    assert.deepEqual(await (await s.reopen()).get(key), { ...base, lastMessageId: 12 });
  });
}
