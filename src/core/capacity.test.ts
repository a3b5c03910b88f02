import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fleetRunnersCanHold, planScale, runnersHostCanHold, type DefinitionDemand, type HostRoom } from './capacity.ts';

const def = (over: Partial<DefinitionDemand> = {}): DefinitionDemand => ({
  name: 'default', maxRunners: 10, minIdle: 0, cpuCount: 2, memoryMib: 2048, queued: 0, starting: 0, idle: 0, busy: 0, ...over,
});
const big = { cpus: 1000, memoryMib: 1_000_000 };

test('three queued jobs and nothing up start three VMs', () => {
  assert.equal(planScale([def({ queued: 3 })], big).start.get('default'), 3);
});

test('idle and starting runners already cover the queue: start nothing', () => {
  const plan = planScale([def({ queued: 3, idle: 1, starting: 2 })], big);
  assert.equal(plan.start.get('default'), undefined);
});

test('maxRunners bounds the VMs, busy ones included', () => {
  assert.equal(planScale([def({ queued: 20, busy: 7, maxRunners: 10 })], big).start.get('default'), 3);
});

test('the warm pool is kept at minIdle with no jobs queued', () => {
  assert.equal(planScale([def({ minIdle: 2, idle: 1 })], big).start.get('default'), 1);
});

test('idle runners beyond the warm pool are stopped, busy ones never', () => {
  const plan = planScale([def({ minIdle: 1, idle: 4, busy: 5 })], big);
  assert.equal(plan.stopIdle.get('default'), 3);
});

test('a spent host budget defers VMs and shares what is left round-robin', () => {
  const plan = planScale([def({ name: 'a', queued: 5 }), def({ name: 'b', queued: 5 })], { cpus: 6, memoryMib: 1_000_000 });
  assert.equal(plan.start.get('a'), 2);
  assert.equal(plan.start.get('b'), 1);
  assert.equal(plan.deferredForBudget, 7);
});

test('a definition backing off starts nothing, and that is not deferred for budget', () => {
  const plan = planScale([def({ queued: 50, maxStart: 0 })], big);
  assert.equal(plan.start.get('default'), undefined);
  assert.equal(plan.deferredForBudget, 0);
});

test('a probe allowance of one starts one VM however long the queue', () => {
  assert.equal(planScale([def({ queued: 50, maxRunners: 50, maxStart: 1 })], big).start.get('default'), 1);
});

test('idle runners within their grace period are not stopped, even beyond the warm pool', () => {
  assert.equal(planScale([def({ idle: 4, idlePastGrace: 0 })], big).stopIdle.get('default'), undefined);
  assert.equal(planScale([def({ idle: 4, idlePastGrace: 1 })], big).stopIdle.get('default'), 1);
});

test('a static definition (minIdle = maxRunners) is filled to size and its idle runners are never surplus', () => {
  assert.equal(planScale([def({ maxRunners: 3, minIdle: 3, busy: 1 })], big).start.get('default'), 2);
  assert.equal(planScale([def({ maxRunners: 3, minIdle: 3, idle: 3, idlePastGrace: 3 })], big).stopIdle.get('default'), undefined);
});

const arbDef = fc.record({
  name: fc.constantFrom('a', 'b', 'c'),
  maxRunners: fc.integer({ min: 0, max: 20 }),
  minIdle: fc.integer({ min: 0, max: 5 }),
  cpuCount: fc.integer({ min: 1, max: 8 }),
  memoryMib: fc.integer({ min: 128, max: 8192 }),
  queued: fc.integer({ min: 0, max: 50 }),
  starting: fc.integer({ min: 0, max: 10 }),
  idle: fc.integer({ min: 0, max: 10 }),
  busy: fc.integer({ min: 0, max: 10 }),
}).chain((d) => fc.record({
  idlePastGrace: fc.integer({ min: 0, max: d.idle }),
  maxStart: fc.constantFrom(0, 1, 2, Number.POSITIVE_INFINITY),
}).map((extra) => ({ ...d, ...extra })));

test('property: never above maxRunners, the budget or the launch allowance; never stops an idle runner within its grace', () => {
  fc.assert(fc.property(
    fc.uniqueArray(arbDef, { selector: (d) => d.name, minLength: 1, maxLength: 3 }),
    fc.record({ cpus: fc.integer({ min: 0, max: 64 }), memoryMib: fc.integer({ min: 0, max: 65536 }) }),
    (defs, budget) => {
      const plan = planScale(defs, budget);
      let cpus = 0;
      let mem = 0;
      for (const d of defs) {
        const s = plan.start.get(d.name) ?? 0;
        cpus += s * d.cpuCount;
        mem += s * d.memoryMib;
        assert.ok(s === 0 || d.starting + d.idle + d.busy + s <= d.maxRunners);
        assert.ok((plan.stopIdle.get(d.name) ?? 0) <= d.idlePastGrace, 'only idle runners past their grace are stopped');
        assert.ok(s <= d.maxStart, 'never more than launch health allows');
        assert.ok(s === 0 || (plan.stopIdle.get(d.name) ?? 0) === 0, 'never start and stop the same definition at once');
      }
      assert.ok(cpus <= budget.cpus && mem <= budget.memoryMib);
    },
  ));
});

test('property: with an unbounded budget, demand up to maxRunners and the launch allowance is met', () => {
  fc.assert(fc.property(arbDef, (d) => {
    const s = planScale([d], big).start.get(d.name) ?? 0;
    const up = d.starting + d.idle + d.busy;
    const want = d.queued + d.minIdle;
    assert.equal(s, Math.min(Math.max(0, want - d.starting - d.idle), Math.max(0, d.maxRunners - up), d.maxStart));
  }));
});

test('runnersHostCanHold: the runners a host has plus what fits in its free capacity, at most maxRunners', () => {
  const d = { maxRunners: 10, cpuCount: 2, memoryMib: 1024 };
  assert.equal(runnersHostCanHold(d, 0, { cpus: 8, memoryMib: 16_384 }), 4, 'vCPUs bound it');
  assert.equal(runnersHostCanHold(d, 3, { cpus: 8, memoryMib: 2048 }), 5, 'memory bounds it; live runners count');
  assert.equal(runnersHostCanHold(d, 9, { cpus: 64, memoryMib: 65_536 }), 10, 'never beyond maxRunners');
  assert.equal(runnersHostCanHold(d, 2, { cpus: 1, memoryMib: 512 }), 2, 'no room: what it has');
  assert.equal(runnersHostCanHold(d, 0, { cpus: -2, memoryMib: 0 }), 0);
});

test('fleetRunnersCanHold: the sum of what the live hosts can hold, stale and lost hosts left out', () => {
  const now = 100_000;
  const fresh = 20_000;
  const hosts: HostRoom[] = [
    { id: 'a', lastHeartbeatAt: now - 1_000, canHold: { small: 3, large: 1 } },
    { id: 'b', lastHeartbeatAt: now - fresh, canHold: { small: 4 } }, // exactly two intervals old: still up
    { id: 'c', lastHeartbeatAt: now - fresh - 1, canHold: { small: 5 } }, // late: it may be dead
    { id: 'd', lastHeartbeatAt: now - 500, lostAt: now - 400, canHold: { small: 6 } }, // marked lost
    { id: 'e', lastHeartbeatAt: now - 500 }, // publishes nothing (an older Flint)
    { id: 'f', lastHeartbeatAt: now - 500, canHold: { large: 2 } }, // nothing of this definition on record
  ];
  assert.equal(fleetRunnersCanHold('small', hosts, now, fresh), 7);
  assert.equal(fleetRunnersCanHold('large', hosts, now, fresh), 3);
  assert.equal(fleetRunnersCanHold('small', [], now, fresh), 0, 'no host: no room');
  assert.equal(fleetRunnersCanHold('constructor', hosts, now, fresh), 0, 'only the names a host published count');
  // Each host's figure is bounded by its own maxRunners: three hosts of maxRunners 1 hold three, not one.
  const three: HostRoom[] = ['x', 'y', 'z'].map((id) => ({ id, lastHeartbeatAt: now, canHold: { small: 1 } }));
  assert.equal(fleetRunnersCanHold('small', three, now, fresh), 3);
});

test('fleetRunnersCanHold: the caller counts with what it can hold now, in place of its heartbeat, even before its first one', () => {
  const hosts: HostRoom[] = [
    { id: 'a', lastHeartbeatAt: 1000, canHold: { small: 4 } },
    { id: 'b', lastHeartbeatAt: 1000, canHold: { small: 2 } },
  ];
  assert.equal(fleetRunnersCanHold('small', hosts, 1000, 2000, { id: 'a', canHold: 1 }), 3, 'a is full now: its heartbeat\'s 4 does not count');
  assert.equal(fleetRunnersCanHold('small', hosts, 1000, 2000, { id: 'z', canHold: 2 }), 8, 'a host not yet on record');
  assert.equal(fleetRunnersCanHold('small', hosts, 9000, 2000, { id: 'a', canHold: 2 }), 2, 'everyone else late: the caller alone');
});

test('property: fleetRunnersCanHold is the sum over live hosts only, never negative', () => {
  const host = fc.record({
    id: fc.constantFrom('a', 'b', 'c', 'd'), age: fc.integer({ min: 0, max: 50 }), lost: fc.boolean(), n: fc.integer({ min: -2, max: 30 }),
  });
  fc.assert(fc.property(fc.array(host, { maxLength: 6 }), fc.integer({ min: 0, max: 50 }), (raw, freshMs) => {
    const now = 1000;
    const hosts: HostRoom[] = raw.map((h) => ({ id: h.id, lastHeartbeatAt: now - h.age, canHold: { x: h.n }, ...(h.lost ? { lostAt: now } : {}) }));
    const all = fleetRunnersCanHold('x', hosts, now, freshMs);
    const live = raw.filter((h) => !h.lost && h.age <= freshMs);
    assert.equal(all, live.reduce((sum, h) => sum + Math.max(0, h.n), 0));
  }));
});
