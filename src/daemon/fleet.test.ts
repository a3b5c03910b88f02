import { test } from 'node:test';
import { fakeTime } from '../../test/fakes/fake-time.ts';
import assert from 'node:assert/strict';
import { createMemoryFleet } from '../adapters/store/memory-fleet.ts';
import type { FleetStore } from './ports/fleet.ts';
import { startFleetMembership } from './fleet.ts';

const quiet = { info: () => undefined, warn: () => undefined };
const cap = { vcpus: 4, memoryMib: 4096 };

function member(fleet: FleetStore, id: string, time: ReturnType<typeof fakeTime>, changes: boolean[] = []) {
  return startFleetMembership({
    fleet, host: () => ({ id, capacity: cap, vms: 0 }), clock: { now: time.now }, logger: quiet, timers: time,
    heartbeatMs: 10_000, leaseTtlMs: 30_000, onLeadership: (l) => changes.push(l),
  });
}

test('two hosts: one leads, both heartbeat; the leader that dies is replaced after the ttl, one that stops hands over at once', async () => {
  const fleet = createMemoryFleet();
  const time = fakeTime();
  const a = member(fleet, 'a1', time);
  await time.advance(0);
  const b = member(fleet, 'b2', time);
  await time.advance(0);
  assert.equal(a.leader(), true);
  assert.equal(b.leader(), false);
  await time.advance(60_000);
  assert.equal(a.leader(), true, 'renewed every ttl/3');
  assert.equal(b.leader(), false);
  assert.deepEqual((await fleet.hosts()).map((h) => [h.id, h.lastHeartbeatAt]), [['a1', time.now()], ['b2', time.now()]]);
  await a.stop();
  assert.equal(a.leader(), false);
  await time.advance(10_000);
  assert.equal(b.leader(), true, 'released: the other takes it at its next renewal');
  await b.stop();
});

test('a leader whose store stops answering stops counting itself leader when its lease lapses, and the other takes over then', async () => {
  const shared = createMemoryFleet();
  let down = false;
  const flaky: FleetStore = {
    ...shared,
    acquireLeadership: (...args) => (down ? Promise.reject(new Error('connection refused')) : shared.acquireLeadership(...args)),
    heartbeat: (...args) => (down ? Promise.reject(new Error('connection refused')) : shared.heartbeat(...args)),
  };
  const time = fakeTime();
  const changes: boolean[] = [];
  const a = member(flaky, 'a1', time, changes);
  await time.advance(0);
  const b = member(shared, 'b2', time);
  await time.advance(0);
  assert.equal(a.leader(), true);
  down = true;
  await time.advance(20_000);
  assert.equal(a.leader(), true, 'still within the lease taken last');
  assert.equal(b.leader(), false);
  await time.advance(10_000);
  assert.equal(a.leader(), false, 'lapsed');
  assert.equal(b.leader(), true, 'taken over once expired');
  assert.deepEqual(changes, [true, false]);
  await a.stop();
  await b.stop();
});
