import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canServe, extraLabels, mostSpecificServing, registeredLabels } from './labels.ts';

test('a job is served when its labels are a case-insensitive subset of the runner labels', () => {
  assert.ok(canServe(['self-hosted', 'Linux', 'amd64'], ['self-hosted', 'linux']));
  assert.ok(canServe(['self-hosted', 'Linux', 'amd64'], ['SELF-HOSTED', 'LINUX', 'AMD64']));
  assert.ok(!canServe(['self-hosted', 'Linux'], ['ubuntu-latest']));
  assert.ok(!canServe(['self-hosted'], ['self-hosted', 'gpu']));
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

test('a runner has exactly the labels Flint registers it with, de-duplicated without regard to case; GitHub adds none to a JIT runner', () => {
  assert.deepEqual(registeredLabels(['flint', 'Linux', 'linux', 'X64']), ['flint', 'Linux', 'X64']);
  assert.deepEqual(registeredLabels(['flint']), ['flint'], 'no self-hosted, linux or x64 appear by themselves');
  assert.equal(mostSpecificServing([{ name: 'bare', labels: ['flint'] }], ['self-hosted', 'flint']), undefined,
    'a job asking for self-hosted is not routed to a definition that does not list it');
});

test('a job without labels is served by no definition', () => {
  assert.equal(extraLabels(['self-hosted'], []), undefined);
  assert.equal(mostSpecificServing([{ name: 'any', labels: ['self-hosted'] }], []), undefined);
});

test('the most specific definition wins over a catch-all listed before it', () => {
  const defs = [
    { name: 'catch-all', labels: ['self-hosted', 'linux', 'x64', 'small', 'gpu', 'big'] },
    { name: 'gpu', labels: ['self-hosted', 'linux', 'x64', 'gpu'] },
    { name: 'small', labels: ['self-hosted', 'linux', 'x64', 'small'] },
  ];
  assert.equal(mostSpecificServing(defs, ['self-hosted', 'GPU'])?.name, 'gpu');
  assert.equal(mostSpecificServing(defs, ['self-hosted', 'small'])?.name, 'small');
  assert.equal(mostSpecificServing(defs, ['self-hosted', 'small', 'gpu'])?.name, 'catch-all');
  assert.equal(mostSpecificServing(defs, ['windows']), undefined);
});

test('between equally specific definitions the first in configuration order wins', () => {
  const defs = [{ name: 'a', labels: ['x', 'y'] }, { name: 'b', labels: ['x', 'z'] }, { name: 'c', labels: ['x'] }];
  assert.equal(mostSpecificServing(defs, ['x', 'y'])?.name, 'a');
  assert.equal(mostSpecificServing(defs, ['x'])?.name, 'c');
  assert.equal(mostSpecificServing(defs.slice(0, 2), ['x'])?.name, 'a');
});

test('duplicate labels in a definition, in any case, do not make it look less specific', () => {
  const defs = [{ name: 'dup', labels: ['gpu', 'GPU', 'self-hosted'] }, { name: 'other', labels: ['self-hosted', 'gpu', 'arm64'] }];
  assert.equal(mostSpecificServing(defs, ['self-hosted', 'gpu'])?.name, 'dup');
});

const label = fc.constantFrom('self-hosted', 'linux', 'x64', 'arm64', 'gpu', 'small', 'big', 'flint');
const recased = (l: string, up: boolean): string => (up ? l.toUpperCase() : l);
const definitions = fc.array(fc.record({ labels: fc.uniqueArray(label, { minLength: 1, maxLength: 6 }) }), { minLength: 1, maxLength: 6 })
  .map((ds) => ds.map((d, i) => ({ name: `d${i}`, labels: d.labels })));
const job = fc.tuple(fc.uniqueArray(label, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([ls, up]) => ls.map((l, i) => recased(l, up && i % 2 === 0)));

test('property: the chosen definition serves the job, none serving it is more specific, and none earlier is as specific', () => {
  fc.assert(fc.property(definitions, job, (defs, jobLabels) => {
    const chosen = mostSpecificServing(defs, jobLabels);
    const serving = defs.filter((d) => canServe(d.labels, jobLabels));
    if (chosen === undefined) {
      assert.deepEqual(serving, []);
      return;
    }
    assert.ok(canServe(chosen.labels, jobLabels));
    const extra = (d: { labels: readonly string[] }): number => extraLabels(registeredLabels(d.labels), jobLabels) ?? Number.POSITIVE_INFINITY;
    for (const d of serving) assert.ok(extra(d) >= extra(chosen), `${d.name} is more specific than ${chosen.name}`);
    for (const d of defs.slice(0, defs.indexOf(chosen))) assert.ok(extra(d) > extra(chosen), `${d.name} is as specific and earlier`);
  }));
});

test('property: the choice ignores the letter case of job labels and adding a non-serving definition does not change it', () => {
  fc.assert(fc.property(definitions, job, (defs, jobLabels) => {
    const chosen = mostSpecificServing(defs, jobLabels)?.name;
    assert.equal(mostSpecificServing(defs, jobLabels.map((l) => l.toUpperCase()))?.name, chosen);
    const never = { name: 'never', labels: ['windows'] };
    assert.equal(mostSpecificServing([never, ...defs], jobLabels)?.name, chosen);
    assert.equal(mostSpecificServing([...defs, never], jobLabels)?.name, chosen);
  }));
});
