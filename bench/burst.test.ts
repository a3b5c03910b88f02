import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BURST_DEFAULTS, runBurst } from './burst.ts';

test('a burst of 50 queued jobs: every delivery accepted, every job gets a VM, no start beyond demand, nothing left', async () => {
  const r = await runBurst({ ...BURST_DEFAULTS, jobs: 50, windowMs: 200, maxRunners: 10, warmup: 1, timeoutMs: 30_000, logLevel: 'error' });
  assert.equal(r.accepted, r.sent);
  assert.equal(r.duplicateStarts, 0);
  assert.equal(r.starts, 50);
  assert.equal(r.completed, 50);
  assert.equal(r.measured, 50, 'every job names the runner that took it, and that runner\'s start was seen');
  assert.ok(r.peakVms <= 10, `at most maxRunners VMs at once, saw ${r.peakVms}`);
  assert.equal(r.leftoverRunners, 0);
  assert.equal(r.leftoverLeases, 0);
});
