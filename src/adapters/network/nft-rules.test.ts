import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allowRanges, egressSetsScript, fingerprintOf, guardElementsScript, isUniqueLocal, nftTableName, policyElementsScript, renderGuardTable, renderNftTable, replaceScript,
} from './nft-rules.ts';
import type { BridgePolicy } from './nft-rules.ts';
import { addressPool } from '../../core/ipam.ts';

const P: BridgePolicy = { create: true, gateway4: '10.0.0.1', hostDns: false, dns: ['1.1.1.1'], egress: [] };

test('table names carry the instance tag; odd bridge names are made safe without colliding', () => {
  assert.equal(nftTableName('h7k2', 'br-flint_0'), 'flint_h7k2_br-flint_0');
  const dot = nftTableName('h7k2', 'br.0');
  const colon = nftTableName('h7k2', 'br:0');
  assert.match(dot, /^flint_h7k2_br_0_[0-9a-f]{8}$/);
  assert.notEqual(dot, colon);
});

test('the fingerprint follows the content: same inputs, same fingerprint; another subnet, another one', () => {
  const v4 = addressPool('10.0.0.1', 24, 4, 'br0');
  const a = renderNftTable('h7k2', 'br0', v4, undefined, P);
  assert.equal(renderNftTable('h7k2', 'br0', v4, undefined, P).fingerprint, a.fingerprint);
  assert.notEqual(renderNftTable('h7k2', 'br0', addressPool('10.0.1.1', 24, 4, 'br0'), undefined, P).fingerprint, a.fingerprint);
  const script = replaceScript('h7k2', 'br0', a);
  assert.equal(fingerprintOf(script), a.fingerprint);
  assert.equal(fingerprintOf('table inet x {\n\tcomment "someone else"\n}'), undefined);
});

test('only unique local IPv6 prefixes are masqueraded', () => {
  assert.ok(isUniqueLocal(addressPool('fd00:1::1', 64, 6, 'br0')));
  assert.ok(isUniqueLocal(addressPool('fc00::1', 64, 6, 'br0')));
  assert.ok(!isUniqueLocal(addressPool('2001:db8::1', 64, 6, 'br0')));
  const v4 = addressPool('10.0.0.1', 24, 4, 'br0');
  assert.match(renderNftTable('i', 'br0', v4, addressPool('fd00:1::1', 64, 6, 'br0'), P).body, /ip6 saddr fd00:1::\/64 oifname != "br0" masquerade/);
  assert.doesNotMatch(renderNftTable('i', 'br0', v4, addressPool('2001:db8::1', 64, 6, 'br0'), P).body, /ip6 saddr/);
});

test('a bridge name that could break out of an nft string is refused', () => {
  assert.throws(() => renderNftTable('i', 'br"0', addressPool('10.0.0.1', 24, 4, 'x'), undefined, P), RangeError);
});

const V4 = addressPool('10.0.0.1', 24, 4, 'br0');
const chainOf = (body: string, name: string): string => new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(body)?.[1] ?? '';

test('a guest reaches the host only for echo, neighbour discovery and, when the host serves it, DNS on the gateway', () => {
  const off = renderNftTable('i', 'br0', V4, addressPool('fd00:1::1', 64, 6, 'br0'), { ...P, gateway6: 'fd00:1::1' }).body;
  assert.match(off, /type filter hook input priority filter; policy accept;\n {4}iifname "br0" jump guest_in/);
  const guestIn = chainOf(off, 'guest_in');
  assert.match(guestIn, /ip daddr 10\.0\.0\.1 icmp type echo-request accept/);
  assert.match(guestIn, /icmpv6 type \{ nd-neighbor-solicit, nd-neighbor-advert \} accept/);
  assert.doesNotMatch(guestIn, /dport 53/);
  assert.match(guestIn, /counter drop\s*$/, 'everything else to any host address is dropped');
  const on = renderNftTable('i', 'br0', V4, addressPool('fd00:1::1', 64, 6, 'br0'), { ...P, gateway6: 'fd00:1::1', hostDns: true }).body;
  assert.match(on, /ip daddr 10\.0\.0\.1 meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.match(on, /ip6 daddr fd00:1::1 meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.match(renderNftTable('i', 'br0', V4, undefined, { ...P, hostPorts: [3128, 5000] }).body, /ip daddr 10\.0\.0\.1 tcp dport \{ 3128, 5000 \} accept/);
  assert.throws(() => renderNftTable('i', 'br0', V4, undefined, { ...P, hostPorts: [0] }), RangeError);
  assert.notEqual(renderNftTable('i', 'br0', V4, undefined, { ...P, hostDns: true }).fingerprint, renderNftTable('i', 'br0', V4, undefined, P).fingerprint);
});

test('link-local and metadata addresses are dropped before anything lets a guest out', () => {
  const body = renderNftTable('i', 'br0', V4, undefined, P).body;
  const out = chainOf(body, 'guest_out');
  assert.ok(out.indexOf('ip daddr 169.254.0.0/16 drop') < out.indexOf('accept'));
  assert.ok(out.indexOf('ip6 daddr fd00:ec2::254 drop') < out.indexOf('accept'));
});

test('on an operator\'s bridge only this instance\'s guests are filtered, only from each other, and Flint adds no NAT and no inbound rule', () => {
  const body = renderNftTable('i', 'br0', V4, addressPool('fd00:1::1', 64, 6, 'br0'), { ...P, create: false }).body;
  assert.doesNotMatch(body, /masquerade/);
  assert.match(body, /iifname "br0" ether saddr @guests jump guest_in/);
  // The operator's LAN behind the bridge's other ports (its router, the host's uplink) stays reachable: only this instance's guests are not.
  assert.match(body, /iifname "br0" ether saddr @guests oifname "br0" ip daddr @guest_addrs4 drop/);
  assert.match(body, /iifname "br0" ether saddr @guests oifname "br0" ip6 daddr @guest_addrs6 drop/);
  assert.doesNotMatch(body, /@guests oifname "br0" drop/);
  assert.doesNotMatch(body, /oifname "br0" drop\n {4}\}|^ {4}oifname "br0" drop/m);
  assert.match(renderNftTable('i', 'br0', V4, undefined, P).body, /^ {4}oifname "br0" drop$/m);
});

test('each allow-list gets its own member set and chain; the guest\'s DNS servers stay reachable on port 53', () => {
  const policy: BridgePolicy = { ...P, dns: ['1.1.1.1', '2606:4700:4700::1111'], egress: [
    { definition: 'small', cidrs: ['140.82.112.0/20'], hosts: [] },
    { definition: 'big', cidrs: [], hosts: ['api.github.com'] },
  ] };
  const body = renderNftTable('i', 'br0', V4, undefined, policy).body;
  assert.match(body, /ether saddr @members_0 jump egress_0\n {4}ether saddr @members_1 jump egress_1\n {4}accept/);
  const chain = chainOf(body, 'egress_1');
  assert.match(chain, /comment "egress allow-list of runner definition big"/);
  assert.match(chain, /ip daddr @allow_1_4 accept/);
  assert.match(chain, /ip daddr \{ 1\.1\.1\.1 \} meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.match(chain, /ip6 daddr \{ 2606:4700:4700::1111 \} meta l4proto/);
  assert.match(chain, /counter drop\s*$/);
});

test('allow ranges are merged: an address inside a listed prefix, adjacent and overlapping prefixes, the other family left out', () => {
  assert.deepEqual(allowRanges(4, ['140.82.112.0/20', '140.82.113.4', '10.0.0.0/25', '10.0.0.128/25', '2001:db8::/32', '192.0.2.7']),
    ['10.0.0.0-10.0.0.255', '140.82.112.0-140.82.127.255', '192.0.2.7']);
  assert.deepEqual(allowRanges(6, ['2001:db8::/32', '2001:db8::1', '10.0.0.1']), ['2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff']);
  assert.deepEqual(allowRanges(4, []), []);
});

test('allow sets are flushed and filled in one script; a VM\'s entries take its MAC out of every other allow-list', () => {
  const egress = [{ definition: 'a', cidrs: ['192.0.2.0/24'], hosts: ['x.example'] }, { definition: 'b', cidrs: [], hosts: [] }];
  assert.equal(egressSetsScript('T', egress, [['198.51.100.7'], []]), [
    'flush set inet T allow_0_4', 'add element inet T allow_0_4 { 192.0.2.0-192.0.2.255, 198.51.100.7 }', 'flush set inet T allow_0_6',
    'flush set inet T allow_1_4', 'flush set inet T allow_1_6', '',
  ].join('\n'));
  const add = policyElementsScript('add', 'T', 2, [{ mac: '06:00:0a:00:00:05', ipv4: '10.0.0.5', ipv6: 'fd00:1:0:0::5', egress: 1 }]);
  assert.equal(add, [
    'add element inet T guests { 06:00:0a:00:00:05 }', 'add element inet T guest_addrs4 { 10.0.0.5 }', 'add element inet T guest_addrs6 { fd00:1::5 }',
    'add element inet T members_0 { 06:00:0a:00:00:05 }', 'delete element inet T members_0 { 06:00:0a:00:00:05 }',
    'add element inet T members_1 { 06:00:0a:00:00:05 }', '',
  ].join('\n'));
  const removed = policyElementsScript('delete', 'T', 1, [{ mac: '06:00:0a:00:00:05', ipv4: '10.0.0.5' }]);
  assert.match(removed, /delete element inet T guests .*\n.*\n.*delete element inet T guest_addrs4 \{ 10\.0\.0\.5 \}\n.*\n.*delete element inet T members_0/);
  assert.doesNotMatch(removed, /guest_addrs6/);
  assert.equal(policyElementsScript('add', 'T', 0, []), '');
  assert.throws(() => policyElementsScript('add', 'T', 0, [{ mac: '06:00:0a:00:00:05 } ; flush ruleset', ipv4: '10.0.0.5' }]), RangeError);
  assert.throws(() => policyElementsScript('add', 'T', 0, [{ mac: '06:00:0a:00:00:05', ipv4: '10.0.0.5 } ; flush ruleset' }]), RangeError);
});

test('the address guard: ARP and neighbour advertisements claim only the tap\'s own addresses, link-local sources only for neighbour discovery, metadata dropped', () => {
  const body = renderGuardTable('h7k2', 'br0').body;
  const rules = body.split('\n').map((l) => l.trim());
  const at = (prefix: string): number => rules.findIndex((r) => r.startsWith(prefix));
  assert.ok(at('ip daddr 169.254.0.0/16 counter drop') > at('iifname . ether saddr != @macs'), 'metadata dropped on the bridge too, after the MAC check');
  assert.ok(rules.includes('ip6 daddr fd00:ec2::254 counter drop'));
  assert.ok(rules.some((r) => r.includes('arp saddr ip 0.0.0.0 iifname . arp saddr ether @macs accept')), 'a probe names the guest\'s own MAC');
  const na = at('icmpv6 type nd-neighbor-advert');
  assert.ok(na !== -1 && na < at('ether type ip6 iifname . ether saddr . ip6 saddr @guests6 accept'), 'the target check comes before any IPv6 accept');
  assert.match(rules[na] ?? '', /@th,64,10 != 0x3fa .*@th,64,128 != @targets6 counter drop$/);
  assert.ok(!rules.some((r) => /^ether type ip6 ip6 saddr \{ ::, fe80::\/10 \} accept$/.test(r)), 'no longer every frame from a link-local source');
  assert.match(body, /ip6 saddr fe80::\/10 icmpv6 type \{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report \} accept/);
  assert.match(body, /ip6 saddr :: icmpv6 type \{ nd-neighbor-solicit, mld2-listener-report \} accept/);
  assert.equal(guardElementsScript('add', 't', [{ tap: 'fh7k2-00001', mac: '06:00:0a:00:00:02', ipv4: '10.0.0.2', ipv6: 'fd00:1::2' }]), [
    'add element bridge t macs { "fh7k2-00001" . 06:00:0a:00:00:02 }',
    'add element bridge t guests4 { "fh7k2-00001" . 06:00:0a:00:00:02 . 10.0.0.2 }',
    'add element bridge t guests6 { "fh7k2-00001" . 06:00:0a:00:00:02 . fd00:1::2 }',
    'add element bridge t targets6 { "fh7k2-00001" . 06:00:0a:00:00:02 . 0xfd000001000000000000000000000002 }',
    '',
  ].join('\n'));
});
