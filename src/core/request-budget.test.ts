import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { budgetPolicy, canSpend, fullBudget, msUntilSpendable, refill, refillPerMs, spend, type BudgetState } from './request-budget.ts';

const HOUR = 3_600_000;

test('the default shape: a burst of five minutes\' worth, and burst plus an hour of refill is the hourly budget', () => {
  const p = budgetPolicy(1000);
  assert.equal(p.burst, 83);
  assert.ok(Math.abs(p.burst + refillPerMs(p) * HOUR - 1000) < 1e-9);
  assert.throws(() => budgetPolicy(0), RangeError);
});

test('an empty bucket refills at the hourly rate and never beyond the burst', () => {
  const p = budgetPolicy(1200);
  let s: BudgetState = spend(p, fullBudget(p, 0), p.burst, 0);
  assert.equal(canSpend(p, s, 0), false);
  const wait = msUntilSpendable(p, s, 0);
  assert.ok(wait > 0);
  assert.equal(canSpend(p, s, wait), true);
  s = refill(p, s, 10 * HOUR);
  assert.equal(s.tokens, p.burst);
});

test('a 304 costs nothing; an overrun leaves a debt that is paid back before the next step', () => {
  const p = budgetPolicy(120);
  let s = fullBudget(p, 0);
  s = spend(p, s, 0, 0);
  assert.equal(s.tokens, p.burst);
  s = spend(p, s, p.burst + 5, 0);
  assert.equal(s.tokens, -5);
  assert.equal(canSpend(p, s, 0), false);
  assert.equal(canSpend(p, s, msUntilSpendable(p, s, 0)), true);
});

test('a clock that goes backwards refills nothing', () => {
  const p = budgetPolicy(600);
  const s = spend(p, fullBudget(p, 1000), 10, 1000);
  assert.deepEqual(refill(p, s, 500), s);
});

// Any schedule of "step if allowed, then settle its cost" spends, over any
// window, at most burst + rate·T + (largest single cost − 1).
test('property: no window spends more than the burst, its refill and one overrun', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 20_000 }),
    fc.array(fc.record({ gap: fc.integer({ min: 0, max: 600_000 }), cost: fc.integer({ min: 0, max: 12 }) }), { minLength: 1, maxLength: 300 }),
    (perHour, steps) => {
      const p = budgetPolicy(perHour);
      let now = 0;
      let s = fullBudget(p, now);
      const spent: { at: number; cost: number }[] = [];
      for (const step of steps) {
        now += step.gap;
        if (!canSpend(p, s, now)) continue;
        s = spend(p, s, step.cost, now);
        spent.push({ at: now, cost: step.cost });
      }
      const maxCost = Math.max(1, ...spent.map((x) => x.cost));
      for (let i = 0; i < spent.length; i++) {
        let total = 0;
        for (let j = i; j < spent.length; j++) {
          const a = spent[i];
          const b = spent[j];
          if (a === undefined || b === undefined) continue;
          total += b.cost;
          const bound = p.burst + refillPerMs(p) * (b.at - a.at) + maxCost - 1;
          if (total > bound + 1e-6) return false;
        }
      }
      return true;
    },
  ));
});

test('property: a steady scanner spends no more than the hourly budget (plus one overrun) in any hour', () => {
  fc.assert(fc.property(fc.integer({ min: 12, max: 5000 }), fc.integer({ min: 1, max: 6 }), (perHour, cost) => {
    const p = budgetPolicy(perHour);
    let s = fullBudget(p, 0);
    let spent = 0;
    // A pass every minute for an hour, each as many steps as the bucket allows.
    for (let now = 0; now < HOUR; now += 60_000) {
      while (canSpend(p, s, now)) {
        s = spend(p, s, cost, now);
        spent += cost;
      }
    }
    return spent <= perHour + cost - 1 + 1e-6;
  }));
});
