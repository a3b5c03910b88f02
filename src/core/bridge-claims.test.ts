import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { claimConflict, decideClaim } from './bridge-claims.ts';
import type { BridgeClaim } from './bridge-claims.ts';

const claim = (over: Partial<BridgeClaim> & Pick<BridgeClaim, 'instanceId'>): BridgeClaim => ({
  bridge: 'br0', stateDir: `/s/${over.instanceId}`, owner: `1:${over.instanceId}`, claimedAt: 0,
  v4: { family: 4, first: 2n, last: 254n }, ...over,
});

test('a dead owner\'s claim is stale and never blocks; a live overlapping one does', () => {
  const mine = claim({ instanceId: 'b' });
  const other = claim({ instanceId: 'a' });
  const dead = decideClaim(mine, [other], () => false);
  assert.deepEqual(dead, { ok: true, stale: [other] });
  const live = decideClaim(mine, [other], () => true);
  assert.equal(live.ok, false);
  assert.equal(live.ok ? undefined : live.conflict, other);
});

test('my own earlier claim is neither stale nor a conflict; claims of other bridges are ignored', () => {
  const mine = claim({ instanceId: 'a' });
  assert.deepEqual(decideClaim(mine, [{ ...mine, claimedAt: 5 }, claim({ instanceId: 'x', bridge: 'br1' })], () => false), { ok: true, stale: [] });
});

test('one process may hold claims of two instances: they are compared like any others', () => {
  const a = claim({ instanceId: 'a', owner: '7:7' });
  const b = claim({ instanceId: 'b', owner: '7:7' });
  assert.equal(decideClaim(b, [a], () => true).ok, false);
});

const span = fc.tuple(fc.bigInt({ min: 2n, max: 254n }), fc.bigInt({ min: 2n, max: 254n })).map(([x, y]) => (x <= y ? { first: x, last: y } : { first: y, last: x }));

test('property: two live claims with different state directories are compatible exactly when no address could be handed out by both', () => {
  fc.assert(fc.property(span, span, fc.boolean(), (s1, s2, sameDir) => {
    const a = claim({ instanceId: 'a', v4: { family: 4, ...s1 } });
    const b = claim({ instanceId: 'b', v4: { family: 4, ...s2 }, ...(sameDir ? { stateDir: a.stateDir } : {}) });
    let shared = false;
    for (let x = 2n; x <= 254n; x++) if (x >= s1.first && x <= s1.last && x >= s2.first && x <= s2.last) shared = true;
    assert.equal(claimConflict(a, b) === undefined, sameDir || !shared);
    assert.equal(decideClaim(b, [a], () => true).ok, sameDir || !shared);
  }));
});
