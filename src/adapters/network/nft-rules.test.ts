import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprintOf, isUniqueLocal, nftTableName, renderNftTable, replaceScript } from './nft-rules.ts';
import { addressPool } from '../../core/ipam.ts';

test('table names carry the instance tag; odd bridge names are made safe without colliding', () => {
  assert.equal(nftTableName('h7k2', 'br-flint_0'), 'flint_h7k2_br-flint_0');
  const dot = nftTableName('h7k2', 'br.0');
  const colon = nftTableName('h7k2', 'br:0');
  assert.match(dot, /^flint_h7k2_br_0_[0-9a-f]{8}$/);
  assert.notEqual(dot, colon);
});

test('the fingerprint follows the content: same inputs, same fingerprint; another subnet, another one', () => {
  const v4 = addressPool('10.0.0.1', 24, 4, 'br0');
  const a = renderNftTable('h7k2', 'br0', v4, undefined);
  assert.equal(renderNftTable('h7k2', 'br0', v4, undefined).fingerprint, a.fingerprint);
  assert.notEqual(renderNftTable('h7k2', 'br0', addressPool('10.0.1.1', 24, 4, 'br0'), undefined).fingerprint, a.fingerprint);
  const script = replaceScript('h7k2', 'br0', a);
  assert.equal(fingerprintOf(script), a.fingerprint);
  assert.equal(fingerprintOf('table inet x {\n\tcomment "someone else"\n}'), undefined);
});

test('only unique local IPv6 prefixes are masqueraded', () => {
  assert.ok(isUniqueLocal(addressPool('fd00:1::1', 64, 6, 'br0')));
  assert.ok(isUniqueLocal(addressPool('fc00::1', 64, 6, 'br0')));
  assert.ok(!isUniqueLocal(addressPool('2001:db8::1', 64, 6, 'br0')));
  const v4 = addressPool('10.0.0.1', 24, 4, 'br0');
  assert.match(renderNftTable('i', 'br0', v4, addressPool('fd00:1::1', 64, 6, 'br0')).body, /ip6 saddr fd00:1::\/64 oifname != "br0" masquerade/);
  assert.doesNotMatch(renderNftTable('i', 'br0', v4, addressPool('2001:db8::1', 64, 6, 'br0')).body, /ip6/);
});

test('a bridge name that could break out of an nft string is refused', () => {
  assert.throws(() => renderNftTable('i', 'br"0', addressPool('10.0.0.1', 24, 4, 'x'), undefined), RangeError);
});
