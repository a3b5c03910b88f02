import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatus, jobViews } from './status.ts';
import type { StatusInputs } from './status.ts';
import { fleetInputs, loop, statusInputs as inputs, T } from '../../test/fixtures/status-inputs.ts';

test('definitions show demand, runners, limits and launch health; a paused one says so before its health', () => {
  const s = buildStatus(inputs({ paused: { host: false, definitions: ['big'] } }));
  assert.deepEqual(s.definitions.map((d) => [d.name, d.state, d.queued, d.runners, d.health.state]), [
    ['small', 'active', 3, { starting: 1, idle: 0, busy: 1, ending: 0 }, 'healthy'],
    ['big', 'paused', 0, { starting: 0, idle: 0, busy: 0, ending: 0 }, 'backing-off'],
  ]);
  assert.equal(s.definitions[1]?.health.nextAttemptAt, T + 25_000);
  assert.equal(buildStatus(inputs()).definitions[1]?.state, 'backing-off');
  assert.equal(buildStatus(inputs({ paused: { host: true, definitions: [] } })).host.state, 'paused');
  assert.equal(buildStatus(inputs({ paused: { host: true, definitions: [] }, shuttingDown: true })).host.state, 'shutting-down');
});

test('VMs oldest first, with age, address, runner phase, timings and the job their runner runs (the running one over a finished one)', () => {
  const s = buildStatus(inputs());
  assert.deepEqual(s.vms.map((v) => v.id), ['ab-00001', 'ab-00002']);
  assert.deepEqual(s.vms[0], {
    id: 'ab-00001', definition: 'small', state: 'running', runner: 'busy', address: '10.0.0.2', ageMs: 200_000,
    job: { id: 11, repository: 'acme/widgets', name: 'build 11' }, timings: { prepareMs: 50, bootMs: 2000, runnerStartMs: 1000 },
  });
  assert.deepEqual(s.vms[1]?.timings, { prepareMs: 40, bootMs: null, runnerStartMs: null });
  assert.equal(s.vms[1]?.job, null);
});

test('jobs newest first with wait and run times; since keeps those first seen at or after it', () => {
  const views = jobViews(inputs().jobs);
  assert.deepEqual(views.map((j) => [j.id, j.waitMs, j.runMs]), [[12, null, null], [11, 5000, null], [10, 10_000, 190_000]]);
  assert.deepEqual(jobViews(inputs().jobs, T - 200_000).map((j) => j.id), [12, 11]);
});

test('a loop is unhealthy while its last pass failed or it is long overdue, healthy again after a later pass', () => {
  const err = { code: 'FLINT_ERR_GITHUB_UNAVAILABLE', message: 'down', at: T - 950 };
  const [failed, recovered, overdue] = buildStatus(inputs({
    loops: [loop({ lastError: err }), loop({ lastError: { ...err, at: T - 50_000 } }), loop({ nextRunAt: T - 7000 })],
  })).loops;
  assert.equal(failed?.healthy, false);
  assert.equal(recovered?.healthy, true);
  assert.equal(overdue?.healthy, false);
});

test('the snapshot carries only named fields: nothing handed in beyond them reaches it', () => {
  const vm = { ...inputs().vms[0], guestEnv: { FLINT_JITCONFIG: 'SECRET-JIT' } } as unknown as StatusInputs['vms'][number];
  const text = JSON.stringify(buildStatus(inputs({ vms: [vm] })));
  assert.ok(!text.includes('SECRET-JIT'));
});

test('the fleet: every host by id with its heartbeat age and state (up, late after two beats, lost after the timeout or when the store says), the leader and this host', () => {
  const f = buildStatus(inputs({ fleet: fleetInputs() })).fleet;
  assert.ok(f !== null);
  assert.equal(f.leader, 'ab');
  assert.equal(f.leaseExpiresAt, T + 20_000);
  assert.deepEqual(f.hosts.map((h) => [h.id, h.state, h.heartbeatAgeMs, h.self, h.leader, h.lostAt, h.claims]), [
    ['ab', 'up', 1_000, true, true, null, null],
    ['cd', 'late', 25_000, false, false, null, null],
    ['ef', 'lost', 95_000, false, false, null, null],
    ['gh', 'lost', 30_000, false, false, T - 5_000, null],
  ]);
  assert.deepEqual(f.hosts[0], {
    id: 'ab', address: 'http://ab.internal:8080', capacity: { vcpus: 16, memoryMib: 30_000 }, vms: 2, firstSeenAt: T - 3600_000, lastHeartbeatAt: T - 1_000,
    heartbeatAgeMs: 1_000, state: 'up', lostAt: null, self: true, leader: true, claims: null, room: null,
  });
  // A host that publishes its room per definition with its heartbeat shows it.
  const roomy = buildStatus(inputs({ fleet: fleetInputs({ hosts: [{ ...fleetInputs().hosts[0]!, canHold: { small: 3, large: 0 } }] }) })).fleet;
  assert.deepEqual(roomy?.hosts[0]?.room, { small: 3, large: 0 });
  // Exactly two intervals is still up; one ms more is late.
  const edge = buildStatus(inputs({ fleet: fleetInputs({ hosts: [{ ...fleetInputs().hosts[1]!, lastHeartbeatAt: T - 20_000 }] }) })).fleet;
  assert.equal(edge?.hosts[0]?.state, 'up');
});

test('the fleet: an expired lease means no leader; claims per host when work claims are wired (0 for a host with none); no fleet on SQLite', () => {
  const lapsed = buildStatus(inputs({ fleet: fleetInputs({ lease: { name: 'singletons', holder: 'ab', expiresAt: T } }) })).fleet;
  assert.equal(lapsed?.leader, null);
  assert.equal(lapsed?.leaseExpiresAt, null);
  assert.deepEqual(lapsed?.hosts.filter((h) => h.leader), []);
  const claimed = buildStatus(inputs({ fleet: fleetInputs({ claims: new Map([['cd', 3]]) }) })).fleet;
  assert.deepEqual(claimed?.hosts.map((h) => [h.id, h.claims]), [['ab', 0], ['cd', 3], ['ef', 0], ['gh', 0]]);
  assert.equal(buildStatus(inputs()).fleet, null);
});
