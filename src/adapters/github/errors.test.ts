import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { isRateLimit, redactUrl, toFlintError } from './errors.ts';

/** The parts of an Octokit RequestError the mapping reads. */
function requestError(status: number, message: string, headers: Record<string, string> = {}, withResponse = true): Error {
  return Object.assign(new Error(message), {
    status,
    request: { method: 'GET', url: 'https://api.github.com/x', headers: { authorization: 'token [REDACTED]' } },
    ...(withResponse ? { response: { status, url: 'https://api.github.com/x', headers, data: { message } } } : {}),
  });
}

test('a FlintError passes through unchanged', () => {
  const err = new FlintError('FLINT_ERR_GITHUB_APP_NOT_INSTALLED', 'x');
  assert.equal(toFlintError(err, 'op'), err);
});

test('each kind of GitHub failure gets its own code, the operation leading the message', () => {
  const cases: [Error, string][] = [
    [requestError(401, 'Bad credentials'), 'FLINT_ERR_GITHUB_AUTH_FAILED'],
    [requestError(403, 'Resource not accessible by integration'), 'FLINT_ERR_GITHUB_PERMISSION_DENIED'],
    [requestError(403, 'API rate limit exceeded', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1900000000' }), 'FLINT_ERR_GITHUB_RATE_LIMITED'],
    [requestError(429, 'API rate limit exceeded', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1900000000' }), 'FLINT_ERR_GITHUB_RATE_LIMITED'],
    [requestError(403, 'You have exceeded a secondary rate limit.', { 'retry-after': '30' }), 'FLINT_ERR_GITHUB_RATE_LIMITED'],
    [requestError(502, 'Server Error'), 'FLINT_ERR_GITHUB_UNAVAILABLE'],
    [requestError(500, 'connect ECONNREFUSED 127.0.0.1:1', {}, false), 'FLINT_ERR_GITHUB_UNAVAILABLE'],
    [new Error('socket hang up'), 'FLINT_ERR_GITHUB_UNAVAILABLE'],
    [requestError(422, 'Validation Failed'), 'FLINT_ERR_GITHUB_REQUEST_FAILED'],
    [requestError(404, 'Not Found'), 'FLINT_ERR_GITHUB_REQUEST_FAILED'],
  ];
  for (const [err, code] of cases) {
    const f = toFlintError(err, 'list runners of acme');
    assert.equal(f.code, code, err.message);
    assert.ok(isFlintError(f));
    assert.match(f.message, /^list runners of acme: /);
    assert.equal(f.cause, err);
  }
});

test('a primary rate limit names the reset time; a secondary one the wait GitHub asked for', () => {
  const primary = toFlintError(requestError(403, 'API rate limit exceeded', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1900000000' }), 'op');
  assert.match(primary.message, /resets at 2030-03-17T17:46:40.000Z/);
  const secondary = toFlintError(requestError(403, 'You have exceeded a secondary rate limit.', { 'retry-after': '30' }), 'op');
  assert.match(secondary.message, /wait 30 s/);
});

test('a 403 without rate-limit signs is not a rate limit', () => {
  assert.equal(isRateLimit(requestError(403, 'Resource not accessible by integration', { 'x-ratelimit-remaining': '4999' })), false);
  assert.equal(isRateLimit(requestError(404, 'secondary rate')), false);
});

test('URLs lose their query in log fields', () => {
  assert.equal(redactUrl('https://api.github.com/app/hook/deliveries?cursor=v1_9&per_page=100'), 'https://api.github.com/app/hook/deliveries');
  assert.equal(redactUrl('/orgs/{org}/actions/runners'), '/orgs/{org}/actions/runners');
});
