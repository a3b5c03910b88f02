// The simulator playing a bad day: REST faults by count, time window and
// seeded rate; secondary limits in GitHub's shapes; webhook deliveries
// dropped, duplicated and reordered at seeded rates — the same seed giving
// the same day.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, signJwt, type Faults, type Simulator, type SimulatorOptions } from './index.ts';
import { startReceiver, type Receiver } from './receiver.ts';
import { seededRandom } from './random.ts';

async function sim(t: TestContext, opts: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator(opts);
  t.after(() => s.close());
  return s;
}

async function receiver(t: TestContext): Promise<Receiver> {
  const r = await startReceiver();
  t.after(() => r.close());
  return r;
}

const nowS = (): number => Math.floor(Date.now() / 1000);
const appAuth = (s: Simulator): string => `Bearer ${signJwt({ iat: nowS() - 30, exp: nowS() + 540, iss: s.appId }, s.privateKeyPem)}`;

async function get(s: Simulator, path: string, auth = appAuth(s)): Promise<{ status: number; headers: Headers; json: unknown }> {
  const res = await fetch(`${s.apiUrl}${path}`, { headers: { accept: 'application/vnd.github+json', authorization: auth } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) };
}

/** The statuses of `n` requests to GET /app under `faults`. */
async function day(t: TestContext, faults: Faults, n: number): Promise<number[]> {
  const s = await sim(t);
  s.faults.set(faults);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(s, '/app')).status);
  return out;
}

test('the seeded source is deterministic and spread over [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(Array.from({ length: 1000 }, () => b()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const low = xs.filter((x) => x < 0.5).length;
  assert.ok(low > 430 && low < 570, `${low} of 1000 below 0.5`);
  assert.notDeepEqual(Array.from({ length: 20 }, seededRandom(43)), xs.slice(0, 20));
});

test('server errors at a seeded rate: the same seed fails the same requests, another seed others', async (t) => {
  const faults: Faults = { seed: 7, serverErrors: { rate: 0.5, status: 503 } };
  const first = await day(t, faults, 40);
  const again = await day(t, faults, 40);
  const other = await day(t, { ...faults, seed: 8 }, 40);
  assert.deepEqual(again, first);
  assert.notDeepEqual(other, first);
  const failed = first.filter((x) => x === 503).length;
  assert.ok(failed >= 10 && failed <= 30, `${failed} of 40 at rate 0.5`);
  assert.ok(first.every((x) => x === 503 || x === 200));
});

test('a count comes first, then the rate; a window ends the rate', async (t) => {
  const s = await sim(t);
  s.faults.set({ serverErrors: { count: 3, forSeconds: 0.3, rate: 0 } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await get(s, '/app')).status);
  assert.deepEqual(statuses, [502, 502, 502, 200, 200], 'rate 0: only the count');
  s.faults.set({ secondaryRateLimit: { forSeconds: 0.3, retryAfterSeconds: 2 } });
  assert.equal((await get(s, '/app')).status, 403);
  assert.equal((await get(s, '/app')).status, 403, 'every request in the window');
  await sleep(350);
  assert.equal((await get(s, '/app')).status, 200, 'the window is over');
  assert.deepEqual(s.faults.stats(), { serverErrors: 3, primaryRateLimits: 0, secondaryRateLimits: 2, webhooksDropped: 0, webhooksDuplicated: 0, webhooksReordered: 0 });
});

test('secondary limits look as GitHub sends them: 403 or 429, the request id in the message, retry-after or none', async (t) => {
  const s = await sim(t);
  s.faults.set({ secondaryRateLimit: { count: 1, status: 429, retryAfterSeconds: null } });
  const r = await get(s, '/app');
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), null, 'no retry-after: clients wait at least a minute');
  assert.notEqual(r.headers.get('x-ratelimit-remaining'), '0', 'a secondary limit leaves the primary budget');
  const body = r.json as { message: string; documentation_url: string };
  assert.match(body.message, /^You have exceeded a secondary rate limit\. Please wait a few minutes before you try again\./);
  assert.ok(body.message.includes(r.headers.get('x-github-request-id') ?? 'missing'));
  assert.match(body.documentation_url, /#about-secondary-rate-limits$/);
  s.faults.set({ secondaryRateLimit: { count: 1 } });
  const d = await get(s, '/app');
  assert.equal(d.status, 403);
  assert.equal(d.headers.get('retry-after'), '1');
});

test('a primary limit burst shares one reset time', async (t) => {
  const s = await sim(t);
  s.faults.set({ primaryRateLimit: { count: 2, resetAfterSeconds: 120 } });
  const a = await get(s, '/app');
  await sleep(1100);
  const b = await get(s, '/app');
  assert.deepEqual([a.status, b.status], [403, 403]);
  assert.equal(a.headers.get('x-ratelimit-reset'), b.headers.get('x-ratelimit-reset'));
  assert.ok(Math.abs(Number(a.headers.get('x-ratelimit-reset')) - (nowS() + 119)) <= 2);
});

test('bad fault specs are refused and leave the current faults in place', async (t) => {
  const s = await sim(t);
  s.faults.set({ serverErrors: { count: 1 } });
  assert.throws(() => s.faults.set({ serverErrors: { rate: 2 } }), /rate must be between 0 and 1/);
  assert.throws(() => s.faults.set({ webhooks: { dropRate: -1 } }), /between 0 and 1/);
  const res = await fetch(`${s.apiUrl}/_sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serverErrors: { count: 1.5 } }) });
  assert.equal(res.status, 422);
  assert.equal((await get(s, '/app')).status, 502, 'the earlier fault still holds');
  const stats = await fetch(`${s.apiUrl}/_sim/faults`);
  assert.deepEqual(((await stats.json()) as { stats: { serverErrors: number } }).stats.serverErrors, 1);
});

/** Queues `n` jobs under webhook rate faults; what the receiver saw and what the deliveries API says. */
async function webhookDay(t: TestContext, seed: number, n: number) {
  const rcv = await receiver(t);
  const s = await sim(t, { webhook: { url: rcv.url, secret: 's' } });
  s.faults.set({ seed, webhooks: { dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.2, holdMs: 60_000 } });
  for (let i = 0; i < n; i++) await s.queueJob({ repo: 'app', labels: [`j${i}`] });
  await s.settled();
  const seen = rcv.received.map((r) => (r.json.workflow_job as { labels: string[] }).labels[0] ?? '?');
  const dropped = s.deliveries().filter((d) => d.statusCode === 0).map((d) => (d.payload.workflow_job as { labels: string[] }).labels[0] ?? '?');
  return { s, seen, dropped, stats: s.faults.stats() };
}

test('webhook deliveries dropped, duplicated and reordered at seeded rates: the same seed, the same day', async (t) => {
  const a = await webhookDay(t, 11, 30);
  const b = await webhookDay(t, 11, 30);
  const c = await webhookDay(t, 12, 30);
  assert.deepEqual(b.seen, a.seen);
  assert.deepEqual(b.dropped, a.dropped);
  assert.deepEqual(b.stats, a.stats);
  assert.notDeepEqual(c.seen, a.seen);
  const { webhooksDropped, webhooksDuplicated, webhooksReordered } = a.stats;
  assert.ok(webhooksDropped > 0 && webhooksDuplicated > 0 && webhooksReordered > 0, JSON.stringify(a.stats));
  // Every job's news arrived at least once unless dropped, and a drop is a failed delivery.
  const arrived = new Set(a.seen);
  for (let i = 0; i < 30; i++) assert.ok(arrived.has(`j${i}`) || a.dropped.includes(`j${i}`), `j${i}`);
  assert.equal(a.dropped.length, webhooksDropped);
  // Each copy of a duplicate is a delivery attempt of its own, and may be dropped on its own.
  assert.equal(a.seen.length, 30 + webhooksDuplicated - webhooksDropped);
  const inOrder = a.seen.every((l, i) => i === 0 || Number(l.slice(1)) >= Number((a.seen[i - 1] ?? 'j0').slice(1)));
  assert.ok(!inOrder, 'some deliveries came out of order');
  // The deliveries API lists the drops as failed attempts (no answer: status_code 0, as GitHub records a
  // refused connection; its status=failure filter covers 400–599 only), so a redelivery pass finds them.
  const all = await get(a.s, '/app/hook/deliveries?per_page=100');
  assert.equal(all.status, 200);
  const failed = (all.json as { status_code: number; status: string }[]).filter((d) => d.status_code === 0);
  assert.equal(failed.length, webhooksDropped);
  assert.ok(failed.every((d) => d.status === 'failed to connect to host'));
});
