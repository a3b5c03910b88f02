import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlintError } from '../core/errors/index.ts';
import { startLoop } from './loop.ts';
import type { LoopTimers } from './loop.ts';

/** Timers under the test's hand: nothing fires until `advance`. */
function fakeTimers(): LoopTimers & { now: () => number; advance(ms: number): void; armed(): number } {
  let now = 0;
  let next = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const id = next++; pending.set(id, { at: now + ms, fn }); return id; },
    clearTimeout: (h) => { pending.delete(h as number); },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now && pending.delete(id)) t.fn();
      }
    },
    armed: () => pending.size,
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const quiet = { warn: () => undefined };

test('a pass slower than the interval is never overlapped; the next pass is timed from its end', async () => {
  const timers = fakeTimers();
  let running = 0;
  let most = 0;
  let release: () => void = () => undefined;
  const loop = startLoop({ name: 't', intervalMs: 100, runAtStart: true, logger: quiet, now: timers.now, timers,
    run: async () => { running++; most = Math.max(most, running); await new Promise<void>((r) => { release = r; }); running--; } });
  await flush();
  timers.advance(1000);
  loop.poke();
  loop.poke();
  assert.equal(most, 1);
  assert.equal(loop.status().runs, 0);
  release();
  await flush();
  assert.equal(loop.status().runs, 1);
  // The pokes during the pass became one follow-up pass, due at once.
  assert.equal(loop.status().nextRunAt, 1000);
  timers.advance(0);
  await flush();
  assert.equal(most, 1);
  release();
  await flush();
  assert.equal(loop.status().runs, 2);
  assert.equal(loop.status().nextRunAt, 1100);
  await loop.stop();
  assert.equal(timers.armed(), 0, 'no timer is left armed after stop');
});

test('a failed pass is logged with its code and hint and recorded; the loop goes on', async () => {
  const timers = fakeTimers();
  const logged: object[] = [];
  let n = 0;
  const loop = startLoop({ name: 'missed-webhooks', intervalMs: 50, runAtStart: true, now: timers.now, timers,
    logger: { warn: (o) => logged.push(o) },
    run: async () => { n++; if (n === 1) throw new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', 'boom'); } });
  await flush();
  assert.equal(loop.status().failures, 1);
  assert.equal(loop.status().lastError?.code, 'FLINT_ERR_GITHUB_REQUEST_FAILED');
  assert.match(JSON.stringify(logged[0]), /"loop":"missed-webhooks".*"code":"FLINT_ERR_GITHUB_REQUEST_FAILED".*"hint"/);
  timers.advance(50);
  await flush();
  assert.equal(n, 2);
  await loop.stop();
});

test('stop waits for the running pass, and nothing runs afterwards', async () => {
  const timers = fakeTimers();
  let release: () => void = () => undefined;
  let passes = 0;
  const loop = startLoop({ name: 't', intervalMs: 10, runAtStart: false, logger: quiet, now: timers.now, timers,
    run: async () => { passes++; await new Promise<void>((r) => { release = r; }); } });
  timers.advance(10);
  let stopped = false;
  const stopping = loop.stop().then(() => { stopped = true; });
  await flush();
  assert.equal(stopped, false, 'stop waits for the pass in flight');
  release();
  await stopping;
  loop.poke();
  timers.advance(1000);
  await flush();
  assert.equal(passes, 1);
  assert.equal(timers.armed(), 0);
});

test('status tells when the last pass started and ended, while it runs and after', async () => {
  const timers = fakeTimers();
  let release: () => void = () => undefined;
  const loop = startLoop({ name: 'record-retention', intervalMs: 100, runAtStart: false, logger: quiet, now: timers.now, timers,
    run: () => new Promise<void>((r) => { release = r; }) });
  assert.deepEqual(loop.status(), {
    name: 'record-retention', intervalMs: 100, running: false, runs: 0, failures: 0,
    lastStartAt: undefined, lastRunAt: undefined, lastError: undefined, nextRunAt: 100,
  });
  timers.advance(100);
  assert.equal(loop.status().running, true);
  assert.equal(loop.status().lastStartAt, 100);
  assert.equal(loop.status().nextRunAt, undefined, 'no pass is due while one runs');
  timers.advance(30);
  release();
  await flush();
  const s = loop.status();
  assert.deepEqual([s.running, s.lastStartAt, s.lastRunAt, s.nextRunAt], [false, 100, 130, 230]);
  await loop.stop();
});

test('a pass failing on a rate limit with retryAt: the next pass waits until retryAt, pokes included, then the interval resumes', async () => {
  const timers = fakeTimers();
  let n = 0;
  const loop = startLoop({ name: 'missed-webhooks', intervalMs: 100, runAtStart: true, logger: quiet, now: timers.now, timers,
    run: async () => {
      n++;
      if (n === 1) throw new FlintError('FLINT_ERR_GITHUB_RATE_LIMITED', 'limited', { details: { retryAt: 5000 } });
    } });
  await flush();
  assert.equal(n, 1);
  assert.equal(loop.status().nextRunAt, 5000, 'not after the 100 ms interval: at retryAt');
  timers.advance(100);
  await flush();
  assert.equal(n, 1);
  loop.poke();
  await flush();
  assert.equal(n, 1, 'a poke before retryAt does not start a pass');
  assert.equal(loop.status().nextRunAt, 5000);
  timers.advance(4899);
  await flush();
  assert.equal(n, 1);
  timers.advance(1);
  await flush();
  assert.equal(n, 2, 'the pass runs at retryAt');
  assert.equal(loop.status().nextRunAt, 5100, 'then the ordinary interval');
  loop.poke();
  await flush();
  assert.equal(n, 3, 'after a good pass, pokes run at once again');
  await loop.stop();
  assert.equal(timers.armed(), 0);
});

test('a retryAt already past does not delay the next pass beyond the interval', async () => {
  const timers = fakeTimers();
  timers.advance(10_000);
  const loop = startLoop({ name: 't', intervalMs: 100, runAtStart: true, logger: quiet, now: timers.now, timers,
    run: async () => {
      throw new FlintError('FLINT_ERR_GITHUB_RATE_LIMITED', 'limited', { details: { retryAt: 9000 } });
    } });
  await flush();
  assert.equal(loop.status().nextRunAt, 10_100);
  await loop.stop();
});

test('a gated loop skips its passes while the gate is shut, says so, and runs again once it opens', async () => {
  const timers = fakeTimers();
  let open = false;
  let passes = 0;
  const loop = startLoop({ name: 'g', intervalMs: 100, runAtStart: true, logger: quiet, now: timers.now, timers, gate: () => open,
    run: async () => { passes++; } });
  await flush();
  timers.advance(100);
  loop.poke();
  await flush();
  assert.equal(passes, 0);
  assert.equal(loop.status().runs, 0, 'a skipped pass is not counted');
  assert.equal(loop.status().standby, true);
  assert.equal(timers.armed(), 1, 'the next pass stays scheduled');
  open = true;
  loop.poke();
  await flush();
  assert.equal(passes, 1);
  assert.equal(loop.status().standby, false);
  await loop.stop();
  assert.equal(timers.armed(), 0);
});

test('a loop without a gate has no standby in its status', async () => {
  const timers = fakeTimers();
  const loop = startLoop({ name: 'u', intervalMs: 100, runAtStart: false, logger: quiet, now: timers.now, timers, run: async () => undefined });
  assert.equal('standby' in loop.status(), false);
  await loop.stop();
});

test('a pass asked for while one ran follows it through the timers\' `soon`, not a timer; stop() cancels one not yet run', async () => {
  const timers = fakeTimers();
  const soon: Array<() => void> = [];
  const withSoon: LoopTimers = { ...timers, soon: (fn) => { soon.push(fn); } };
  let passes = 0;
  let release: () => void = () => undefined;
  const loop = startLoop({ name: 't', intervalMs: 60_000, runAtStart: true, logger: quiet, now: timers.now, timers: withSoon,
    run: async () => { passes++; await new Promise<void>((r) => { release = r; }); } });
  await flush();
  loop.poke();
  release();
  await flush();
  assert.equal(passes, 1);
  assert.equal(soon.length, 1, 'the follow-up is asked for soon');
  assert.equal(loop.status().nextRunAt, timers.now(), 'and shown as due now');
  soon.shift()?.();
  assert.equal(passes, 2, 'it runs when `soon` fires, with no timer advanced');
  loop.poke();
  release();
  await flush();
  const stopped = loop.stop();
  soon.shift()?.();
  await stopped;
  assert.equal(passes, 2, 'a stopped loop runs no follow-up');
});
