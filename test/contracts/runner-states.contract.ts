/** The contract every RunnerStateStore keeps (SQLite and memory). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunnerState, RunnerStateStore } from '../../src/daemon/ports/store.ts';

export interface RunnerStatesUnderTest {
  readonly store: RunnerStateStore;
  /** A second store on the same durable storage (a restarted Flint); undefined for stores without any. */
  readonly reopen?: () => RunnerStateStore | Promise<RunnerStateStore>;
  readonly dispose: () => void | Promise<void>;
}

const base: RunnerState = { vmId: 'ab1-00001', instanceId: 'ab1', definition: 'small', phase: 'starting', githubRunnerId: null, idleSince: null, startedAt: 1000 };

export function runnerStatesContract(name: string, make: () => RunnerStatesUnderTest | Promise<RunnerStatesUnderTest>): void {
  test(`${name}: a runner's state is kept and each change replaces it`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await s.store.put(base);
    assert.deepEqual(await s.store.list('ab1'), [base]);
    const idle = { ...base, phase: 'idle' as const, githubRunnerId: 77, idleSince: 1500 };
    await s.store.put(idle);
    assert.deepEqual(await s.store.list('ab1'), [idle]);
  });

  test(`${name}: list is per instance, oldest launch first`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await s.store.put({ ...base, vmId: 'ab1-00003', startedAt: 3000 });
    await s.store.put({ ...base, vmId: 'ab1-00002', startedAt: 2000, phase: 'busy' });
    await s.store.put({ ...base, vmId: 'zz9-00001', instanceId: 'zz9' });
    assert.deepEqual((await s.store.list('ab1')).map((r) => r.vmId), ['ab1-00002', 'ab1-00003']);
    assert.deepEqual((await s.store.list('zz9')).map((r) => r.vmId), ['zz9-00001']);
    assert.deepEqual(await s.store.list('none'), []);
  });

  test(`${name}: remove forgets a runner and is idempotent`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await s.store.put(base);
    await s.store.remove(base.vmId);
    await s.store.remove(base.vmId);
    assert.deepEqual(await s.store.list('ab1'), []);
  });

  test(`${name}: a restarted Flint reads back what the previous one wrote`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    if (s.reopen === undefined) return;
    const busy = { ...base, phase: 'busy' as const, githubRunnerId: 12 };
    await s.store.put(busy);
    assert.deepEqual(await (await s.reopen()).list('ab1'), [busy]);
  });
}
