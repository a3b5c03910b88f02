import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopStatus } from '../../daemon/loop.ts';
import { GITHUB_WINDOW_MS, GitHubReachability, HypervisorUsability, STUCK_FLOOR_MS, stuckLoops } from './readiness.ts';

const OK = { outcome: 'ok', status: 200, rateLimit: undefined } as const;
const DOWN = { outcome: 'network-error', status: undefined, rateLimit: undefined } as const;
const LIMITED = { outcome: 'rate-limited', status: 429, rateLimit: undefined } as const;

test('GitHub: ready before the first call, and while failures are younger than a minute after an answer', () => {
  let now = 1_000_000;
  const gh = new GitHubReachability(() => now);
  assert.equal(gh.check().ok, true, 'nothing asked yet');
  gh.answered(OK);
  now += 10_000;
  gh.answered(DOWN);
  assert.equal(gh.check().ok, true, 'one failure 10 s after an answer');
  now += GITHUB_WINDOW_MS;
  gh.answered(DOWN);
  assert.equal(gh.check().ok, false, 'only failures for over a minute');
  gh.answered(OK);
  assert.equal(gh.check().ok, true, 'an answer again');
});

test('GitHub: a rate limit counts as reachable, and says so', () => {
  let now = 0;
  const gh = new GitHubReachability(() => now);
  gh.answered(DOWN);
  now += 2 * GITHUB_WINDOW_MS;
  assert.equal(gh.check().ok, false);
  gh.answered(LIMITED);
  assert.deepEqual({ ok: gh.check().ok, limited: gh.check().rateLimited }, { ok: true, limited: true });
});

test('hypervisor: a VM that would not start makes it unusable until a VM boots again', () => {
  let now = 0;
  const hv = new HypervisorUsability(() => now);
  assert.equal(hv.check().ok, true);
  hv.booted();
  now += 1;
  hv.failedToBoot('FLINT_ERR_VM_START_FAILED');
  assert.equal(hv.check().ok, false);
  now += 1;
  hv.booted();
  assert.equal(hv.check().ok, true);
});

test('a loop is stuck once its pass outlives both 3 intervals and the floor', () => {
  const loop = (over: Partial<LoopStatus>): LoopStatus => ({
    name: 'scale', intervalMs: 2000, running: true, runs: 1, failures: 0, lastStartAt: 0, lastRunAt: undefined, lastError: undefined, nextRunAt: undefined, ...over,
  });
  assert.deepEqual(stuckLoops([loop({})], STUCK_FLOOR_MS), [], 'a 2 s loop at the floor is not stuck yet');
  assert.deepEqual(stuckLoops([loop({})], STUCK_FLOOR_MS + 1), [{ name: 'scale', runningForMs: STUCK_FLOOR_MS + 1 }]);
  assert.deepEqual(stuckLoops([loop({ running: false })], 10 * STUCK_FLOOR_MS), [], 'an idle loop is never stuck');
  assert.deepEqual(stuckLoops([loop({ intervalMs: 3600_000 })], 3 * 3600_000), [], 'an hourly loop gets three hours');
});
