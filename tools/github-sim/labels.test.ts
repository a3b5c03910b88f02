import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { labelsMatch } from './world.ts';

const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const recase = (l: string, flips: boolean[]): string => [...l].map((c, i) => (flips[i % Math.max(1, flips.length)] ? c.toUpperCase() : c.toLowerCase())).join('');

test('any subset of a runner\'s labels, in any letter case, matches it', () => {
  fc.assert(fc.property(fc.uniqueArray(label, { minLength: 1, maxLength: 8 }), fc.array(fc.boolean()), fc.array(fc.boolean(), { minLength: 1 }), (runner, pick, flips) => {
    const job = runner.filter((_, i) => pick[i] ?? false).map((l) => recase(l, flips));
    assert.equal(labelsMatch(job, runner), true);
  }));
});

test('a job label the runner lacks (case-insensitively) never matches', () => {
  fc.assert(fc.property(fc.uniqueArray(label, { minLength: 1, maxLength: 8 }), label, (runner, extra) => {
    fc.pre(!runner.some((l) => l.toLowerCase() === extra.toLowerCase()));
    assert.equal(labelsMatch([...runner, extra], runner), false);
  }));
});

test('exact list equality is not required: a runner with more labels takes a job with fewer', () => {
  assert.equal(labelsMatch(['self-hosted', 'linux'], ['self-hosted', 'Linux', 'X64', 'flint', 'gpu']), true);
  assert.equal(labelsMatch(['ubuntu-latest'], ['self-hosted', 'Linux', 'X64']), false);
});
