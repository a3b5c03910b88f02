// Several Flints on one bridge, and devices Flint did not start: real `ip`
// and `nft` in the private network namespace of the test runner
// (FLINT_TEST_NETNS=1), never elsewhere. Guests are played on their taps by
// a small python3 program (test/helpers/guest-frames.ts), not booted.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { openDatabase } from '../store/db.ts';
import type { Db } from '../store/db.ts';
import { openLeaseStore } from '../store/leases.ts';
import { openBridgeClaims } from './bridge-claims.ts';
import type { BridgeClaims } from './bridge-claims.ts';
import { createLinuxNetwork } from './linux-network.ts';
import type { LinuxHostNetwork, NetworkLogger } from './linux-network.ts';
import { guardTableName, nftTableName } from './nft-rules.ts';
import type { NetworkConfig } from '../../config/types.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { vmId } from '../../core/ids.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import type { Prerequisite } from '../../../test/helpers/prereq.ts';
import { GUEST_PING } from '../../../test/helpers/guest-frames.ts';

const privateNetns: Prerequisite = {
  what: 'the private network namespace of scripts/test.mjs',
  ok: () => process.env.FLINT_TEST_NETNS === '1',
  install: 'run through `node scripts/test.mjs` as root (it runs the tests under `unshare -n`)',
};
const prereqs = [root, privateNetns, program('ip'), program('nft'), program('python3')];

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } });
}
function trySh(cmd: string, args: string[]): void {
  try { execFileSync(cmd, args, { stdio: 'ignore', env: { ...process.env, PATH } }); } catch { /* already gone */ }
}
function bridgeMac(bridge: string): string {
  // `ip -j` prints an array of link objects.
  return String((JSON.parse(sh('ip', ['-j', 'link', 'show', 'dev', bridge])) as Array<{ address: string }>)[0]?.address);
}

class Warnings implements NetworkLogger {
  readonly lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  info(): void { /* not asserted */ }
  warn(obj: Record<string, unknown>, msg: string): void { this.lines.push({ obj, msg }); }
}

interface Instance {
  readonly inst: string;
  readonly stateDir: string;
  readonly db: Db;
  readonly claims: BridgeClaims;
  readonly net: LinuxHostNetwork;
  readonly log: Warnings;
}

/**
 * One test's world: a bridge name, a claims directory (the `runDir` every
 * Flint on the "host" shares), and a way to start Flint instances — each
 * with its own instance id and state directory. Everything is removed in
 * t.after, also when the test fails.
 */
function world(t: TestContext): { bridge: string; subnet: string; start(suffix: string): Instance } {
  const r = randomBytes(2).toString('hex');
  const bridge = `fsb${r}`;
  // 10.214.x.0/24 per test: test files run at the same time in one namespace.
  const subnet = `10.214.${randomBytes(1)[0] ?? 0}`;
  const runDir = mkdtempSync(join(tmpdir(), 'flint-run-'));
  const started: Instance[] = [];
  t.after(() => {
    for (const i of started) {
      const links = JSON.parse(sh('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>; // `ip -j` prints link objects
      for (const l of links) if (l.ifname.startsWith(`f${i.inst}-`)) trySh('ip', ['link', 'del', 'dev', l.ifname]);
      trySh('nft', ['delete', 'table', 'inet', nftTableName(i.inst, bridge)]);
      trySh('nft', ['delete', 'table', 'bridge', guardTableName(i.inst, bridge)]);
      i.claims.close();
      i.db.close();
      rmSync(i.stateDir, { recursive: true, force: true });
    }
    trySh('ip', ['link', 'del', 'dev', bridge]);
    rmSync(runDir, { recursive: true, force: true });
  });
  return {
    bridge,
    subnet,
    start(suffix) {
      const inst = `s${r}${suffix}`;
      const stateDir = mkdtempSync(join(tmpdir(), 'flint-state-'));
      const db = openDatabase(stateDir);
      const log = new Warnings();
      const claims = openBridgeClaims({ dir: runDir, instanceId: inst, stateDir });
      const i = { inst, stateDir, db, claims, log, net: createLinuxNetwork({ instanceId: inst, leases: openLeaseStore(db), claims, log }) };
      started.push(i);
      return i;
    },
  };
}

function netConfig(bridge: string, subnet: string, range?: [number, number]): NetworkConfig {
  return {
    name: bridge, v4: { address: `${subnet}.1`, prefixLength: 24 }, create: true, dns: ['9.9.9.9'],
    ...(range === undefined ? {} : { range: { first: `${subnet}.${range[0]}`, last: `${subnet}.${range[1]}` } }),
  };
}

test('two Flints on one bridge without ranges: the second refuses to start, naming the first', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = world(t);
  const a = w.start('a');
  const b = w.start('b');
  const cfg = netConfig(w.bridge, w.subnet);
  await a.net.ensureNetwork(cfg);
  await assert.rejects(b.net.ensureNetwork(cfg), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED'), String(e));
    assert.match(e.message, new RegExp(`bridge ${w.bridge} is already used by Flint instance "${a.inst}" \\(pid ${process.pid}, state directory ${a.stateDir}`));
    assert.match(e.message, /overlap/);
    assert.match(e.hint, /range/);
    return true;
  });
  // It stopped before making anything: no NAT or guard table of its own.
  assert.doesNotMatch(sh('nft', ['list', 'tables']), new RegExp(`flint_${b.inst}_`));
  // `claim` (what the composition root calls at start) says the same.
  assert.throws(() => b.net.claim(cfg), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED'));
  // Once the first one has stopped (its claim released), the second may start.
  a.claims.close();
  await b.net.ensureNetwork(cfg);
});

test('two Flints on one bridge with disjoint ranges: guests of both get distinct addresses at once and reach their gateway', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = world(t);
  const a = w.start('a');
  const b = w.start('b');
  const cfgA = netConfig(w.bridge, w.subnet, [2, 9]);
  const cfgB = netConfig(w.bridge, w.subnet, [10, 19]);
  await Promise.all([a.net.ensureNetwork(cfgA), b.net.ensureNetwork(cfgB)]);
  // Three guests of each instance, attached all at the same time.
  const leases = await Promise.all([
    ...[1, 2, 3].map((n) => a.net.attach(vmId(a.inst, n), 'a', cfgA)),
    ...[1, 2, 3].map((n) => b.net.attach(vmId(b.inst, n), 'b', cfgB)),
  ]);
  const addresses = leases.map((l) => l.guest.ipv4.address);
  assert.equal(new Set(addresses).size, 6, addresses.join(' '));
  assert.deepEqual(addresses.slice(0, 3).map((x) => Number(x.split('.')[3])).every((o) => o >= 2 && o <= 9), true, addresses.join(' '));
  assert.deepEqual(addresses.slice(3).map((x) => Number(x.split('.')[3])).every((o) => o >= 10 && o <= 19), true, addresses.join(' '));
  const gwMac = bridgeMac(w.bridge);
  for (const l of leases) {
    assert.equal(l.guest.ipv4.gateway, `${w.subnet}.1`);
    assert.equal(sh('python3', ['-c', GUEST_PING, l.tap, l.mac, l.guest.ipv4.address, gwMac, l.guest.ipv4.gateway]).trim(), 'reply', `${l.vmId} (${l.guest.ipv4.address}) reaches its gateway`);
  }
  // A range that overlaps a live one is refused, also when it differs.
  const c = w.start('c');
  await assert.rejects(c.net.ensureNetwork(netConfig(w.bridge, w.subnet, [19, 30])), (e: unknown) =>
    isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && e.message.includes(`"${b.inst}"`) && e.message.includes(`${w.subnet}.19`));
});

/** A second network namespace, held open by a sleeping process, with one end of a veth pair on the bridge. */
async function foreignHost(t: TestContext, bridge: string, address: string): Promise<void> {
  const outside = spawn('unshare', ['-n', 'sleep', '120'], { stdio: 'ignore', env: { ...process.env, PATH } });
  const exited = new Promise((r) => outside.once('exit', r));
  t.after(async () => { outside.kill('SIGKILL'); await exited; });
  const own = readlinkSync('/proc/self/ns/net');
  // Wait until unshare has made its namespace (a state, not a time).
  for (;;) {
    let ns = own;
    try { ns = readlinkSync(`/proc/${outside.pid}/ns/net`); } catch { /* not yet */ }
    if (ns !== own) break;
    await delay(10);
  }
  const pid = String(outside.pid);
  const near = `${bridge}v`;
  const far = `${bridge}w`;
  t.after(() => trySh('ip', ['link', 'del', 'dev', near]));
  sh('ip', ['link', 'add', near, 'type', 'veth', 'peer', 'name', far]);
  sh('ip', ['link', 'set', far, 'netns', pid]);
  sh('ip', ['link', 'set', near, 'master', bridge]);
  sh('ip', ['link', 'set', near, 'up']);
  sh('nsenter', ['-t', pid, '-n', 'ip', 'addr', 'add', `${address}/24`, 'dev', far]);
  sh('nsenter', ['-t', pid, '-n', 'ip', 'link', 'set', far, 'up']);
}

test('an address a veth end on the bridge holds is never handed to a guest (ARP probe), nor one in the neighbour table', async (t) => {
  if (!requirePrereqs(t, ...prereqs, program('nsenter'), program('unshare'))) return;
  const w = world(t);
  const a = w.start('a');
  const cfg = netConfig(w.bridge, w.subnet);
  await a.net.ensureNetwork(cfg);
  // The lowest pool address, the one a fresh pool hands out first. Nothing
  // has talked to it yet: only the probe can find it.
  await foreignHost(t, w.bridge, `${w.subnet}.2`);
  const first = await a.net.attach(vmId(a.inst, 1), 'h', cfg);
  assert.notEqual(first.guest.ipv4.address, `${w.subnet}.2`);
  assert.equal(first.guest.ipv4.address, `${w.subnet}.3`, 'the next address is taken instead');
  const skipped = a.log.lines.find((l) => /skipped an address/.test(l.msg));
  assert.equal(skipped?.obj.address, `${w.subnet}.2`);
  assert.deepEqual(skipped?.obj.ports, [`${w.bridge}v`], 'the warning names the foreign port');
  // The pool wraps back to .2 after .254: still never handed out. A /24
  // with the cursor moved to the end makes the wrap quick.
  const store = openLeaseStore(a.db);
  a.db.prepare('UPDATE net_lease_cursor SET last = ? WHERE network = ?').run(`${w.subnet}.254`, w.bridge);
  const second = await a.net.attach(vmId(a.inst, 2), 'h', cfg);
  assert.equal(second.guest.ipv4.address, `${w.subnet}.4`, 'after the wrap, .2 (in use) and .3 (leased) are skipped');
  assert.deepEqual(store.forVm(vmId(a.inst, 2)).map((l) => l.address), [`${w.subnet}.4`]);
  // The neighbour table knows .2 now; with the veth gone from the bridge
  // (all ports are Flint taps again, so nothing is probed) the table alone
  // keeps .2 out of the pool.
  //
  // Its last port with a carrier gone, the bridge's link goes down up to a
  // second later (more on a loaded host), and the kernel then flushes its
  // learned neighbour entries. The operational state changes just before
  // that flush, so it is no sign the flush is over: a learned sentinel entry
  // is, once it is gone. Only then is the entry this test is about added.
  const sentinel = `${w.subnet}.250`;
  sh('ip', ['neigh', 'replace', sentinel, 'lladdr', '02:00:00:00:00:fa', 'dev', w.bridge, 'nud', 'reachable']);
  sh('ip', ['link', 'set', `${w.bridge}v`, 'nomaster']);
  const sentinelThere = (): boolean => sh('ip', ['neigh', 'show', 'to', sentinel, 'dev', w.bridge]).includes('lladdr');
  for (const deadline = Date.now() + 15_000; sentinelThere() && Date.now() < deadline;) await delay(20);
  sh('ip', ['neigh', 'replace', `${w.subnet}.5`, 'lladdr', '02:00:00:00:00:05', 'dev', w.bridge, 'nud', 'reachable']);
  const third = await a.net.attach(vmId(a.inst, 3), 'h', cfg);
  assert.equal(third.guest.ipv4.address, `${w.subnet}.6`, '.5 answers according to the neighbour table: skipped');
});
