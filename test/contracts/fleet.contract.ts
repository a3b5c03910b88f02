/** The contract every FleetStore keeps (memory, SQLite, PostgreSQL). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FleetStore } from '../../src/daemon/ports/fleet.ts';

export interface FleetUnderTest {
  readonly store: FleetStore;
  /** A second store on the same storage: another host (or, for one process's memory, the same map). */
  readonly other: () => FleetStore | Promise<FleetStore>;
  readonly dispose: () => void | Promise<void>;
}

const TTL = 30_000;
const cap = { vcpus: 8, memoryMib: 16_384 };

export function fleetContract(name: string, make: () => FleetUnderTest | Promise<FleetUnderTest>): void {
  test(`${name}: a heartbeat records the host, a later one refreshes it and keeps its first sighting`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    assert.deepEqual(await s.store.hosts(), []);
    await s.store.heartbeat({ id: 'b2', capacity: cap, vms: 0 }, 1000);
    await s.store.heartbeat({ id: 'a1', capacity: cap, vms: 1, address: 'https://a1.example:8443' }, 1500);
    await s.store.heartbeat({ id: 'b2', capacity: { vcpus: 4, memoryMib: 2048 }, vms: 3 }, 2000);
    assert.deepEqual(await (await s.other()).hosts(), [
      { id: 'a1', capacity: cap, vms: 1, address: 'https://a1.example:8443', firstSeenAt: 1500, lastHeartbeatAt: 1500 },
      { id: 'b2', capacity: { vcpus: 4, memoryMib: 2048 }, vms: 3, firstSeenAt: 1000, lastHeartbeatAt: 2000 },
    ]);
  });

  test(`${name}: two hosts contending for a free lease at once: exactly one leads`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    for (let round = 0; round < 5; round++) {
      const lease = `singletons-${round}`;
      const got = await Promise.all([s.store.acquireLeadership(lease, 'a1', 1000, TTL), other.acquireLeadership(lease, 'b2', 1000, TTL)]);
      assert.equal(got.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(got)}`);
      const holder = got[0] === true ? 'a1' : 'b2';
      assert.deepEqual(await s.store.lease(lease), { name: lease, holder, expiresAt: 1000 + TTL });
    }
  });

  test(`${name}: the holder renews its lease; the other cannot take it before it expires`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 1000, TTL), true);
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1000 + TTL - 1, TTL), false, 'still held');
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 20_000, TTL), true, 'renewed');
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1000 + TTL, TTL), false, 'the renewal moved the expiry');
    assert.deepEqual(await other.lease('singletons'), { name: 'singletons', holder: 'a1', expiresAt: 20_000 + TTL });
  });

  test(`${name}: a leader that stops renewing loses the lease to the other after the ttl, and cannot take it back`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 1000, TTL), true);
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1000 + TTL, TTL), true, 'expired: taken over');
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 1000 + TTL + 1, TTL), false, 'the old leader comes back too late');
    assert.deepEqual(await s.store.lease('singletons'), { name: 'singletons', holder: 'b2', expiresAt: 1000 + 2 * TTL });
  });

  test(`${name}: release hands the lease over at once; a non-holder's release changes nothing`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 1000, TTL), true);
    await other.releaseLeadership('singletons', 'b2');
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1001, TTL), false, 'not released by a non-holder');
    await s.store.releaseLeadership('singletons', 'a1');
    assert.equal(await s.store.lease('singletons'), undefined);
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1002, TTL), true, 'free at once');
  });

  test(`${name}: leases of different names are independent`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    assert.equal(await s.store.acquireLeadership('singletons', 'a1', 1000, TTL), true);
    assert.equal(await other.acquireLeadership('something-else', 'b2', 1000, TTL), true);
    assert.equal(await other.acquireLeadership('singletons', 'b2', 1000, TTL), false);
  });
}
