// Real `ip` and `nft` against the kernel, only inside the private network
// namespace the test runner creates (FLINT_TEST_NETNS=1); never elsewhere.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../store/db.ts';
import type { Db } from '../store/db.ts';
import { openLeaseStore } from '../store/leases.ts';
import { createLinuxNetwork } from './linux-network.ts';
import type { LinuxHostNetwork } from './linux-network.ts';
import { guardTableName, nftTableName } from './nft-rules.ts';
import type { NetworkConfig } from '../../config/types.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { vmId } from '../../core/ids.ts';
import { addressPool } from '../../core/ipam.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import type { Prerequisite } from '../../../test/helpers/prereq.ts';
import { GUEST_FRAMES, GUEST_LISTEN, GUEST_PING, arpFrame, ipv6Bytes, linkLocalOf, ndFrame } from '../../../test/helpers/guest-frames.ts';

const privateNetns: Prerequisite = {
  what: 'the private network namespace of scripts/test.mjs',
  ok: () => process.env.FLINT_TEST_NETNS === '1',
  install: 'run through `node scripts/test.mjs` as root (it runs the tests under `unshare -n`)',
};

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } });
}
function trySh(cmd: string, args: string[]): void {
  try { execFileSync(cmd, args, { stdio: 'ignore', env: { ...process.env, PATH } }); } catch { /* already gone */ }
}
function linkJson(name: string): Record<string, unknown> | undefined {
  try {
    // `ip -j` prints an array of objects; the tests read a few fields.
    return (JSON.parse(sh('ip', ['-j', '-d', 'addr', 'show', 'dev', name])) as Array<Record<string, unknown>>)[0];
  } catch {
    return undefined;
  }
}
function taps(prefix: string): string[] {
  // `ip -j link show` prints an array of link objects.
  return (JSON.parse(sh('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n.startsWith(prefix)).sort();
}

/** A unique instance id and bridge name per test: other test files run in the same namespace at the same time. */
function names(): { inst: string; bridge: string } {
  // Five characters, so that a test can make a sixth-character sibling instance.
  const r = randomBytes(2).toString('hex');
  return { inst: `n${r}`, bridge: `fbr${r}` };
}

const V6 = { address: 'fd00:f1:213::1', prefixLength: 64 };

function netConfig(bridge: string, over: Partial<NetworkConfig> = {}, withV6 = true): NetworkConfig {
  const base = { name: bridge, v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: ['10.213.0.1', '9.9.9.9'], ...over };
  return withV6 ? { v6: V6, ...base } : base;
}

interface Fixture {
  readonly inst: string;
  readonly bridge: string;
  readonly dir: string;
  db: Db;
  net: LinuxHostNetwork;
  reopen(): void;
}

/** Everything a test made is removed in t.after, also when it fails. */
function fixture(t: TestContext): Fixture {
  const { inst, bridge } = names();
  const dir = mkdtempSync(join(tmpdir(), 'flint-net-'));
  const open = (): { db: Db; net: LinuxHostNetwork } => {
    const db = openDatabase(dir);
    return { db, net: createLinuxNetwork({ instanceId: inst, leases: openLeaseStore(db) }) };
  };
  const f: Fixture = {
    inst, bridge, dir, ...open(),
    reopen() { f.db.close(); Object.assign(f, open()); },
  };
  t.after(() => {
    for (const tap of taps(`f${inst}-`)) trySh('ip', ['link', 'del', 'dev', tap]);
    trySh('ip', ['link', 'del', 'dev', bridge]);
    trySh('nft', ['delete', 'table', 'inet', nftTableName(inst, bridge)]);
    trySh('nft', ['delete', 'table', 'bridge', guardTableName(inst, bridge)]);
    f.db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return f;
}

const prereqs = [root, privateNetns, program('ip'), program('nft')];

test('create: true makes the bridge with both addresses, forwarding and an owned NAT table; a second run changes nothing', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const link = linkJson(f.bridge);
  assert.ok(link, 'bridge exists');
  assert.equal((link.linkinfo as { info_kind: string }).info_kind, 'bridge');
  assert.ok((link.flags as string[]).includes('UP'));
  const addrs = (link.addr_info as Array<{ local: string; prefixlen: number }>).map((a) => `${a.local}/${a.prefixlen}`);
  assert.ok(addrs.includes('10.213.0.1/24'), addrs.join(' '));
  assert.ok(addrs.includes('fd00:f1:213::1/64'), addrs.join(' '));
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1');
  assert.equal(linkJson(f.bridge)?.address, '06:00:0a:d5:00:01', 'the bridge has a fixed MAC, so it never changes as taps come and go');
  assert.equal(readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim(), '1');
  const table = nftTableName(f.inst, f.bridge);
  const before = sh('nft', ['-a', 'list', 'table', 'inet', table]);
  assert.match(before, /ip saddr 10\.213\.0\.0\/24 oifname != "fbr\w+" masquerade/);
  assert.match(before, /ip6 saddr fd00:f1:213::\/64 oifname != "fbr\w+" masquerade/, 'a unique local v6 prefix is masqueraded too');
  assert.match(before, /oifname "fbr\w+" ct state established,related accept/);

  const guardBefore = sh('nft', ['-a', 'list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]);
  await f.net.ensureNetwork(cfg);
  // Handles are assigned anew whenever a rule or table is recreated: equal
  // listings with handles prove nothing was touched.
  assert.equal(sh('nft', ['-a', 'list', 'table', 'inet', table]), before);
  assert.equal(sh('nft', ['-a', 'list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]), guardBefore);
  assert.deepEqual(linkJson(f.bridge)?.addr_info, link.addr_info);
});

test('a changed subnet replaces the NAT table atomically; a global IPv6 prefix is not masqueraded', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  await f.net.ensureNetwork(netConfig(f.bridge, {}, false));
  const cfg = netConfig(f.bridge, { v6: { address: '2001:db8:5::1', prefixLength: 64 } });
  await f.net.ensureNetwork(cfg);
  const listing = sh('nft', ['list', 'table', 'inet', nftTableName(f.inst, f.bridge)]);
  assert.doesNotMatch(listing, /ip6 saddr/);
  assert.match(listing, /ip saddr 10\.213\.0\.0\/24/);
});

test('without create, a missing bridge is an error that names it and says how to fix it', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  await assert.rejects(f.net.ensureNetwork(netConfig(f.bridge, { create: false })), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_NET_BRIDGE_MISSING'));
    assert.match(e.message, new RegExp(f.bridge));
    assert.match(e.hint, /create: true/);
    assert.ok(e.hint.includes(`ip link add ${f.bridge} address 06:00:0a:d5:00:01 type bridge && ip addr add 10.213.0.1/24 dev ${f.bridge}`), e.hint);
    return true;
  });
  assert.equal(linkJson(f.bridge), undefined, 'nothing was created');
});

test('without create, a bridge lacking its address or a device that is no bridge is refused; a correct one passes untouched', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  sh('ip', ['link', 'add', f.bridge, 'type', 'bridge']);
  const cfg = netConfig(f.bridge, { create: false }, false);
  await assert.rejects(f.net.ensureNetwork(cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_MISCONFIGURED') && /10\.213\.0\.1\/24 is not on it.*down/.test(e.message));
  sh('ip', ['addr', 'add', '10.213.0.1/24', 'dev', f.bridge]);
  sh('ip', ['link', 'set', f.bridge, 'up']);
  await f.net.ensureNetwork(cfg);
  const policy = sh('nft', ['list', 'table', 'inet', nftTableName(f.inst, f.bridge)]);
  assert.doesNotMatch(policy, /masquerade/, 'no NAT on a bridge Flint does not own');
  assert.match(policy, /ether saddr @guests jump guest_in/, 'but its guests are filtered all the same');
  const dummy = `${f.bridge}d`;
  sh('ip', ['tuntap', 'add', 'dev', dummy, 'mode', 'tap']);
  t.after(() => trySh('ip', ['link', 'del', 'dev', dummy]));
  await assert.rejects(f.net.ensureNetwork({ ...cfg, name: dummy }), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_MISCONFIGURED') && /not a bridge/.test(e.message));
});

test('attach leases v4 and v6, creates an isolated tap owned by the VM uid on the bridge; detach removes both, twice is fine', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const id = vmId(f.inst, 1);
  const lease = await f.net.attach(id, 'flint-vm1', cfg, { uid: 123, gid: 100 });
  assert.equal(lease.tap, `f${f.inst}-00001`);
  assert.deepEqual(lease.guest, {
    hostname: 'flint-vm1',
    ipv4: { address: '10.213.0.2', prefixLength: 24, gateway: '10.213.0.1' },
    ipv6: { address: 'fd00:f1:213::2', prefixLength: 64, gateway: 'fd00:f1:213::1' },
    dns: ['10.213.0.1', '9.9.9.9'],
  });
  assert.equal(lease.mac, '06:00:0a:d5:00:02');
  const tap = linkJson(lease.tap);
  assert.ok(tap, 'tap exists');
  assert.equal(tap.master, f.bridge);
  assert.ok((tap.flags as string[]).includes('UP'));
  const info = tap.linkinfo as { info_data: { type: string; user: number }; info_slave_data: { isolated: boolean } };
  assert.equal(info.info_data.type, 'tap');
  assert.equal(info.info_data.user, 123);
  assert.equal(info.info_slave_data.isolated, true);
  assert.deepEqual(tap.addr_info, [], 'no address (not even link-local) on the host side of the tap');
  assert.equal(openLeaseStore(f.db).forVm(id).length, 2);
  const guard = sh('nft', ['list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]);
  assert.match(guard, new RegExp(`"${lease.tap}" \\. 06:00:0a:d5:00:02 \\. 10\\.213\\.0\\.2`));
  assert.match(guard, new RegExp(`"${lease.tap}" \\. 06:00:0a:d5:00:02 \\. fd00:f1:213::2`));
  const neigh = sh('ip', ['neigh', 'show', 'dev', f.bridge]);
  assert.match(neigh, /10\.213\.0\.2 lladdr 06:00:0a:d5:00:02 PERMANENT/);
  assert.match(neigh, /fd00:f1:213::2 lladdr 06:00:0a:d5:00:02 PERMANENT/);

  await f.net.detach(id);
  assert.equal(linkJson(lease.tap), undefined);
  assert.doesNotMatch(sh('nft', ['list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]), new RegExp(lease.tap));
  assert.doesNotMatch(sh('ip', ['neigh', 'show', 'dev', f.bridge]), /10\.213\.0\.2 /);
  assert.deepEqual(openLeaseStore(f.db).forVm(id), []);
  await f.net.detach(id);
});

test('a failed tap creation releases the lease it took', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, {}, false); // the bridge is never created
  const id = vmId(f.inst, 7);
  await assert.rejects(f.net.attach(id, 'h', cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_COMMAND_FAILED') && e.message.includes(`f${f.inst}-00007`));
  assert.deepEqual(openLeaseStore(f.db).forVm(id), []);
  assert.deepEqual(taps(`f${f.inst}-`), []);
});

test('sweep removes only its own instance\'s dead taps and leases, never those of an instance whose id is a prefix of it', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const a = fixture(t);
  await a.net.ensureNetwork(netConfig(a.bridge));
  const cfg = netConfig(a.bridge);
  // Instance "<a>x" shares a's characters: its taps start with "f<a>x-", never "f<a>-". Same state file, same bridge.
  const bInst = `${a.inst}x`;
  const bDb = openDatabase(a.dir);
  const other = createLinuxNetwork({ instanceId: bInst, leases: openLeaseStore(bDb) });
  t.after(() => {
    for (const tap of taps(`f${bInst}-`)) trySh('ip', ['link', 'del', 'dev', tap]);
    // attach put in the other instance's tables (its first attach on the bridge checks them).
    trySh('nft', ['delete', 'table', 'inet', nftTableName(bInst, a.bridge)]);
    trySh('nft', ['delete', 'table', 'bridge', guardTableName(bInst, a.bridge)]);
    bDb.close();
  });
  const [a1, a2] = [vmId(a.inst, 1), vmId(a.inst, 2)];
  const [b1, b2] = [vmId(bInst, 1), vmId(bInst, 2)];
  for (const id of [a1, a2]) await a.net.attach(id, 'h', cfg);
  for (const id of [b1, b2]) await other.attach(id, 'h', cfg);
  // A lease without a tap (Flint died between the two steps).
  openLeaseStore(a.db).acquire({ network: a.bridge, pool: addressPool('10.213.0.1', 24, 4, a.bridge), instanceId: a.inst, vmId: vmId(a.inst, 3), now: 0 });

  const removed = await a.net.sweep(new Set([a1]));
  assert.deepEqual(removed.filter((r) => r.startsWith('tap')), [`tap f${a.inst}-00002`]);
  assert.deepEqual(removed.filter((r) => r.startsWith('lease')).map((r) => r.split(' ')[1]).sort(), [a2, a2, vmId(a.inst, 3)].sort());
  assert.deepEqual(taps(`f${a.inst}-`), [`f${a.inst}-00001`]);
  assert.deepEqual(taps(`f${bInst}-`), [`f${bInst}-00001`, `f${bInst}-00002`], 'the other instance keeps its taps');
  assert.equal(openLeaseStore(a.db).ofInstance(bInst).length, 4, 'and its leases');
  assert.equal(openLeaseStore(a.db).ofInstance(a.inst).length, 2, 'the live VM keeps both its leases');
  assert.deepEqual(await a.net.sweep(new Set([a1])), [], 'a second sweep finds nothing');
  await assert.rejects(a.net.detach(b1), RangeError, 'detach refuses another instance\'s VM');
  assert.deepEqual(taps(`f${bInst}-`), [`f${bInst}-00001`, `f${bInst}-00002`]);
});

test('a lease survives a restart (database reopened): the address of a live VM is never handed out again', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, { v4: { address: '10.213.0.1', prefixLength: 30 } }, false);
  await f.net.ensureNetwork(cfg);
  const first = await f.net.attach(vmId(f.inst, 1), 'h', cfg);
  assert.equal(first.guest.ipv4.address, '10.213.0.2');
  f.reopen();
  // A /30 has one guest address, and it is taken.
  await assert.rejects(f.net.attach(vmId(f.inst, 2), 'h', cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_POOL_EXHAUSTED'));
  assert.deepEqual(taps(`f${f.inst}-`), [`f${f.inst}-00001`], 'the refused VM got no tap');
  // The start-up sweep keeps the live VM's lease; after it is gone, the address is free again.
  await f.net.sweep(new Set([vmId(f.inst, 1)]));
  await assert.rejects(f.net.attach(vmId(f.inst, 3), 'h', cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_POOL_EXHAUSTED'));
  await f.net.sweep(new Set());
  assert.equal((await f.net.attach(vmId(f.inst, 4), 'h', cfg)).guest.ipv4.address, '10.213.0.2');
});

test('a full pool is a clear error and the next free address comes back after a detach', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, { v4: { address: '10.213.0.1', prefixLength: 29 } }, false);
  await f.net.ensureNetwork(cfg);
  const got = [];
  for (let i = 1; i <= 5; i++) got.push((await f.net.attach(vmId(f.inst, i), 'h', cfg)).guest.ipv4.address);
  assert.deepEqual(got, ['10.213.0.2', '10.213.0.3', '10.213.0.4', '10.213.0.5', '10.213.0.6']);
  await assert.rejects(f.net.attach(vmId(f.inst, 6), 'h', cfg), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_NET_POOL_EXHAUSTED'));
    assert.match(e.message, new RegExp(`${f.bridge}.*5 IPv4`));
    return true;
  });
  await f.net.detach(vmId(f.inst, 3));
  assert.equal((await f.net.attach(vmId(f.inst, 7), 'h', cfg)).guest.ipv4.address, '10.213.0.4', 'the lowest free after the cursor, wrapping');
});

test('twenty concurrent attaches get twenty different addresses, MACs and taps', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => f.net.attach(vmId(f.inst, i + 1), 'h', cfg)));
  assert.equal(new Set(leases.map((l) => l.guest.ipv4.address)).size, 20);
  assert.equal(new Set(leases.map((l) => l.guest.ipv6?.address)).size, 20);
  assert.equal(new Set(leases.map((l) => l.mac)).size, 20);
  assert.equal(taps(`f${f.inst}-`).length, 20);
  await Promise.all(leases.map((l) => f.net.detach(l.vmId)));
  assert.deepEqual(taps(`f${f.inst}-`), []);
  assert.deepEqual(openLeaseStore(f.db).ofInstance(f.inst), []);
});


test('a guest that forges another source address is dropped by the guard; its own IPv4 and IPv6 addresses get through', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('python3'))) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const lease = await f.net.attach(vmId(f.inst, 1), 'h', cfg);
  const bridgeMac = String(linkJson(f.bridge)?.address);
  const ping = (mac: string, src: string, dst = '10.213.0.1'): string => sh('python3', ['-c', GUEST_PING, lease.tap, mac, src, bridgeMac, dst]).trim();
  const drops = (): number[] => [...sh('nft', ['list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(ping(lease.mac, lease.guest.ipv4.address), 'reply', 'the leased MAC and address reach the gateway');
  const before = drops().reduce((a, b) => a + b, 0);
  assert.equal(ping(lease.mac, '10.213.0.99'), 'none', 'a forged source address is dropped');
  assert.equal(ping('06:00:0a:d5:00:63', lease.guest.ipv4.address), 'none', 'a forged source MAC is dropped');
  assert.equal(drops().reduce((a, b) => a + b, 0), before + 2);
  // IPv6 works end to end: the leased address reaches the bridge's v6
  // address (and the answer finds the guest through its permanent neighbour
  // entry); a forged v6 source does not.
  assert.equal(ping(lease.mac, String(lease.guest.ipv6?.address), 'fd00:f1:213::1'), 'reply');
  assert.equal(ping(lease.mac, 'fd00:f1:213::99', 'fd00:f1:213::1'), 'none');
  assert.equal(drops().reduce((a, b) => a + b, 0), before + 3);
});

test('a bridge name that could smuggle a command into `ip -batch` or nft is refused before anything runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-net-'));
  const db = openDatabase(dir);
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const ran: string[] = [];
  const net = createLinuxNetwork({ instanceId: 'zz', leases: openLeaseStore(db), commands: { run: async (p) => { ran.push(p); return { stdout: '[]', stderr: '' }; } } });
  for (const name of ['br0\nlink del dev eth0', 'br "0"', '', 'a-very-long-bridge-name']) {
    const cfg = { name, v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: [] };
    await assert.rejects(net.ensureNetwork(cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_MISCONFIGURED'));
    await assert.rejects(net.attach('zz-00001', 'h', cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_MISCONFIGURED'));
  }
  assert.deepEqual(ran, []);
  assert.deepEqual(openLeaseStore(db).ofInstance('zz'), []);
});

test('NAT: a guest reaches a host beyond the uplink, which sees only the uplink address', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('python3'), program('nsenter'))) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, {}, false);
  await f.net.ensureNetwork(cfg);
  const lease = await f.net.attach(vmId(f.inst, 1), 'h', cfg);
  // "The internet": a second namespace held open by a sleeping process, joined by a veth pair.
  // TEST-NET-2 addresses (198.51.100.0/24), and the outside has no route back to the guests' subnet.
  const outside = spawn('unshare', ['-n', 'sleep', '120'], { stdio: 'ignore', env: { ...process.env, PATH } });
  t.after(() => outside.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  const pid = String(outside.pid);
  const up = `${f.bridge}u`;
  const far = `${f.bridge}x`;
  t.after(() => trySh('ip', ['link', 'del', 'dev', up]));
  sh('ip', ['link', 'add', up, 'type', 'veth', 'peer', 'name', far]);
  sh('ip', ['link', 'set', far, 'netns', pid]);
  sh('ip', ['addr', 'add', '198.51.100.1/24', 'dev', up]);
  sh('ip', ['link', 'set', up, 'up']);
  sh('nsenter', ['-t', pid, '-n', 'ip', 'addr', 'add', '198.51.100.2/24', 'dev', far]);
  sh('nsenter', ['-t', pid, '-n', 'ip', 'link', 'set', far, 'up']);
  sh('nsenter', ['-t', pid, '-n', 'ip', 'link', 'set', 'lo', 'up']);
  const bridgeMac = String(linkJson(f.bridge)?.address);
  // A new ICMP id per ping: a new conntrack entry, never one that kept the NAT of an earlier ping.
  const ping = (ident: number): string => sh('python3', ['-c', GUEST_PING, lease.tap, lease.mac, lease.guest.ipv4.address, bridgeMac, '198.51.100.2', String(ident)]).trim();
  assert.equal(ping(1001), 'reply', 'the guest got an answer from beyond the uplink');
  // Without the masquerade rule the outside could not answer: it has no route to 10.213.0.0/24.
  await f.net.removeNat(f.bridge);
  assert.equal(ping(1002), 'none', 'without NAT the answer has nowhere to go');
});


// Two independent layers keep guests apart: isolated bridge ports, and the
// guard chain's "bridge in, bridge out: drop" (which, on hosts with
// br_netfilter, sees bridged frames too). Either alone passes this test; it
// fails only when both are gone (checked by hand when it was written).
test('guests on one bridge cannot reach each other, neither directly nor routed through the host', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('python3'), program('busybox'))) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, {}, false);
  await f.net.ensureNetwork(cfg);
  const a = await f.net.attach(vmId(f.inst, 1), 'a', cfg);
  const b = await f.net.attach(vmId(f.inst, 2), 'b', cfg);
  const bridgeMac = String(linkJson(f.bridge)?.address);
  const listener = spawn('python3', ['-c', GUEST_LISTEN, b.tap, '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => listener.kill('SIGKILL'));
  let heard = '';
  listener.stdout.on('data', (d: Buffer) => { heard += d.toString(); });
  const done = new Promise((r) => listener.on('exit', r));
  while (!heard.includes('ready')) await new Promise((r) => setTimeout(r, 50));
  // Positive control: the host itself reaches b (so the listener hears what arrives).
  trySh('busybox', ['ping', '-c', '1', '-W', '1', b.guest.ipv4.address]);
  // a → b straight on layer 2, and a → b via the gateway's MAC (routed by the host).
  assert.equal(sh('python3', ['-c', GUEST_PING, a.tap, a.mac, a.guest.ipv4.address, b.mac, b.guest.ipv4.address]).trim(), 'none');
  assert.equal(sh('python3', ['-c', GUEST_PING, a.tap, a.mac, a.guest.ipv4.address, bridgeMac, b.guest.ipv4.address]).trim(), 'none');
  await done;
  const sources = heard.split('\n').filter((l) => /^\d/.test(l));
  assert.ok(sources.includes('10.213.0.1'), `the host's ping reached b (heard: ${sources.join(' ')})`);
  assert.ok(!sources.includes(a.guest.ipv4.address), `nothing from a reached b (heard: ${sources.join(' ')})`);
});

test('a guard table that is missing or outdated is rebuilt with the entries of the VMs still attached', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const lease = await f.net.attach(vmId(f.inst, 1), 'h', cfg);
  const guard = guardTableName(f.inst, f.bridge);
  // An older Flint's table: same name, other content, no fingerprint.
  sh('nft', ['delete', 'table', 'bridge', guard]);
  sh('nft', ['add', 'table', 'bridge', guard]);
  f.reopen(); // a restarted Flint
  await f.net.ensureNetwork(cfg);
  const listing = sh('nft', ['list', 'table', 'bridge', guard]);
  assert.ok(listing.includes(`"${lease.tap}" . ${lease.mac} . ${lease.guest.ipv4.address}`), listing);
  assert.ok(listing.includes(`"${lease.tap}" . ${lease.mac} . ${String(lease.guest.ipv6?.address)}`), listing);
});

/** Writes `frames` on the tap as its guest, and returns what the tap received within `seconds` (as hex). */
function playFrames(tap: string, frames: readonly string[], seconds = 0.6): string[] {
  return sh('python3', ['-c', GUEST_FRAMES, tap, String(seconds), ...frames]).split('\n').filter((l) => l !== '');
}
/** The link-layer address of `address` in the host's neighbour table of the bridge, and its state. */
function neighbour(bridge: string, address: string): string | undefined {
  const line = sh('ip', ['neigh', 'show', 'dev', bridge]).split('\n').find((l) => l.startsWith(`${address} `));
  return line?.replace(`${address} `, '').trim();
}
const guardDrops = (f: Fixture): number => [...sh('nft', ['list', 'table', 'bridge', guardTableName(f.inst, f.bridge)]).matchAll(/counter packets (\d+)/g)]
  .reduce((sum, m) => sum + Number(m[1]), 0);
const isArpReplyFrom = (hex: string, ip: string): boolean => hex.slice(24, 28) === '0806' && hex.slice(40, 44) === '0002'
  && hex.slice(56, 64) === Buffer.from(ip.split('.').map(Number)).toString('hex');
const isAdvertOf = (hex: string, target: string): boolean => hex.slice(24, 28) === '86dd' && hex.slice(40, 42) === '3a'
  && hex.slice(108, 110) === '88' && hex.slice(124, 156) === ipv6Bytes(target).toString('hex');

test('ARP from a guest must name its own MAC and address: forged replies, announcements and probes are dropped and teach the host nothing', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('python3'))) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge, {}, false);
  await f.net.ensureNetwork(cfg);
  const a = await f.net.attach(vmId(f.inst, 1), 'a', cfg);
  const b = await f.net.attach(vmId(f.inst, 2), 'b', cfg);
  const gw = '10.213.0.1';
  const bridgeMac = String(linkJson(f.bridge)?.address);
  const bcast = 'ff:ff:ff:ff:ff:ff';
  // An address no guest holds, with an entry the host learned from a device on the bridge.
  sh('ip', ['neigh', 'replace', '10.213.0.60', 'lladdr', '02:00:00:00:00:60', 'dev', f.bridge, 'nud', 'stale']);
  // Positive control: the guest's own request is answered.
  const own = arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: a.mac, senderIp: a.guest.ipv4.address, targetIp: gw });
  assert.ok(playFrames(a.tap, [own]).some((h) => isArpReplyFrom(h, gw)), 'the gateway answers the guest\'s own ARP request');
  const probe = arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: a.mac, senderIp: '0.0.0.0', targetIp: gw });
  assert.ok(playFrames(a.tap, [probe]).some((h) => isArpReplyFrom(h, gw)), 'and its address probe (RFC 5227)');

  const before = guardDrops(f);
  const forged = [
    // A request to the gateway from an address it does not hold: the host would learn 10.213.0.50 → a.
    arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: a.mac, senderIp: '10.213.0.50', targetIp: gw }),
    // A reply claiming b's address.
    arpFrame({ dst: bridgeMac, src: a.mac, op: 2, senderMac: a.mac, senderIp: b.guest.ipv4.address, targetMac: bridgeMac, targetIp: gw }),
    // A gratuitous announcement of the address the host knows another device by.
    arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: a.mac, senderIp: '10.213.0.60', targetIp: '10.213.0.60' }),
    // Its own address with b's MAC as sender hardware address, and a probe naming b's MAC (the answer would go to b).
    arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: b.mac, senderIp: a.guest.ipv4.address, targetIp: gw }),
    arpFrame({ dst: bcast, src: a.mac, op: 1, senderMac: b.mac, senderIp: '0.0.0.0', targetIp: gw }),
  ];
  assert.deepEqual(playFrames(a.tap, forged).filter((h) => isArpReplyFrom(h, gw)), [], 'no forged request is answered');
  assert.equal(guardDrops(f), before + forged.length, 'each forged frame is counted by the guard');
  assert.equal(neighbour(f.bridge, '10.213.0.50'), undefined);
  assert.match(neighbour(f.bridge, b.guest.ipv4.address) ?? '', new RegExp(`lladdr ${b.mac} PERMANENT`));
  assert.match(neighbour(f.bridge, '10.213.0.60') ?? '', /lladdr 02:00:00:00:00:60 /);
  assert.match(neighbour(f.bridge, a.guest.ipv4.address) ?? '', new RegExp(`lladdr ${a.mac} PERMANENT`));

  // Without the guard the same frames poison the host: the test sees the rules, not an accident.
  sh('nft', ['delete', 'table', 'bridge', guardTableName(f.inst, f.bridge)]);
  playFrames(a.tap, forged.slice(0, 3), 0.2);
  assert.match(neighbour(f.bridge, '10.213.0.50') ?? '', new RegExp(`lladdr ${a.mac} `));
  assert.match(neighbour(f.bridge, '10.213.0.60') ?? '', new RegExp(`lladdr ${a.mac} `));
});

test('NDP from a guest may claim only its own addresses; router advertisements and other link-local traffic are dropped', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('python3'))) return;
  const f = fixture(t);
  const cfg = netConfig(f.bridge);
  await f.net.ensureNetwork(cfg);
  const a = await f.net.attach(vmId(f.inst, 1), 'a', cfg);
  const b = await f.net.attach(vmId(f.inst, 2), 'b', cfg);
  const a6 = String(a.guest.ipv6?.address);
  const b6 = String(b.guest.ipv6?.address);
  const gw6 = 'fd00:f1:213::1';
  const bridgeMac = String(linkJson(f.bridge)?.address);
  const ll = linkLocalOf(a.mac);
  const allNodes = { dst: '33:33:00:00:00:01', to: 'ff02::1' };
  const solicitGw = { dst: '33:33:ff:00:00:01', to: 'ff02::1:ff00:1', type: 135 as const, target: gw6, lladdr: a.mac, src: a.mac };
  // An address no guest holds, known to the host as another device's.
  const other = 'fd00:f1:213::60';
  sh('ip', ['-6', 'neigh', 'replace', other, 'lladdr', '02:00:00:00:00:60', 'dev', f.bridge, 'nud', 'stale']);
  // Positive controls: the gateway answers the guest's solicitation from its
  // own address and from its link-local one; its advertisement of its own
  // address, from either, and duplicate detection (from ::) pass the guard.
  assert.ok(playFrames(a.tap, [ndFrame({ ...solicitGw, from: a6 })]).some((h) => isAdvertOf(h, gw6)), 'solicitation from the leased address');
  assert.ok(playFrames(a.tap, [ndFrame({ ...solicitGw, from: ll })]).some((h) => isAdvertOf(h, gw6)), 'solicitation from the link-local address');
  const before = guardDrops(f);
  playFrames(a.tap, [
    ndFrame({ ...allNodes, src: a.mac, from: a6, type: 136, target: a6, lladdr: a.mac }),
    ndFrame({ ...allNodes, src: a.mac, from: ll, type: 136, target: a6, lladdr: a.mac }),
    ndFrame({ ...allNodes, src: a.mac, from: ll, type: 136, target: ll, lladdr: a.mac }),
    ndFrame({ dst: '33:33:ff:00:00:02', to: 'ff02::1:ff00:2', src: a.mac, from: '::', type: 135, target: a6, lladdr: a.mac }),
  ], 0.2);
  assert.equal(guardDrops(f), before, 'nothing of the guest\'s own neighbour discovery is dropped');

  const forged = [
    // Advertisements of an address the guest does not hold, from its link-local, its leased and the unspecified address.
    ndFrame({ ...allNodes, src: a.mac, from: ll, type: 136, target: other, lladdr: a.mac }),
    ndFrame({ ...allNodes, src: a.mac, from: a6, type: 136, target: other, lladdr: a.mac }),
    ndFrame({ ...allNodes, src: a.mac, from: a6, type: 136, target: b6, lladdr: a.mac }),
    ndFrame({ ...allNodes, src: a.mac, from: '::', type: 136, target: other, lladdr: a.mac }),
    // A router advertisement (what a router on an operator's bridge would follow).
    ndFrame({ ...allNodes, src: a.mac, from: ll, type: 134, lladdr: a.mac }),
    // And a plain echo request from the link-local address.
  ];
  const echo = (): string => sh('python3', ['-c', GUEST_PING, a.tap, a.mac, ll, bridgeMac, gw6]).trim();
  playFrames(a.tap, forged, 0.2);
  assert.equal(echo(), 'none', 'no other traffic from the link-local address');
  assert.equal(guardDrops(f), before + forged.length + 1, 'each forged frame is counted by the guard');
  assert.match(neighbour(f.bridge, other) ?? '', /lladdr 02:00:00:00:00:60 /, 'the host still knows the other device by its own MAC');
  assert.match(neighbour(f.bridge, b6) ?? '', new RegExp(`lladdr ${b.mac} PERMANENT`));

  // Without the guard the first advertisement moves the host's entry to the forger.
  sh('nft', ['delete', 'table', 'bridge', guardTableName(f.inst, f.bridge)]);
  playFrames(a.tap, forged.slice(0, 1), 0.2);
  assert.match(neighbour(f.bridge, other) ?? '', new RegExp(`lladdr ${a.mac} `));
});

test('a network-policy pass deletes this instance\'s tables of a network no longer configured once no VM of it is left, never another instance\'s', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const f = fixture(t);
  const gone = `${f.bridge}g`;
  const other = `${f.inst}x`;
  const otherDb = openDatabase(f.dir);
  const otherNet = createLinuxNetwork({ instanceId: other, leases: openLeaseStore(otherDb) });
  t.after(() => {
    for (const tap of taps(`f${f.inst}-`)) trySh('ip', ['link', 'del', 'dev', tap]);
    trySh('ip', ['link', 'del', 'dev', gone]);
    for (const inst of [f.inst, other]) {
      trySh('nft', ['delete', 'table', 'inet', nftTableName(inst, gone)]);
      trySh('nft', ['delete', 'table', 'bridge', guardTableName(inst, gone)]);
    }
    otherDb.close();
  });
  const kept = netConfig(f.bridge, {}, false);
  const dropped = netConfig(gone, { v4: { address: '10.214.0.1', prefixLength: 24 }, dns: [] }, false);
  await f.net.ensureNetwork(kept);
  await f.net.ensureNetwork(dropped);
  // Another instance (whose id starts with ours) on the dropped network, and a VM of ours still on it.
  await otherNet.ensureNetwork(dropped);
  const vm = vmId(f.inst, 1);
  await f.net.attach(vm, 'h', dropped);
  const tables = (): string[] => sh('nft', ['list', 'tables']).split('\n').filter((l) => l.includes('flint_')).sort();
  const mine = [`table bridge ${guardTableName(f.inst, gone)}`, `table inet ${nftTableName(f.inst, gone)}`];
  const theirs = [`table bridge ${guardTableName(other, gone)}`, `table inet ${nftTableName(other, gone)}`];
  const keptTables = [`table bridge ${guardTableName(f.inst, f.bridge)}`, `table inet ${nftTableName(f.inst, f.bridge)}`];

  await f.net.reassert([kept]);
  assert.deepEqual(tables(), [...mine, ...theirs, ...keptTables].sort(), 'a VM still on the dropped network keeps its guard and policy');
  await f.net.detach(vm);
  await f.net.reassert([kept]);
  assert.deepEqual(tables(), [...theirs, ...keptTables].sort(), 'gone once its last VM is');
  await f.net.reassert([kept]);
  assert.deepEqual(tables(), [...theirs, ...keptTables].sort(), 'a second pass finds nothing to do');
});
