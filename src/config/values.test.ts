import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deriveInstanceId, parseDuration, parseListenAddress, parseSize, parseV4Interface } from './values.ts';
import { didYouMean, editDistance } from './did-you-mean.ts';
import { isInstanceId } from '../core/ids.ts';

test('durations: seconds or d/h/m/s in order, positive', () => {
  assert.deepEqual(parseDuration('6h'), { ok: true, value: 21600 });
  assert.deepEqual(parseDuration('2d1h1m1s'), { ok: true, value: 2 * 86400 + 3661 });
  assert.deepEqual(parseDuration('90'), { ok: true, value: 90 });
  for (const bad of ['', '0s', 'h', '1m1h', '1.5h', '-3', 0, 1.5]) assert.equal(parseDuration(bad).ok, false, String(bad));
  fc.assert(fc.property(fc.nat(99), fc.nat(59), fc.nat(59), (h, m, s) => {
    const r = parseDuration(`${h}h${m}m${s}s`);
    const total = h * 3600 + m * 60 + s;
    assert.deepEqual(r, total > 0 ? { ok: true, value: total } : { ok: false, message: 'must be longer than zero' });
  }));
});

test('sizes: a number in the unit, or binary suffixes; decimal units are refused', () => {
  assert.deepEqual(parseSize('16GiB', 2 ** 20, 'MiB'), { ok: true, value: 16384 });
  assert.deepEqual(parseSize('1.5 GiB', 2 ** 20, 'MiB'), { ok: true, value: 1536 });
  assert.deepEqual(parseSize(4096, 2 ** 20, 'MiB'), { ok: true, value: 4096 });
  assert.deepEqual(parseSize('10GiB', 1, 'bytes'), { ok: true, value: 10 * 2 ** 30 });
  for (const bad of ['16GB', '16G', 'lots', '1.0000001MiB']) assert.equal(parseSize(bad, 2 ** 20, 'MiB').ok, false, bad);
});

test('bridge addresses: every host address of a /24 is accepted, network and broadcast are not', () => {
  for (let host = 0; host < 256; host++) {
    assert.equal(parseV4Interface(`192.0.2.${host}/24`).ok, host !== 0 && host !== 255, String(host));
  }
  assert.equal(parseV4Interface('10.0.0.1/8').ok, true);
  assert.equal(parseV4Interface('127.0.0.1/8').ok, false);
});

test('listen addresses', () => {
  assert.deepEqual(parseListenAddress(':8080'), { ok: true, value: { host: '', port: 8080 } });
  assert.deepEqual(parseListenAddress('[::1]:443'), { ok: true, value: { host: '[::1]', port: 443 } });
  assert.equal(parseListenAddress('example.net').ok, false);
  assert.equal(parseListenAddress('[zz]:1').ok, false);
  assert.equal(parseListenAddress('a:70000').ok, false);
});

test('derived instance ids are valid instance ids, stable for the same seed', () => {
  fc.assert(fc.property(fc.string(), (seed) => {
    const id = deriveInstanceId(seed);
    assert.ok(isInstanceId(id), id);
    assert.equal(deriveInstanceId(seed), id);
  }));
});

test('edit distance counts a swap of neighbours as one slip and is symmetric', () => {
  assert.equal(editDistance('qemu', 'qmeu'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  fc.assert(fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
    assert.equal(editDistance(a, b), editDistance(b, a));
    assert.ok(editDistance(a, b) <= Math.max(a.length, b.length));
  }));
  assert.equal(didYouMean('zzzzzz', ['memorySize', 'cpuCount']), undefined);
  assert.equal(didYouMean('memory_size', ['memorySize', 'cpuCount']), 'memorySize');
});
