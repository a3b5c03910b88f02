// The wait decisions on their own: GitHub's headers and a clock in, a
// decision out — no HTTP, no timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FlintError } from '../../core/errors/index.ts';
import { backoffMs, classify, parseRetryAfter, SECONDARY_DEFAULT_WAIT_MS } from './wait-policy.ts';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

/** What Octokit throws for an answer: a status and the response's headers. */
function answered(status: number, headers: Record<string, string> = {}, message = 'x'): Error {
  return Object.assign(new Error(message), { status, response: { status, headers, data: {} } });
}

test('retry-after wins: a 429 or a 403 secondary limit waits exactly that many seconds', () => {
  assert.deepEqual(classify(answered(429, { 'retry-after': '17' }), NOW), { kind: 'rate-limit', limit: 'secondary', retryAt: NOW + 17_000, source: 'retry-after' });
  assert.deepEqual(classify(answered(403, { 'retry-after': '5' }, 'You have exceeded a secondary rate limit.'), NOW),
    { kind: 'rate-limit', limit: 'secondary', retryAt: NOW + 5000, source: 'retry-after' });
});

test('primary limit spent: wait until x-ratelimit-reset plus a second; a reset in the past is no wait', () => {
  const reset = String(NOW / 1000 + 600);
  assert.deepEqual(classify(answered(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }), NOW),
    { kind: 'rate-limit', limit: 'primary', retryAt: NOW + 601_000, source: 'x-ratelimit-reset' });
  const past = classify(answered(429, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 - 60) }), NOW);
  assert.equal(past.kind === 'rate-limit' ? past.retryAt : -1, NOW);
});

test('a secondary limit naming no wait: one minute, doubling with each one in a row, bounded', () => {
  const err = answered(403, {}, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.');
  const at = (streak: number): number => {
    const d = classify(err, NOW, streak);
    return d.kind === 'rate-limit' ? d.retryAt - NOW : -1;
  };
  assert.deepEqual([0, 1, 2].map(at), [SECONDARY_DEFAULT_WAIT_MS, 2 * SECONDARY_DEFAULT_WAIT_MS, 4 * SECONDARY_DEFAULT_WAIT_MS]);
  assert.equal(at(50), at(6), 'the doubling stops');
  assert.equal(classify(answered(429), NOW).kind, 'rate-limit', 'a bare 429 is a limit too');
});

test('a 403 that is not a rate limit, 4xx answers and Flint\'s own errors are final; 5xx and failed connections are transient', () => {
  assert.deepEqual(classify(answered(403, { 'x-ratelimit-remaining': '4999' }, 'Resource not accessible by integration'), NOW), { kind: 'final' });
  for (const s of [400, 401, 404, 409, 410, 422]) assert.deepEqual(classify(answered(s), NOW), { kind: 'final' }, String(s));
  assert.deepEqual(classify(new FlintError('FLINT_ERR_GITHUB_APP_NOT_INSTALLED'), NOW), { kind: 'final' });
  for (const s of [500, 502, 503, 504]) assert.deepEqual(classify(answered(s), NOW), { kind: 'transient' }, String(s));
  // Octokit's shape of a refused connection: status 500, no response.
  assert.deepEqual(classify(Object.assign(new Error('connect ECONNREFUSED'), { status: 500 }), NOW), { kind: 'transient' });
});

test('retry-after as an HTTP date; garbage is ignored', () => {
  assert.equal(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW), NOW + 90_000);
  assert.equal(parseRetryAfter('soon', NOW), undefined);
  assert.equal(parseRetryAfter('', NOW), undefined);
});

test('back-off: within half to all of min(cap, base × 2ⁿ), never zero', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 120_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    (n, base, cap, r) => {
      const ceiling = Math.min(cap, base * 2 ** n);
      const ms = backoffMs(n, base, cap, () => r);
      return ms >= Math.floor(ceiling / 2) && ms <= Math.ceil(ceiling) && ms > 0;
    }));
});
