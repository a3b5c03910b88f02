import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlintError } from '../core/errors/index.ts';
import type { NetworkConfig } from '../config/types.ts';
import { NETWORK_POLICY_INTERVAL_MS, startNetworkPolicy } from './network-policy.ts';
import type { LoopTimers } from './loop.ts';

/** Timers under the test's hand: nothing fires until `advance`. */
function fakeTimers(): LoopTimers & { now: () => number; advance(ms: number): void } {
  let now = 0;
  let next = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const id = next++; pending.set(id, { at: now + ms, fn }); return id; },
    clearTimeout: (h) => { pending.delete(h as number); },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) if (t.at <= now && pending.delete(id)) t.fn();
    },
  };
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const NETS: NetworkConfig[] = [{ name: 'br0', v4: { address: '10.0.0.1', prefixLength: 24 }, create: true, dns: ['1.1.1.1'] }];

test('network-policy re-asserts every network at start and every 30 s; a failed pass is logged with its code and retried on time', async () => {
  const timers = fakeTimers();
  const passes: string[][] = [];
  let fail = false;
  const warnings: Array<{ obj: object; msg: string }> = [];
  const loop = startNetworkPolicy({
    network: { reassert: (nets) => { passes.push(nets.map((n) => n.name)); return fail ? Promise.reject(new FlintError('FLINT_ERR_NET_COMMAND_FAILED', 'nft gone')) : Promise.resolve(); } },
    networks: NETS, logger: { warn: (obj, msg) => { warnings.push({ obj, msg }); } }, now: timers.now, timers,
  });
  await flush();
  assert.deepEqual(passes, [['br0']], 'one pass at start');
  assert.equal(loop.status().name, 'network-policy');
  fail = true;
  timers.advance(NETWORK_POLICY_INTERVAL_MS - 1);
  await flush();
  assert.equal(passes.length, 1, 'not before the interval');
  timers.advance(1);
  await flush();
  assert.equal(passes.length, 2);
  assert.equal(loop.status().lastError?.code, 'FLINT_ERR_NET_COMMAND_FAILED');
  assert.match(warnings[0]?.msg ?? '', /^network-policy: pass failed$/);
  fail = false;
  timers.advance(NETWORK_POLICY_INTERVAL_MS);
  await flush();
  assert.equal(passes.length, 3, 'the next pass comes on time after a failure');
  await loop.stop();
});
