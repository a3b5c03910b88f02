import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planScale, runnersHostCanHold, type DefinitionDemand } from './capacity.ts';

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
