import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_BACKOFF, HEALTHY, backoffDelayMs, launchAllowance, recordLaunchFailure, recordLaunchSuccess,
  type BackoffPolicy, type DefinitionHealth, type LaunchError,
} from './launch-health.ts';

const P = DEFAULT_BACKOFF;
const err = (at: number, code = 'FLINT_ERR_VM_START_FAILED'): LaunchError => ({ code, hint: 'check the kernel path', message: 'boom', at });
const arbPolicy = fc.record({
  initialMs: fc.integer({ min: 1, max: 60_000 }),
  maxMs: fc.integer({ min: 1, max: 3_600_000 }),
  jitter: fc.double({ min: 0, max: 1, noNaN: true }),
  unhealthyAfter: fc.integer({ min: 1, max: 10 }),
});
const arbRandom = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

test('a first failure backs off for the initial delay, less at most the jitter', () => {
  const h = recordLaunchFailure(HEALTHY, err(1000), 0, P, 0);
  assert.equal(h.state, 'backing-off');
  assert.equal(h.consecutiveFailures, 1);
  assert.equal(h.nextAttemptAt, 1000 + 10_000);
  assert.equal(recordLaunchFailure(HEALTHY, err(1000), 0, P, 0.999_999).nextAttemptAt, 1000 + 5_000);
});

test('the third consecutive failure marks the definition unhealthy, retried at the cap', () => {
  let h: DefinitionHealth = HEALTHY;
  for (let i = 0; i < 3; i += 1) h = recordLaunchFailure(h, err(i * 1000, 'FLINT_ERR_VM_NO_RUNNER'), h.round, P, 0);
  assert.equal(h.state, 'unhealthy');
  assert.equal(h.consecutiveFailures, 3);
  assert.equal(h.lastError?.code, 'FLINT_ERR_VM_NO_RUNNER');
  assert.equal(h.nextAttemptAt, 2000 + P.maxMs);
});

test('fifty VMs of one round failing together count as one failure', () => {
  let h: DefinitionHealth = HEALTHY;
  for (let i = 0; i < 50; i += 1) h = recordLaunchFailure(h, err(i), 0, P, 0);
  assert.equal(h.consecutiveFailures, 1);
  assert.equal(h.state, 'backing-off');
  assert.equal(h.lastError?.at, 49, 'the latest error is kept');
  assert.equal(h.nextAttemptAt, 0 + 10_000, 'the next attempt is timed from the counted failure');
});

test('the first success recovers an unhealthy definition and keeps its last error for the record', () => {
  let h: DefinitionHealth = HEALTHY;
  for (let i = 0; i < 5; i += 1) h = recordLaunchFailure(h, err(i), h.round, P, 0.5);
  const ok = recordLaunchSuccess(h);
  assert.equal(ok.state, 'healthy');
  assert.equal(ok.consecutiveFailures, 0);
  assert.equal(ok.nextAttemptAt, undefined);
  assert.equal(ok.lastError?.at, 4);
  assert.equal(launchAllowance(ok, 0, 10), Number.POSITIVE_INFINITY);
  assert.equal(recordLaunchSuccess(HEALTHY), HEALTHY, 'success while healthy changes nothing');
});

test('a launch from before recovery that fails late does not undo the recovery', () => {
  const failed = recordLaunchFailure(HEALTHY, err(0), 0, P, 0);
  const ok = recordLaunchSuccess(failed);
  assert.equal(recordLaunchFailure(ok, err(5), failed.round, P, 0).state, 'healthy');
});

test('backing off: nothing before the next attempt, then one probe at a time', () => {
  const h = recordLaunchFailure(HEALTHY, err(0), 0, P, 0);
  assert.equal(launchAllowance(h, 9_999, 0), 0);
  assert.equal(launchAllowance(h, 10_000, 0), 1);
  assert.equal(launchAllowance(h, 10_000, 1), 0, 'a probe in flight blocks the next');
});

test('property: the delay lies between (1 − jitter) × ceiling and the ceiling, never above the cap', () => {
  fc.assert(fc.property(arbPolicy, fc.integer({ min: 1, max: 10_000 }), arbRandom, (p: BackoffPolicy, n, r) => {
    const d = backoffDelayMs(n, p, r);
    const ceiling = n >= p.unhealthyAfter ? p.maxMs : Math.min(p.maxMs, p.initialMs * 2 ** (n - 1));
    assert.ok(d <= p.maxMs && d <= ceiling + 0.5, `delay ${d} above ceiling ${ceiling}`);
    assert.ok(d >= Math.floor((1 - p.jitter) * ceiling), `delay ${d} below ${(1 - p.jitter) * ceiling}`);
    assert.ok(Number.isFinite(d) && d >= 0);
  }));
});

test('property: without jitter the delay never shrinks as failures add up', () => {
  fc.assert(fc.property(arbPolicy, fc.integer({ min: 1, max: 100 }), (p, n) => {
    const q = { ...p, jitter: 0 };
    assert.ok(backoffDelayMs(n + 1, q, 0) >= backoffDelayMs(n, q, 0));
  }));
});

test('property: a definition that always fails is attempted a bounded number of times in ten minutes', () => {
  // One probe at a time; each fails after a random while (immediately up to
  // a 2-minute boot timeout). Attempts over 10 min ≤ unhealthyAfter + the
  // window divided by the smallest delay at the cap, plus one.
  fc.assert(fc.property(fc.array(fc.tuple(arbRandom, fc.integer({ min: 0, max: 120_000 })), { minLength: 200, maxLength: 200 }), (draws) => {
    let h: DefinitionHealth = HEALTHY;
    let now = 0;
    let attempts = 0;
    for (const [r, failsAfter] of draws) {
      if (launchAllowance(h, now, 0) === 0) now = h.nextAttemptAt ?? now;
      if (now >= 600_000) break;
      attempts += 1;
      const round = h.round;
      now += failsAfter;
      h = recordLaunchFailure(h, err(now), round, P, r);
    }
    const bound = P.unhealthyAfter + Math.ceil(600_000 / (P.maxMs * (1 - P.jitter))) + 1;
    assert.ok(attempts <= bound, `${attempts} attempts > ${bound}`);
  }));
});

test('property: stale failures never raise the count; counted ones raise it by one', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.boolean(), arbRandom), { maxLength: 60 }), (steps) => {
    let h: DefinitionHealth = HEALTHY;
    for (const [succeed, stale, r] of steps) {
      if (succeed) {
        h = recordLaunchSuccess(h);
        assert.equal(h.consecutiveFailures, 0);
        continue;
      }
      const before = h;
      h = recordLaunchFailure(h, err(0), stale ? h.round - 1 : h.round, P, r);
      assert.equal(h.consecutiveFailures, before.consecutiveFailures + (stale ? 0 : 1));
      assert.equal(h.state === 'healthy', h.consecutiveFailures === 0);
      assert.equal(h.state === 'unhealthy', h.consecutiveFailures >= P.unhealthyAfter);
    }
  }));
});
