// What a guest may reach, with real `nft`, real sockets and real traffic.
// Each test builds three namespaces of its own inside the test runner's
// private one (so that `nft flush ruleset` touches nothing else):
//
//   guest ns ── veth "f<inst>-…" ── bridge ── host ns (Flint's, via nsenter) ── veth ── outside ns
//   10.215.0.x                     10.215.0.1         198.51.100.1          198.51.100.2, 203.0.113.2,
//   fd00:f1:215::x                 fd00:f1:215::1     2001:db8:1::1         169.254.169.254,
//                                                                           2001:db8:1::2, 2001:db8:2::2,
//                                                                           fd00:ec2::254
//
// With `operator`, the bridge is one the operator made (`create: false`)
// and holds a second port besides the guests': a veth to the outside
// namespace, which then also sits on the guests' subnet as 10.215.0.254 —
// a router on the operator's LAN.
//
// The guest end of the VM's port is a veth in the guest namespace instead of
// a tap (no VM is booted): same name, same bridge, same isolated port, and
// the leased MAC and address, so every rule sees what it would see.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { openDatabase } from '../store/db.ts';
import { openLeaseStore } from '../store/leases.ts';
import { createLinuxNetwork } from './linux-network.ts';
import type { EgressDefinition, LinuxHostNetwork } from './linux-network.ts';
import { fixedHostResolver } from './host-resolver.ts';
import { CommandError } from './command.ts';
import type { CommandRunner } from './command.ts';
import type { NetworkConfig } from '../../config/types.ts';
import type { NetworkLease } from '../../daemon/vm/ports.ts';
import { startNetworkPolicy } from '../../daemon/network-policy.ts';
import { vmId } from '../../core/ids.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import type { Prerequisite } from '../../../test/helpers/prereq.ts';

const execFileP = promisify(execFile);
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const env = { ...process.env, PATH };

const privateNetns: Prerequisite = {
  what: 'the private network namespace of scripts/test.mjs',
  ok: () => process.env.FLINT_TEST_NETNS === '1',
  install: 'run through `node scripts/test.mjs` as root (it runs the tests under `unshare -n`)',
};
const prereqs = [root, privateNetns, program('ip'), program('nft'), program('nsenter'), program('unshare'), program('python3')];

/** Listens on TCP `addr:port` for each argument, and answers UDP on port 53 ones with what it got. */
const LISTEN = String.raw`
import socket, sys, threading
def tcp(a, p):
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((a, p)); s.listen(16)
    while True: c, _ = s.accept(); c.close()
def udp(a, p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((a, p))
    while True: d, peer = s.recvfrom(512); s.sendto(d, peer)
for arg in sys.argv[1:]:
    a, p = arg.rsplit(':', 1)
    threading.Thread(target=tcp, args=(a, int(p)), daemon=True).start()
    if p == '53': threading.Thread(target=udp, args=(a, 53), daemon=True).start()
print('ready', flush=True)
sys.stdin.read()
`;

/** Prints "open", "refused" or "blocked" (no answer within a second) for TCP, "answered"/"blocked" for UDP. */
const PROBE = String.raw`
import socket, sys
proto, a, p = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == 'tcp':
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET); s.settimeout(1)
    try: s.connect((a, p)); print('open')
    except ConnectionRefusedError: print('refused')
    except OSError: print('blocked')
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b'q', (a, p))
    try: s.recvfrom(512); print('answered')
    except OSError: print('blocked')
`;

/** A namespace held by a sleeping process: it ends with that process, taking its devices with it. */
function namespace(t: TestContext): string {
  const holder: ChildProcess = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore', env });
  t.after(() => { holder.kill('SIGKILL'); });
  if (holder.pid === undefined) throw new Error('unshare did not start');
  return String(holder.pid);
}

function inNs(pid: string, cmd: string, args: readonly string[]): string {
  return execFileSync('nsenter', ['-t', pid, '-n', cmd, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Flint's commands, run in the host namespace of the test. */
function nsCommands(pid: string): CommandRunner {
  return {
    async run(prog, args, opts = {}) {
      const p = execFileP('nsenter', ['-t', pid, '-n', prog, ...args], { env: { ...env, LC_ALL: 'C' } });
      if (opts.input !== undefined) p.child.stdin?.end(opts.input);
      try {
        return await p;
      } catch (err) {
        const e = err as { code?: number; stderr?: string }; // execFile's error shape
        throw new CommandError(prog, args, typeof e.code === 'number' ? e.code : null, e.stderr ?? '', err);
      }
    },
  };
}

interface World {
  readonly host: string;
  /** The "internet" namespace (and, with `operator`, the router on the bridge). */
  readonly outside: string;
  readonly net: LinuxHostNetwork;
  readonly cfg: NetworkConfig;
  readonly hosts: Map<string, string[]>;
  /** Attaches a VM and plays its guest in a namespace of its own; returns that namespace. */
  guest(n: number): Promise<{ ns: string; lease: NetworkLease }>;
  probe(guestNs: string, proto: 'tcp' | 'udp', address: string, port: number): string;
  /** TCP/UDP listeners in a namespace (address:port each), until the test ends. */
  listenIn(ns: string, ...targets: string[]): Promise<void>;
}

const BRIDGE = 'fpolbr';

interface WorldOptions {
  readonly hostDns?: boolean;
  readonly hostPorts?: number[];
  readonly egress?: EgressDefinition['egress'];
  /** The network has the IPv6 prefix fd00:f1:215::/64, and the uplink IPv6 addresses. */
  readonly v6?: boolean;
  /** The bridge is the operator's, with a port to a router on the guests' subnet (see above). */
  readonly operator?: boolean;
}

async function world(t: TestContext, opts: WorldOptions = {}): Promise<World> {
  const inst = `p${randomBytes(2).toString('hex')}`;
  const host = namespace(t);
  const outside = namespace(t);
  const sh = (...args: string[]): string => inNs(host, 'ip', args);
  const out = (...args: string[]): string => inNs(outside, 'ip', args);
  sh('link', 'set', 'lo', 'up');
  inNs(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // The uplink: the outside namespace holds the "internet" addresses and routes nothing back to the guests (NAT must).
  sh('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'o0', 'netns', outside);
  sh('addr', 'add', '198.51.100.1/24', 'dev', 'up0');
  sh('link', 'set', 'up0', 'up');
  sh('route', 'add', 'default', 'via', '198.51.100.2');
  out('link', 'set', 'lo', 'up');
  out('addr', 'add', '198.51.100.2/24', 'dev', 'o0');
  out('addr', 'add', '203.0.113.2/32', 'dev', 'lo');
  out('addr', 'add', '169.254.169.254/32', 'dev', 'lo');
  out('link', 'set', 'o0', 'up');
  if (opts.v6 === true) {
    inNs(host, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    sh('addr', 'add', '2001:db8:1::1/64', 'dev', 'up0', 'nodad');
    out('addr', 'add', '2001:db8:1::2/64', 'dev', 'o0', 'nodad');
    out('addr', 'add', '2001:db8:2::2/128', 'dev', 'lo');
    out('addr', 'add', 'fd00:ec2::254/128', 'dev', 'lo');
  }
  if (opts.operator === true) {
    sh('link', 'add', BRIDGE, 'address', '06:00:0a:d7:00:01', 'type', 'bridge');
    sh('addr', 'add', '10.215.0.1/24', 'dev', BRIDGE);
    sh('link', 'set', BRIDGE, 'up');
    sh('link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'r0', 'netns', outside);
    sh('link', 'set', 'lan0', 'master', BRIDGE);
    sh('link', 'set', 'lan0', 'up');
    out('addr', 'add', '10.215.0.254/24', 'dev', 'r0');
    out('link', 'set', 'r0', 'up');
  }
  const listen = (ns: string, ...targets: string[]): Promise<void> => {
    const p = spawn('nsenter', ['-t', ns, '-n', 'python3', '-c', LISTEN, ...targets], { stdio: ['pipe', 'pipe', 'inherit'], env });
    t.after(() => { p.kill('SIGKILL'); });
    return new Promise((resolve) => p.stdout.once('data', () => resolve()));
  };
  await listen(outside, '0.0.0.0:8080', ...(opts.v6 === true ? ['2001:db8:1::2:8080', '2001:db8:2::2:8080', 'fd00:ec2::254:8080'] : []));

  const dir = mkdtempSync(join(tmpdir(), 'flint-policy-'));
  const db = openDatabase(dir);
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const hosts = new Map<string, string[]>();
  const cfg: NetworkConfig = {
    name: BRIDGE, v4: { address: '10.215.0.1', prefixLength: 24 }, create: opts.operator !== true, dns: ['198.51.100.53'],
    ...(opts.v6 === true ? { v6: { address: 'fd00:f1:215::1', prefixLength: 64 } } : {}),
    ...(opts.hostDns === true ? { hostDns: true } : {}), ...(opts.hostPorts === undefined ? {} : { hostPorts: opts.hostPorts }) };
  const net = createLinuxNetwork({
    instanceId: inst, leases: openLeaseStore(db), commands: nsCommands(host),
    definitions: [{ name: 'small', network: BRIDGE, ...(opts.egress === undefined ? {} : { egress: opts.egress }) }],
    definitionOf: () => Promise.resolve('small'),
    resolver: fixedHostResolver(hosts),
  });
  await net.ensureNetwork(cfg);
  // Services on the host: on the gateway address and on the uplink address.
  await listen(host, '10.215.0.1:8080', '10.215.0.1:53', '198.51.100.1:8080', ...(opts.v6 === true ? ['fd00:f1:215::1:8080', '2001:db8:1::1:8080'] : []));
  return {
    host, outside, net, cfg, hosts, listenIn: listen,
    async guest(n) {
      const lease = await net.attach(vmId(inst, n), `g${n}`, cfg);
      const ns = namespace(t);
      sh('link', 'del', 'dev', lease.tap);
      sh('link', 'add', lease.tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      sh('link', 'set', 'dev', lease.tap, 'master', BRIDGE);
      sh('link', 'set', 'dev', lease.tap, 'type', 'bridge_slave', 'isolated', 'on');
      sh('link', 'set', 'dev', lease.tap, 'up');
      inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
      inNs(ns, 'ip', ['link', 'set', 'eth0', 'address', lease.mac]);
      inNs(ns, 'ip', ['addr', 'add', `${lease.guest.ipv4.address}/24`, 'dev', 'eth0']);
      inNs(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      inNs(ns, 'ip', ['route', 'add', 'default', 'via', '10.215.0.1']);
      if (lease.guest.ipv6 !== undefined) {
        inNs(ns, 'ip', ['addr', 'add', `${lease.guest.ipv6.address}/64`, 'dev', 'eth0', 'nodad']);
        inNs(ns, 'ip', ['-6', 'route', 'add', 'default', 'via', lease.guest.ipv6.gateway]);
      }
      return { ns, lease };
    },
    probe: (ns, proto, address, port) => inNs(ns, 'python3', ['-c', PROBE, proto, address, String(port)]).trim(),
  };
}

test('a guest reaches no service on the host, on the gateway or any other host address; the outside through NAT', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t);
  const { ns } = await w.guest(1);
  // Positive controls: the host's own services answer the host, and the guest gets out.
  assert.equal(inNs(w.host, 'python3', ['-c', PROBE, 'tcp', '10.215.0.1', '8080']).trim(), 'open');
  assert.equal(w.probe(ns, 'tcp', '198.51.100.2', 8080), 'open', 'the guest reaches the outside');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'blocked', 'a service on the gateway address');
  assert.equal(w.probe(ns, 'tcp', '198.51.100.1', 8080), 'blocked', 'a service on another host address');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 22), 'blocked', 'no refusal either: nothing tells the guest what listens');
  assert.equal(w.probe(ns, 'udp', '10.215.0.1', 53), 'blocked', 'no DNS on the host unless the network says so');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 53), 'blocked');
  // Without Flint's table the same guest reaches them: the test sees the rules, not an accident.
  inNs(w.host, 'nft', ['flush', 'ruleset']);
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'open');
});

test('hostDns: true lets a guest ask the host\'s DNS on the gateway, and nothing else there', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { hostDns: true });
  const { ns } = await w.guest(1);
  assert.equal(w.probe(ns, 'udp', '10.215.0.1', 53), 'answered');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 53), 'open');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'blocked');
});

test('hostPorts opens those TCP ports on the gateway address only, not on the host\'s other addresses', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { hostPorts: [8080] });
  const { ns } = await w.guest(1);
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'open');
  assert.equal(w.probe(ns, 'tcp', '198.51.100.1', 8080), 'blocked');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 53), 'blocked');
});

test('the metadata address 169.254.169.254 is unreachable even when a route leads there', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t);
  inNs(w.host, 'ip', ['route', 'add', '169.254.169.254/32', 'via', '198.51.100.2']);
  inNs(w.host, 'ip', ['route', 'add', '203.0.113.2/32', 'via', '198.51.100.2']);
  const { ns } = await w.guest(1);
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'open', 'the same listener on another outside address answers');
  assert.equal(w.probe(ns, 'tcp', '169.254.169.254', 8080), 'blocked');
});

test('an egress allow-list lets a guest reach the listed prefix only, and a host name once Flint resolves it', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { egress: { cidrs: ['198.51.100.0/25'], hosts: ['registry.example'] } });
  inNs(w.host, 'ip', ['route', 'add', '203.0.113.2/32', 'via', '198.51.100.2']);
  const { ns } = await w.guest(1);
  assert.equal(w.probe(ns, 'tcp', '198.51.100.2', 8080), 'open', 'in the listed prefix');
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'blocked', 'the host name did not resolve yet');
  w.hosts.set('registry.example', ['203.0.113.2']);
  await w.net.reassert([w.cfg]);
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'open', 'its address, after the refresh');
  w.hosts.set('registry.example', ['203.0.113.99']);
  await w.net.reassert([w.cfg]);
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'blocked', 'the address it no longer resolves to, after the next one');
});

test('nft flush ruleset: the next network-policy pass restores the tables with every live VM\'s entries', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { egress: { cidrs: ['198.51.100.0/25'], hosts: [] } });
  inNs(w.host, 'ip', ['route', 'add', '203.0.113.2/32', 'via', '198.51.100.2']);
  const { ns } = await w.guest(1);
  const warnings: string[] = [];
  const loop = startNetworkPolicy({ network: w.net, networks: [w.cfg], logger: { warn: (_o, msg) => { warnings.push(msg); } }, now: Date.now, intervalMs: 3_600_000, runAtStart: false });
  t.after(() => loop.stop());
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'blocked');
  inNs(w.host, 'nft', ['flush', 'ruleset']);
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'open', 'nothing stops the guest now');
  loop.poke();
  while (loop.status().runs < 1) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(warnings, []);
  assert.equal(w.probe(ns, 'tcp', '10.215.0.1', 8080), 'blocked', 'the host is out of reach again');
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'blocked', 'the VM is under its allow-list again');
  assert.equal(w.probe(ns, 'tcp', '198.51.100.2', 8080), 'open', 'and gets out through NAT where the list allows');
});

test('IPv6: a guest gets out through NAT, but reaches neither fd00:ec2::254 (though a route leads there) nor a service on the host\'s IPv6 addresses', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { v6: true });
  inNs(w.host, 'ip', ['-6', 'route', 'add', 'fd00:ec2::254/128', 'via', '2001:db8:1::2']);
  inNs(w.host, 'ip', ['-6', 'route', 'add', '2001:db8:2::2/128', 'via', '2001:db8:1::2']);
  const { ns } = await w.guest(1);
  // Positive controls: the host reaches its own listener, the guest reaches the outside over IPv6.
  assert.equal(inNs(w.host, 'python3', ['-c', PROBE, 'tcp', 'fd00:f1:215::1', '8080']).trim(), 'open');
  assert.equal(w.probe(ns, 'tcp', '2001:db8:1::2', 8080), 'open', 'the outside, on the uplink\'s IPv6 subnet');
  assert.equal(w.probe(ns, 'tcp', '2001:db8:2::2', 8080), 'open', 'the same listener on another outside address, routed');
  assert.equal(w.probe(ns, 'tcp', 'fd00:ec2::254', 8080), 'blocked', 'the IPv6 metadata address');
  assert.equal(w.probe(ns, 'tcp', 'fd00:f1:215::1', 8080), 'blocked', 'a service on the gateway\'s IPv6 address');
  assert.equal(w.probe(ns, 'tcp', '2001:db8:1::1', 8080), 'blocked', 'a service on the uplink\'s IPv6 address');
  inNs(w.host, 'nft', ['flush', 'ruleset']);
  assert.equal(w.probe(ns, 'tcp', 'fd00:f1:215::1', 8080), 'open', 'without Flint\'s tables the same guest reaches it');
});

test('an egress allow-list holds over IPv6: the listed prefix only', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { v6: true, egress: { cidrs: ['2001:db8:1::/64'], hosts: [] } });
  inNs(w.host, 'ip', ['-6', 'route', 'add', '2001:db8:2::2/128', 'via', '2001:db8:1::2']);
  const { ns } = await w.guest(1);
  assert.equal(w.probe(ns, 'tcp', '2001:db8:1::2', 8080), 'open', 'in the listed prefix');
  assert.equal(w.probe(ns, 'tcp', '2001:db8:2::2', 8080), 'blocked', 'outside it');
});

// br_netfilter is per network namespace (net.bridge.bridge-nf-call-iptables):
// each case sets it in the test's host namespace only.
test('on an operator\'s bridge without br_netfilter a guest reaches a router on the bridge, but not the metadata address through it', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { operator: true });
  inNs(w.host, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=0']);
  const { ns } = await w.guest(1);
  // The hostile guest picks the LAN router as its next hop: the frame is bridged, the host routes nothing.
  inNs(ns, 'ip', ['route', 'add', '169.254.169.254/32', 'via', '10.215.0.254']);
  assert.equal(w.probe(ns, 'tcp', '10.215.0.254', 8080), 'open', 'the router answers on the guests\' subnet');
  assert.equal(w.probe(ns, 'tcp', '169.254.169.254', 8080), 'blocked');
  // Only the address guard (bridge family) sees the frame: without it the metadata address answers.
  const guard = inNs(w.host, 'nft', ['list', 'tables']).split('\n').find((l) => l.startsWith('table bridge flint_'));
  assert.ok(guard !== undefined);
  inNs(w.host, 'nft', ['delete', ...guard.split(' ')]);
  assert.equal(w.probe(ns, 'tcp', '169.254.169.254', 8080), 'open');
});

test('on an operator\'s bridge with br_netfilter, a guest reaches the operator\'s LAN (bridged, or routed back into the bridge by the host) but neither the metadata address through it nor another guest', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const w = await world(t, { operator: true });
  inNs(w.host, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1']);
  inNs(w.host, 'ip', ['route', 'add', '203.0.113.2/32', 'via', '198.51.100.2']);
  // A network the host reaches through the router on the bridge: routed back out of the bridge it came in by.
  inNs(w.outside, 'ip', ['addr', 'add', '192.0.2.7/32', 'dev', 'lo']);
  inNs(w.host, 'ip', ['route', 'add', '192.0.2.7/32', 'via', '10.215.0.254']);
  const first = await w.guest(1);
  const { ns } = first;
  const other = await w.guest(2);
  const otherAddress = other.lease.guest.ipv4.address;
  await w.listenIn(other.ns, `${otherAddress}:8080`);
  // The hostile guest picks the LAN router as its next hop for the metadata address, and the gateway for the other guest.
  inNs(ns, 'ip', ['route', 'add', '169.254.169.254/32', 'via', '10.215.0.254']);
  inNs(ns, 'ip', ['route', 'add', `${otherAddress}/32`, 'via', '10.215.0.1']);
  // And the other answers the same way (the bridge keeps the two apart on layer 2 anyway).
  inNs(other.ns, 'ip', ['route', 'add', `${first.lease.guest.ipv4.address}/32`, 'via', '10.215.0.1']);
  assert.equal(w.probe(ns, 'tcp', '203.0.113.2', 8080), 'open', 'routed by the host (gateway 10.215.0.1)');
  assert.equal(w.probe(ns, 'tcp', '10.215.0.254', 8080), 'open', 'bridged to the router on the guests\' subnet');
  assert.equal(w.probe(ns, 'tcp', '192.0.2.7', 8080), 'open', 'routed by the host back into the bridge, to the router');
  assert.equal(w.probe(ns, 'tcp', '169.254.169.254', 8080), 'blocked', 'the metadata address through the router');
  assert.equal(w.probe(ns, 'tcp', otherAddress, 8080), 'blocked', 'another guest, through the gateway');
  inNs(w.host, 'nft', ['flush', 'ruleset']);
  assert.equal(w.probe(ns, 'tcp', '169.254.169.254', 8080), 'open', 'Flint\'s rules, not the topology');
  assert.equal(w.probe(ns, 'tcp', otherAddress, 8080), 'open', 'the other guest, through the host, once the rules are gone');
});
