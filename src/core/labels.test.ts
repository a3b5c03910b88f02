import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canServe, firstServing } from './labels.ts';

test('a job is served when its labels are a case-insensitive subset of the runner labels', () => {
  assert.ok(canServe(['self-hosted', 'Linux', 'amd64'], ['self-hosted', 'linux']));
  assert.ok(canServe(['self-hosted', 'Linux', 'amd64'], ['SELF-HOSTED', 'LINUX', 'AMD64']));
  assert.ok(!canServe(['self-hosted', 'Linux'], ['ubuntu-latest']));
  assert.ok(!canServe(['self-hosted'], ['self-hosted', 'gpu']));
});

test('firstServing keeps configuration order', () => {
  const defs = [{ name: 'a', labels: ['x', 'y'] }, { name: 'b', labels: ['x'] }];
  assert.equal(firstServing(defs, ['x'])?.name, 'a');
  assert.equal(firstServing(defs, ['z']), undefined);
});

test('property: any subset of the runner labels, in any case, is served; adding an unknown label is not', () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { minLength: 1, maxLength: 6 }),
    fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
    (labels, pick) => {
      const subset = labels.filter((_, i) => pick[i]).map((l, i) => (i % 2 ? l.toUpperCase() : l));
      assert.ok(canServe(labels, subset));
      assert.ok(!canServe(labels, [...subset, 'zz-not-a-label']));
    },
  ));
});
