/** The contract every FleetStore keeps (memory, SQLite, PostgreSQL). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmState } from '../../src/core/vm-state.ts';
import type { FleetStore } from '../../src/daemon/ports/fleet.ts';
import { lostHostReason } from '../../src/daemon/ports/fleet.ts';
import type { RunnerStateStore } from '../../src/daemon/ports/store.ts';
import type { VmStore } from '../../src/daemon/vm/vm-store.ts';
import { newVmRecord } from '../../src/daemon/vm/vm-store.ts';

export interface FleetUnderTest {
  readonly store: FleetStore;
  /** The VM records and runner states on the same storage (markLost changes them). */
  readonly records: { readonly vms: VmStore; readonly runnerStates: RunnerStateStore };
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

  test(`${name}: what a host can hold per definition is stored with its heartbeat, replaced by the next, and read by every host`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const other = await s.other();
    await s.store.heartbeat({ id: 'a1', capacity: cap, vms: 1, canHold: { small: 3, large: 0 } }, 1000);
    await other.heartbeat({ id: 'b2', capacity: cap, vms: 0, canHold: { small: 2 } }, 1000);
    await other.heartbeat({ id: 'c3', capacity: cap, vms: 0 }, 1000); // publishes none
    const read = async (): Promise<Record<string, unknown>> => Object.fromEntries((await other.hosts()).map((h) => [h.id, h.canHold]));
    assert.deepEqual(await read(), { a1: { small: 3, large: 0 }, b2: { small: 2 }, c3: undefined });
    // Each heartbeat replaces the whole map: a definition gone from the host's configuration leaves no room behind.
    await s.store.heartbeat({ id: 'a1', capacity: cap, vms: 4, canHold: { large: 1 } }, 2000);
    await other.heartbeat({ id: 'b2', capacity: cap, vms: 0 }, 2000);
    assert.deepEqual(await read(), { a1: { large: 1 }, b2: undefined, c3: undefined });
    // markLost keeps the last published room: readers leave a lost host out by its mark.
    await s.store.heartbeat({ id: 'b2', capacity: cap, vms: 0, canHold: { small: 5 } }, 3000);
    assert.notEqual(await s.store.markLost('b2', 4000, 5000), undefined);
    const b2 = (await other.hosts()).find((h) => h.id === 'b2');
    assert.deepEqual([b2?.lostAt, b2?.canHold], [5000, { small: 5 }]);
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

  /** Host `dead` with a VM in every state and two runners, host `alive` with one running VM and runner. */
  async function seed(s: FleetUnderTest): Promise<void> {
    const states: VmState[] = ['preparing', 'booting', 'running', 'stopping', 'stopped', 'failed'];
    for (const [i, state] of states.entries()) {
      const id = `dead-${i}`;
      await s.records.vms.insert(newVmRecord({ id, instanceId: 'dead', runner: 'small', hypervisor: 'qemu', workDir: `/state/vms/${id}`, createdAt: 100 + i }));
      if (state !== 'preparing') await s.records.vms.update(id, 'preparing', { state, ...(state === 'stopped' || state === 'failed' ? { reason: 'ended before', endedAt: 500 } : {}) });
    }
    await s.records.vms.insert(newVmRecord({ id: 'alive-0', instanceId: 'alive', runner: 'small', hypervisor: 'qemu', workDir: '/state/vms/alive-0', createdAt: 100 }));
    await s.records.vms.update('alive-0', 'preparing', { state: 'running' });
    await s.records.runnerStates.put({ vmId: 'dead-2', instanceId: 'dead', definition: 'small', phase: 'busy', githubRunnerId: 42, idleSince: null, startedAt: 200 });
    await s.records.runnerStates.put({ vmId: 'dead-0', instanceId: 'dead', definition: 'large', phase: 'starting', githubRunnerId: null, idleSince: null, startedAt: 100 });
    await s.records.runnerStates.put({ vmId: 'alive-0', instanceId: 'alive', definition: 'small', phase: 'idle', githubRunnerId: 7, idleSince: 300, startedAt: 100 });
    await s.store.heartbeat({ id: 'dead', capacity: cap, vms: 4 }, 1000);
    await s.store.heartbeat({ id: 'alive', capacity: cap, vms: 1 }, 1000);
  }

  const states = async (s: FleetUnderTest, ids: readonly string[]): Promise<Array<string | undefined>> =>
    Promise.all(ids.map(async (id) => (await s.records.vms.get(id))?.state));

  test(`${name}: a host whose heartbeat is older than the cut-off is marked lost: its unfinished VMs fail, its runners are handed back`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await seed(s);
    await s.store.heartbeat({ id: 'alive', capacity: cap, vms: 1 }, 95_000);
    const lost = await (await s.other()).markLost('dead', 5000, 96_000);
    assert.deepEqual(lost, {
      hostId: 'dead', lastHeartbeatAt: 1000, failedVms: ['dead-0', 'dead-1', 'dead-2', 'dead-3'],
      runners: [{ vmId: 'dead-0', definition: 'large', githubRunnerId: null }, { vmId: 'dead-2', definition: 'small', githubRunnerId: 42 }],
    });
    assert.deepEqual(await states(s, ['dead-0', 'dead-1', 'dead-2', 'dead-3', 'dead-4', 'dead-5', 'alive-0']),
      ['failed', 'failed', 'failed', 'failed', 'stopped', 'failed', 'running']);
    const running = await s.records.vms.get('dead-2');
    assert.equal(running?.reason, lostHostReason('dead'));
    assert.equal(running?.endedAt, 96_000);
    const ended = await s.records.vms.get('dead-5');
    assert.deepEqual([ended?.reason, ended?.endedAt], ['ended before', 500], 'a record already terminal is left as it was');
    assert.deepEqual(await s.records.vms.listUnfinished('dead'), []);
    assert.deepEqual(await s.records.runnerStates.list('dead'), []);
    assert.deepEqual((await s.records.runnerStates.list('alive')).map((r) => r.vmId), ['alive-0'], 'another host\'s runners stay');
    const hosts = await s.store.hosts();
    assert.deepEqual(hosts.map((h) => [h.id, h.lostAt]), [['alive', undefined], ['dead', 96_000]]);
  });

  test(`${name}: a host whose heartbeat is newer than the cut-off is not marked, and nothing of it changes`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await seed(s);
    assert.equal(await s.store.markLost('alive', 1000, 96_000), undefined, 'a heartbeat at the cut-off itself is not older');
    assert.equal(await s.store.markLost('nobody', 5000, 96_000), undefined, 'an unknown host');
    assert.deepEqual(await states(s, ['alive-0']), ['running']);
    assert.equal((await s.records.runnerStates.list('alive')).length, 1);
    assert.ok((await s.store.hosts()).every((h) => h.lostAt === undefined));
  });

  test(`${name}: a host that heartbeats between the leader's read and its mark is left alone`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await seed(s);
    const seen = (await s.store.hosts()).find((h) => h.id === 'dead');
    assert.equal(seen?.lastHeartbeatAt, 1000, 'the leader reads a stale heartbeat');
    await (await s.other()).heartbeat({ id: 'dead', capacity: cap, vms: 4 }, 95_500);
    assert.equal(await s.store.markLost('dead', 5000, 96_000), undefined);
    assert.deepEqual(await states(s, ['dead-0', 'dead-1', 'dead-2', 'dead-3']), ['preparing', 'booting', 'running', 'stopping']);
    assert.equal((await s.records.runnerStates.list('dead')).length, 2);
    assert.equal((await s.store.hosts()).find((h) => h.id === 'dead')?.lostAt, undefined);
  });

  test(`${name}: marking is idempotent; a heartbeat clears the mark and a host that dies again is marked again`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    await seed(s);
    assert.notEqual(await s.store.markLost('dead', 5000, 96_000), undefined);
    assert.equal(await s.store.markLost('dead', 6000, 97_000), undefined, 'already lost');
    assert.equal((await s.store.hosts()).find((h) => h.id === 'dead')?.lostAt, 96_000, 'the first mark stays');
    assert.equal((await s.records.vms.get('dead-2'))?.endedAt, 96_000);
    await s.store.heartbeat({ id: 'dead', capacity: cap, vms: 0 }, 100_000);
    const back = (await s.store.hosts()).find((h) => h.id === 'dead');
    assert.deepEqual([back?.lastHeartbeatAt, back?.lostAt, back?.firstSeenAt], [100_000, undefined, 1000], 'it came back');
    await s.records.runnerStates.put({ vmId: 'dead-9', instanceId: 'dead', definition: 'small', phase: 'idle', githubRunnerId: 9, idleSince: 100_000, startedAt: 100_000 });
    assert.deepEqual(await s.store.markLost('dead', 150_000, 200_000),
      { hostId: 'dead', lastHeartbeatAt: 100_000, failedVms: [], runners: [{ vmId: 'dead-9', definition: 'small', githubRunnerId: 9 }] });
  });
}
