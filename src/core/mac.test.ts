import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLocalUnicastMac, macFromIpv4 } from './mac.ts';

test('the MAC encodes the guest IPv4 address after the 06:00 prefix', () => {
  assert.equal(macFromIpv4('172.16.0.2'), '06:00:ac:10:00:02');
  assert.throws(() => macFromIpv4('fd00::2'), RangeError);
});

test('property: distinct addresses give distinct, locally administered unicast MACs', () => {
  fc.assert(fc.property(fc.ipV4(), fc.ipV4(), (a, b) => {
    const ma = macFromIpv4(a);
    assert.ok(isLocalUnicastMac(ma), ma);
    assert.equal(ma === macFromIpv4(b), a === b);
  }));
});
