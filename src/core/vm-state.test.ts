import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isFlintError } from './errors/index.ts';
import { canTransition, checkTransition, classifyEnd, isTerminal, isVmState, TRANSITIONS, VM_STATES } from './vm-state.ts';
import type { VmState } from './vm-state.ts';

test('the normal life of a job VM: preparing → booting → running → stopped', () => {
  let s: VmState = 'preparing';
  s = checkTransition('h7k2-00001', s, 'booting', 'vmm started');
  s = checkTransition('h7k2-00001', s, 'running', 'booted marker');
  s = checkTransition('h7k2-00001', s, 'stopped', 'guest powered off');
  assert.ok(isTerminal(s));
});

test('a VMM that exits during boot can only fail, never stop cleanly', () => {
  assert.ok(canTransition('booting', 'failed'));
  assert.ok(!canTransition('booting', 'stopped'));
});

test('an illegal transition is a typed error naming the VM, both states and the trigger', () => {
  assert.throws(() => checkTransition('h7k2-00002', 'stopped', 'running', 'late booted marker'), (err: unknown) => {
    assert.ok(isFlintError(err, 'FLINT_ERR_VM_ILLEGAL_TRANSITION'));
    assert.match(err.message, /h7k2-00002/);
    assert.match(err.message, /stopped → running/);
    assert.deepEqual(err.details, { vmId: 'h7k2-00002', from: 'stopped', to: 'running', trigger: 'late booted marker' });
    return true;
  });
});

test('terminal states have no way out; every other state can fail (the start-up sweep relies on it)', () => {
  for (const s of VM_STATES) {
    if (isTerminal(s)) assert.equal(TRANSITIONS[s].length, 0, s);
    else assert.ok(canTransition(s, 'failed'), `${s} → failed`);
  }
});

test('property: every state is reachable from preparing and every path ends in a terminal state', () => {
  // Walk random paths through the table: each must stay in the table and,
  // because the graph has no cycles, reach a terminal state in ≤ 5 steps.
  fc.assert(fc.property(fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), (choices) => {
    let s: VmState = 'preparing';
    let steps = 0;
    for (const c of choices) {
      const edges = TRANSITIONS[s];
      if (edges.length === 0) break;
      const edge = edges[c % edges.length];
      assert.ok(edge !== undefined);
      s = checkTransition('x-1', s, edge.to, 'property');
      steps++;
    }
    assert.ok(isTerminal(s), `ended in ${s} after ${steps} steps`);
  }));
  const seen = new Set<VmState>(['preparing']);
  const queue: VmState[] = ['preparing'];
  while (queue.length > 0) {
    const s = queue.shift();
    if (s === undefined) break;
    for (const e of TRANSITIONS[s]) if (!seen.has(e.to)) { seen.add(e.to); queue.push(e.to); }
  }
  assert.deepEqual([...seen].sort(), [...VM_STATES].sort());
});

test('property: checkTransition agrees with the table for every pair of states', () => {
  fc.assert(fc.property(fc.constantFrom(...VM_STATES), fc.constantFrom(...VM_STATES), (from, to) => {
    const allowed = TRANSITIONS[from].some((e) => e.to === to);
    if (allowed) assert.equal(checkTransition('x-1', from, to, 't'), to);
    else assert.throws(() => checkTransition('x-1', from, to, 't'));
  }));
});

test('isVmState accepts exactly the six states', () => {
  for (const s of VM_STATES) assert.ok(isVmState(s));
  assert.ok(!isVmState('paused'));
});

test('classifyEnd: a clean power-off while running is stopped', () => {
  assert.deepEqual(classifyEnd({ stateAtExit: 'running', exit: { code: 0, signal: null } }), { state: 'stopped', reason: 'the guest powered off' });
});

test('classifyEnd: a VMM exiting during boot is a failure even with code 0', () => {
  const end = classifyEnd({ stateAtExit: 'booting', exit: { code: 0, signal: null } });
  assert.equal(end.state, 'failed');
  assert.match(end.reason, /before the guest booted \(code 0\)/);
});

test('classifyEnd: a VMM killed by a signal nobody asked for is a crash', () => {
  const end = classifyEnd({ stateAtExit: 'running', exit: { code: null, signal: 'SIGSEGV' } });
  assert.equal(end.state, 'failed');
  assert.match(end.reason, /SIGSEGV/);
});

test('classifyEnd: a stop caused by a failure ends failed, a requested stop ends stopped, whatever the exit', () => {
  const exit = { code: null, signal: 'SIGKILL' };
  assert.deepEqual(classifyEnd({ stateAtExit: 'stopping', exit, stopRequest: { reason: 'boot timeout', failure: true } }), { state: 'failed', reason: 'boot timeout' });
  assert.deepEqual(classifyEnd({ stateAtExit: 'stopping', exit, stopRequest: { reason: 'shutdown', failure: false } }), { state: 'stopped', reason: 'shutdown' });
});
