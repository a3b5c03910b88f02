import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseVmId, runnerName, tapName, tapPrefix, vmId, vmIdFromRunnerName, vmIdFromTap } from './ids.ts';

test('VM ids, tap names and their round trip carry the instance tag', () => {
  const id = vmId('h7k2', 42);
  assert.equal(id, 'h7k2-00016');
  assert.equal(tapName(id), 'fh7k2-00016');
  assert.equal(vmIdFromTap(tapName(id), 'h7k2'), id);
  assert.equal(vmIdFromTap(tapName(id), 'h7k'), undefined, 'another instance never claims the tap');
});

test('property: every tap fits the 15-character limit and maps back to its VM', () => {
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.integer({ min: 0, max: 36 ** 6 - 1 }), (inst, n) => {
    const id = vmId(inst, n);
    const tap = tapName(id);
    assert.ok(tap.length <= 15, tap);
    assert.ok(tap.startsWith(tapPrefix(inst)));
    assert.equal(vmIdFromTap(tap, inst), id);
    assert.deepEqual(parseVmId(id)?.instanceId, inst);
  }));
});

test('a runner name leads back to its VM, and a runner Flint did not name leads nowhere', () => {
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.integer({ min: 0, max: 36 ** 6 - 1 }), (inst, n) => {
    const id = vmId(inst, n);
    assert.equal(vmIdFromRunnerName(runnerName(id)), id);
  }));
  for (const other of ['ci-runner-1', 'flint-', 'flint-Not_A_Vm', 'FLINT-h7k2-00001', 'flint-h7k2-0000001']) {
    assert.equal(vmIdFromRunnerName(other), undefined, other);
  }
});
