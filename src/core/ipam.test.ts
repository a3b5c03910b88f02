import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addressPool, canonicalAddress, formatAddress, inPool, parseAddress, parseAddressSpan, pickAddress, poolCapacity, restrictPool } from './ipam.ts';
import type { AddressPool } from './ipam.ts';
import { isFlintError } from './errors/index.ts';

const v4 = (s: string): bigint => {
  const a = parseAddress(s);
  assert.ok(a && a.family === 4, s);
  return a.value;
};

/** Allocates until the pool is full; returns every address handed out, in order. */
function drain(pool: AddressPool, leased = new Set<bigint>()): bigint[] {
  const out: bigint[] = [];
  let after: bigint | undefined;
  for (;;) {
    const next = pickAddress(pool, leased, after);
    if (next === undefined) return out;
    out.push(next);
    leased.add(next);
    after = next;
  }
}

test('a /24 hands out .2 to .254 and never the network, broadcast or gateway address', () => {
  const pool = addressPool('10.0.0.1', 24, 4, 'br0');
  const got = drain(pool).map((v) => formatAddress(4, v));
  assert.equal(got.length, 253);
  assert.equal(got[0], '10.0.0.2');
  assert.equal(got.at(-1), '10.0.0.254');
  for (const never of ['10.0.0.0', '10.0.0.1', '10.0.0.255']) assert.ok(!got.includes(never), never);
  assert.equal(poolCapacity(pool), 253n);
});

test('the gateway in the middle of the subnet is skipped, not the end of the pool', () => {
  const pool = addressPool('192.0.2.130', 25, 4, 'br0');
  const got = drain(pool).map((v) => formatAddress(4, v));
  assert.equal(got.length, 125);
  assert.equal(got[0], '192.0.2.129');
  assert.ok(!got.includes('192.0.2.130'));
  assert.equal(got.at(-1), '192.0.2.254');
});

test('a /30 leaves exactly one guest address; /31 and /32 are refused with a clear error', () => {
  assert.deepEqual(drain(addressPool('10.0.0.1', 30, 4, 'br0')).map((v) => formatAddress(4, v)), ['10.0.0.2']);
  for (const p of [31, 32]) {
    assert.throws(() => addressPool('10.0.0.1', p, 4, 'br0'), (e: unknown) => {
      assert.ok(isFlintError(e, 'FLINT_ERR_NET_BAD_SUBNET'));
      assert.match(e.message, /br0.*\/30 or shorter/);
      return true;
    });
  }
});

test('a bridge address that is the network or broadcast address is refused', () => {
  for (const a of ['10.0.0.0', '10.0.0.255']) {
    assert.throws(() => addressPool(a, 24, 4, 'br0'), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BAD_SUBNET'));
  }
  assert.throws(() => addressPool('fd00::1', 24, 4, 'br0'), /not an IPv4 address/);
  assert.throws(() => addressPool('10.0.0.1', 64, 6, 'br0'), /not an IPv6 address/);
  assert.throws(() => addressPool('10.0.0.1', 0, 4, 'br0'), /prefix length/);
});

test('round robin: the next address follows the last one handed out, a released address waits for the wrap', () => {
  const pool = addressPool('10.0.0.1', 29, 4, 'br0'); // guests .2 … .6
  const leased = new Set([v4('10.0.0.2'), v4('10.0.0.3')]);
  assert.equal(pickAddress(pool, leased, v4('10.0.0.3')), v4('10.0.0.4'));
  // .2 was released, .3 is still leased, the cursor is at .3: .4 comes before .2.
  leased.delete(v4('10.0.0.2'));
  assert.equal(pickAddress(pool, leased, v4('10.0.0.3')), v4('10.0.0.4'));
  // At the end of the pool it wraps to the lowest free address, skipping the gateway.
  assert.equal(pickAddress(pool, new Set([v4('10.0.0.3')]), v4('10.0.0.6')), v4('10.0.0.2'));
  // A cursor outside the pool (the subnet changed) starts from the bottom.
  assert.equal(pickAddress(pool, new Set(), v4('10.9.9.9')), v4('10.0.0.2'));
});

test('a full pool answers undefined, also with stale leases from outside the pool', () => {
  const pool = addressPool('10.0.0.1', 30, 4, 'br0');
  assert.equal(pickAddress(pool, new Set([v4('10.0.0.2'), v4('172.16.0.9')])), undefined);
});

test('a huge pool (/8, IPv6 /64) costs no more than its leases', () => {
  const pool = addressPool('10.0.0.1', 8, 4, 'br0');
  const leased = new Set(Array.from({ length: 1000 }, (_, i) => pool.first + BigInt(i)));
  assert.equal(pickAddress(pool, leased), pool.first + 1000n);
  const p6 = addressPool('fd00:f1::1', 64, 6, 'br0');
  assert.equal(formatAddress(6, pickAddress(p6, new Set())!), 'fd00:f1::2'); // non-null: a fresh /64 has room
});

test('IPv6 never hands out the subnet-router anycast, the gateway or the RFC 2526 reserved ids', () => {
  const pool = addressPool('2001:db8::1', 120, 6, 'br0'); // 256 ids: ::0 anycast, ::1 gateway, ::80-::ff reserved
  const got = drain(pool).map((v) => formatAddress(6, v));
  assert.equal(got.length, 126);
  assert.equal(got[0], '2001:db8::2');
  assert.equal(got.at(-1), '2001:db8::7f');
  const small = addressPool('2001:db8::1', 126, 6, 'br0'); // host part < 8 bits: only ::0 is withheld
  assert.deepEqual(drain(small).map((v) => formatAddress(6, v)), ['2001:db8::2', '2001:db8::3']);
  assert.throws(() => addressPool('2001:db8::1', 127, 6, 'br0'), /\/126 or shorter/);
});

test('addresses parse and format canonically (RFC 5952 for IPv6)', () => {
  const cases: Array<[string, string | undefined]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['010.0.0.1', undefined],
    ['256.0.0.1', undefined],
    ['1.2.3', undefined],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1::2::3', undefined],
    [':::', undefined],
    ['fe80::1%eth0', undefined],
    ['12345::', undefined],
  ];
  for (const [input, want] of cases) assert.equal(canonicalAddress(input), want, input);
});

test('property: IPv6 formatting agrees with the platform URL parser and round-trips', () => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.nat(7), fc.nat(7), (v, zs, zl) => {
    // Zero out a run of groups so that "::" compression is exercised often.
    let value = v;
    for (let g = zs; g < Math.min(8, zs + zl); g++) value &= ~(0xffffn << BigInt(112 - 16 * g));
    const text = formatAddress(6, value);
    assert.equal(parseAddress(text)?.value, value, text);
    assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
  }));
});

const v4Pool = fc.integer({ min: 16, max: 30 }).chain((prefix) =>
  fc.tuple(fc.constant(prefix), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.bigInt({ min: 1n, max: (1n << BigInt(32 - prefix)) - 2n })));

test('property: every IPv4 pick stays in the subnet, skips network/broadcast/gateway, never repeats', () => {
  fc.assert(fc.property(v4Pool, fc.array(fc.nat(), { maxLength: 40 }), fc.option(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), { nil: undefined }),
    ([prefix, base, hostPart], leasedOffsets, after) => {
      const hostBits = BigInt(32 - prefix);
      const network = (base >> hostBits) << hostBits;
      const broadcast = network + (1n << hostBits) - 1n;
      const pool = addressPool(formatAddress(4, network + hostPart), prefix, 4, 'br0');
      const leased = new Set(leasedOffsets.map((o) => network + 1n + (BigInt(o) % (broadcast - network - 1n))));
      leased.delete(pool.gateway);
      const got = pickAddress(pool, leased, after);
      if (got === undefined) {
        assert.equal(BigInt(leased.size), poolCapacity(pool), 'undefined only when every guest address is leased');
        return;
      }
      assert.ok(got > network && got < broadcast);
      assert.notEqual(got, pool.gateway);
      assert.ok(!leased.has(got));
      assert.ok(inPool(pool, got));
    }), { numRuns: 500 });
});

test('property: draining any small pool yields every guest address exactly once (v4 and v6)', () => {
  fc.assert(fc.property(fc.boolean(), fc.integer({ min: 0, max: 8 }), fc.bigInt({ min: 1n, max: 1000n }), (six, shrink, g) => {
    const prefix = six ? 118 + shrink : 22 + shrink;
    const family = six ? 6 : 4;
    const hostBits = BigInt((six ? 128 : 32) - prefix);
    const network = six ? 0x20010db8n << 96n : 0x0a000000n;
    let pool: AddressPool;
    try {
      pool = addressPool(formatAddress(family, network + (g % ((1n << hostBits) - 2n)) + 1n), prefix, family, 'br0');
    } catch (e) {
      assert.ok(isFlintError(e, 'FLINT_ERR_NET_BAD_SUBNET')); // the gateway landed on a reserved address
      return;
    }
    const got = drain(pool);
    assert.equal(new Set(got).size, got.length, 'no duplicates');
    assert.equal(BigInt(got.length), poolCapacity(pool));
    for (const a of got) assert.ok(inPool(pool, a) && a !== network);
  }), { numRuns: 200 });
});

test('a range narrows the pool: only its addresses are handed out, the gateway inside it is still skipped', () => {
  const pool = addressPool('10.0.0.5', 24, 4, 'br0');
  const r = parseAddressSpan('10.0.0.3 - 10.0.0.7');
  assert.ok(r.ok);
  const narrowed = restrictPool(pool, r.span, 'br0');
  assert.deepEqual(drain(narrowed).map((v) => formatAddress(4, v)), ['10.0.0.3', '10.0.0.4', '10.0.0.6', '10.0.0.7']);
  assert.equal(poolCapacity(narrowed), 4n);
  const outside = parseAddressSpan('10.0.0.10-10.0.0.20');
  assert.ok(outside.ok);
  assert.equal(poolCapacity(restrictPool(pool, outside.span, 'br0')), 11n, 'the gateway outside the range takes nothing from it');
});

test('a range outside the guest addresses, of the other family, or holding only the gateway is refused', () => {
  const pool = addressPool('10.0.0.1', 24, 4, 'br0');
  for (const text of ['10.0.0.0-10.0.0.9', '10.0.0.250-10.0.0.255', '10.0.1.2-10.0.1.9', 'fd00::1-fd00::2', '10.0.0.1-10.0.0.1']) {
    const r = parseAddressSpan(text);
    assert.ok(r.ok, text);
    assert.throws(() => restrictPool(pool, r.span, 'br0'), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BAD_SUBNET') && e.message.includes('br0'), text);
  }
  for (const text of ['10.0.0.9', '10.0.0.9-', '10.0.0.9-10.0.0.2', '10.0.0.1-fd00::1', 'a-b', '10.0.0.1-10.0.0.2-10.0.0.3']) {
    assert.equal(parseAddressSpan(text).ok, false, text);
  }
});
