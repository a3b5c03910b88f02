/**
 * A clock and its timers for the loop primitive (daemon/loop.ts): nothing
 * fires until `advance`, which runs each timer that falls due in order, at
 * its own time, and lets the promises it started settle before the next.
 */
import type { LoopTimers } from '../../src/daemon/loop.ts';

export interface FakeTime extends LoopTimers {
  now(): number;
  advance(ms: number): Promise<void>;
}

export function fakeTime(start = 1_000_000): FakeTime {
  let now = start;
  let next = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const id = next++; pending.set(id, { at: now + ms, fn }); return id; },
    clearTimeout: (h) => { pending.delete(h as number); },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...pending].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        now = Math.max(now, due[1].at);
        pending.delete(due[0]);
        due[1].fn();
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
  };
}
