// The client's observer (metrics, readiness): told how every attempt
// ended, with GitHub's rate-limit headers. HTTP faked at the seam (fetch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { GitHubAnswer } from '../../daemon/ports/observer.ts';
import { createGitHubClient } from './client.ts';

const KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const INSTALLATION = { id: 9, suspended_at: null, permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' }, events: ['workflow_job'] };

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

function client(answers: Answer[]) {
  const seen: GitHubAnswer[] = [];
  let n = 0;
  const fetchImpl = async (input: string | URL | Request): Promise<Response> => {
    const a = answers[Math.min(n++, answers.length - 1)] ?? { status: 500, body: {} };
    const res = new Response(JSON.stringify(a.body), { status: a.status, headers: { 'content-type': 'application/json', date: new Date().toUTCString(), ...a.headers } });
    Object.defineProperty(res, 'url', { value: input instanceof Request ? input.url : String(input) });
    return res;
  };
  const gh = createGitHubClient({
    github: { appId: '1', organization: 'acme', privateKey: KEY, apiUrl: 'https://api.example.test' },
    fetch: fetchImpl, retryBaseMs: 1, maxRateLimitWaitSeconds: 0, observer: { answered: (a) => seen.push(a) },
  });
  return { gh, seen };
}

test('a 5xx then an answer: the observer sees a server error, then ok with the rate-limit remaining', async (t) => {
  const { gh, seen } = client([
    { status: 502, body: { message: 'Bad Gateway' } },
    { status: 200, body: INSTALLATION, headers: { 'x-ratelimit-remaining': '4990', 'x-ratelimit-limit': '5000', 'x-ratelimit-resource': 'core' } },
  ]);
  t.after(() => gh.close());
  assert.equal(await gh.installationId(), 9);
  assert.deepEqual(seen, [
    { outcome: 'server-error', status: 502, rateLimit: undefined },
    { outcome: 'ok', status: 200, rateLimit: { resource: 'core', remaining: 4990, limit: 5000 } },
  ]);
});

test('a spent rate limit is an answer: the observer sees rate-limited with nothing remaining', async (t) => {
  const reset = String(Math.floor(Date.now() / 1000) + 3600);
  const { gh, seen } = client([
    { status: 403, body: { message: 'API rate limit exceeded' }, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000', 'x-ratelimit-reset': reset, 'x-ratelimit-resource': 'core' } },
  ]);
  t.after(() => gh.close());
  await assert.rejects(gh.installationId(), { code: 'FLINT_ERR_GITHUB_RATE_LIMITED' });
  assert.deepEqual(seen, [{ outcome: 'rate-limited', status: 403, rateLimit: { resource: 'core', remaining: 0, limit: 5000 } }]);
});
