/**
 * The behaviour every VmStore must have. Each implementation's test file
 * calls `vmStoreContract` with a factory; the same cases run against all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmStore } from '../../src/daemon/vm/vm-store.ts';
import { newVmRecord } from '../../src/daemon/vm/vm-store.ts';

export function vmStoreContract(name: string, make: () => Promise<{ store: VmStore; close: () => Promise<void> }>): void {
  const rec = (id: string, instanceId = 'ab1', createdAt = 1000) =>
    newVmRecord({ id, instanceId, runner: 'default', hypervisor: 'qemu', workDir: `/state/vms/${id}`, createdAt });

  test(`${name}: sequences start at 0, count up per instance and never repeat`, async (t) => {
    const { store, close } = await make();
    t.after(close);
    assert.equal(await store.nextSequence('ab1'), 0);
    assert.equal(await store.nextSequence('ab1'), 1);
    assert.equal(await store.nextSequence('cd2'), 0, 'another instance has its own counter');
    assert.equal(await store.nextSequence('ab1'), 2);
  });

  test(`${name}: a record round-trips and updates are compare-and-set on the state`, async (t) => {
    const { store, close } = await make();
    t.after(close);
    await store.insert(rec('ab1-00000'));
    assert.deepEqual(await store.get('ab1-00000'), rec('ab1-00000'));
    await store.insert({ ...rec('ab1-00009'), owner: '123:456' });
    assert.equal((await store.get('ab1-00009'))?.owner, '123:456');
    assert.equal(await store.update('ab1-00000', 'preparing', { state: 'booting', pid: 4242, vmmStartTime: '987654', controlSocket: '/s/qemu.qmp', consoleFile: '/s/console.out', startedAt: 1100, prepareMs: 90 }), true);
    assert.equal(await store.update('ab1-00000', 'preparing', { state: 'failed' }), false, 'stale expectation is refused');
    const got = await store.get('ab1-00000');
    assert.equal(got?.state, 'booting');
    assert.equal(got?.pid, 4242);
    assert.deepEqual([got?.vmmStartTime, got?.controlSocket, got?.consoleFile], ['987654', '/s/qemu.qmp', '/s/console.out']);
    assert.equal(got?.prepareMs, 90);
    assert.equal(got?.reason, null);
    assert.equal(await store.update('nope-00000', 'preparing', { state: 'failed' }), false);
    assert.equal(await store.get('nope-00000'), undefined);
  });

  test(`${name}: listUnfinished returns only this instance's non-terminal records, oldest first`, async (t) => {
    const { store, close } = await make();
    t.after(close);
    await store.insert(rec('ab1-00002', 'ab1', 3000));
    await store.insert(rec('ab1-00001', 'ab1', 2000));
    await store.insert(rec('ab1-00003', 'ab1', 4000));
    await store.insert(rec('cd2-00001', 'cd2', 1000));
    await store.update('ab1-00003', 'preparing', { state: 'failed', reason: 'x', endedAt: 5000 });
    assert.deepEqual((await store.listUnfinished('ab1')).map((r) => r.id), ['ab1-00001', 'ab1-00002']);
    assert.deepEqual((await store.listRecent('ab1', 2)).map((r) => r.id), ['ab1-00003', 'ab1-00002']);
  });
}
