/**
 * HostNetwork on Linux: bridge checks (or creation), NAT with nftables,
 * one tap per VM on the bridge, guest addresses leased in SQLite.
 *
 * Ownership: every tap this instance makes is named `f<instance>-<suffix>`
 * (src/core/ids.ts) and every lease row carries the instance id; `sweep`
 * looks only at those, so a second Flint on the same host is never touched.
 *
 * Tables: `inet flint_<instance>_<bridge>` (what guests may reach: the
 * host only for what they need, no other guest, no metadata address, and
 * their definition's egress allow-list; NAT only for `create: true`
 * networks) and `bridge flint_<instance>_<bridge>_guard`
 * (every frame from this instance's taps must carry the MAC and addresses
 * leased to that tap). See docs/networking.md.
 *
 * Several Flints on one host: with `claims`, ensureNetwork (and `claim`)
 * first records a host-wide claim of the bridge (bridge-claims.ts), which
 * fails when another live Flint with its own state directory hands out
 * addresses that could meet ours (no disjoint `range`s). And before an
 * address goes to a guest, attach makes sure nothing on the bridge answers
 * for it (address-probe.ts).
 *
 * Ordering invariants:
 *   - attach: lease → probe → tap. A crash in between leaves a lease without
 *     a tap (swept later), never a tap whose address is free for another VM.
 *   - detach: tap → lease, for the same reason.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import type { HostNetwork } from '../../daemon/vm/ports.ts';
import type { NetworkConfig } from '../../config/types.ts';
import type { GuestNetwork } from '../../core/guest-contract.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { addressPool, canonicalAddress, parseAddress, poolSpan, restrictPool } from '../../core/ipam.ts';
import type { AddressPool, IpFamily } from '../../core/ipam.ts';
import { macFromIpv4 } from '../../core/mac.ts';
import { isInstanceId, parseVmId, tapName, tapPrefix, vmIdFromTap } from '../../core/ids.ts';
import type { LeaseStore } from '../store/leases.ts';
import { CommandError, systemCommandRunner } from './command.ts';
import type { CommandRunner } from './command.ts';
import {
  egressSetsScript, fingerprintOf, guardElementsScript, guardTableName, nftTableName, policyElementsScript, renderGuardTable, renderNftTable,
  replaceGuardScript, replaceScript,
} from './nft-rules.ts';
import type { BridgePolicy, EgressPolicy, GuardElement, PolicyElement } from './nft-rules.ts';
import type { HostResolver } from './host-resolver.ts';
import type { LeaseRecord } from '../store/leases.ts';
import type { BridgeClaims } from './bridge-claims.ts';
import { createAddressProbe } from './address-probe.ts';
import type { AddressProbe, BridgeOccupancy } from './address-probe.ts';

/** The subset of a pino logger this adapter uses. */
export interface NetworkLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface LinuxNetworkDeps {
  readonly instanceId: string;
  readonly leases: LeaseStore;
  readonly commands?: CommandRunner;
  readonly now?: () => number;
  readonly log?: NetworkLogger;
  /** Root of the sysctl tree (default /proc/sys, which is per network namespace). */
  readonly procSys?: string;
  /** Host-wide bridge claims (the composition root opens them in `runDir`); without them no claim is made. */
  readonly claims?: BridgeClaims;
  /** Checks whether something on the bridge answers for an address; default: neighbour table and ARP/NDP probe. */
  readonly probe?: AddressProbe;
  /** The runner definitions: their `egress` allow-lists become part of their network's table. Default: none. */
  readonly definitions?: readonly EgressDefinition[];
  /** The definition a VM was started from (the VM store knows); without it no VM is under an allow-list. */
  readonly definitionOf?: (vmId: string) => Promise<string | undefined>;
  /** Resolves the host names of allow-lists; default: none resolve. */
  readonly resolver?: HostResolver;
}

/** What the network needs of a runner definition. */
export interface EgressDefinition {
  readonly name: string;
  readonly network: string;
  readonly egress?: { readonly cidrs: readonly string[]; readonly hosts: readonly string[] };
}

export interface LinuxHostNetwork extends HostNetwork {
  /**
   * Deletes the nft tables (NAT and policy, and guard) this instance owns
   * for the bridge; the bridge itself stays. Idempotent. `reassert` does it
   * for bridges that left the configuration.
   */
  removeNat(bridge: string): Promise<void>;
  /**
   * Claims the network's bridge host-wide (no-op without `claims`); throws
   * FLINT_ERR_NET_BRIDGE_CLAIMED when another live Flint's addresses could
   * meet ours. ensureNetwork does it too; the composition root calls it at
   * start so that a clash stops Flint before it does anything.
   */
  claim(net: NetworkConfig): void;
  /**
   * One pass of the `network-policy` loop: re-resolves the allow-lists'
   * host names, then for each network does what ensureNetwork does (a table
   * someone flushed comes back, re-filled from the leases) and rewrites the
   * per-VM entries and allow sets in one transaction each. Then it deletes
   * this instance's tables of bridges that are not in `nets` and hold none
   * of its leases (a network dropped from the configuration, its VMs
   * gone). Every network is tried; the first failure is thrown after.
   */
  reassert(nets: readonly NetworkConfig[]): Promise<void>;
}

/** Most addresses one attach skips because something answers for them before it gives up. */
const MAX_ANSWERED = 16;

interface IpLink {
  ifname: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/** RFC 1123 label: what the kernel's `ip=` parameter and every resolver accept as a hostname. */
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * What Linux accepts as an interface name, minus everything that could be
 * special in an `ip -batch` line or an nft string (whitespace, quotes, …).
 */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function pools(net: NetworkConfig): { v4: AddressPool; v6: AddressPool | undefined } {
  if (!IFNAME.test(net.name)) {
    throw new FlintError('FLINT_ERR_NET_BRIDGE_MISCONFIGURED', `network ${JSON.stringify(net.name)}: not a usable bridge name`, {
      hint: 'Use 1 to 15 characters out of letters, digits, "_", "." and "-" for the bridge name.',
    });
  }
  const restrict = (pool: AddressPool, family: IpFamily, range: { first: string; last: string } | undefined): AddressPool => {
    if (range === undefined) return pool;
    const first = parseAddress(range.first);
    const last = parseAddress(range.last);
    if (first === undefined || last === undefined) {
      throw new FlintError('FLINT_ERR_NET_BAD_SUBNET', `network ${net.name}: range ${range.first}-${range.last} is not a range of addresses`, { details: { network: net.name } });
    }
    return restrictPool(pool, { family: first.family, first: first.value, last: last.value }, net.name);
  };
  const v4 = restrict(addressPool(net.v4.address, net.v4.prefixLength, 4, net.name), 4, net.range);
  const v6 = net.v6 === undefined ? undefined : restrict(addressPool(net.v6.address, net.v6.prefixLength, 6, net.name), 6, net.range6);
  return { v4, v6 };
}

function commandFailed(err: unknown, what: string): FlintError {
  if (isFlintError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FlintError('FLINT_ERR_NET_COMMAND_FAILED', `${what}: ${message}`, { cause: err });
}

function isNoSuchDevice(err: unknown): boolean {
  return err instanceof CommandError && /does not exist|Cannot find device|No such device/i.test(err.stderr);
}

function isNoSuchTable(err: unknown): boolean {
  return err instanceof CommandError && /No such file or directory/.test(err.stderr);
}

/** The guard-set entries of the VMs holding `leases` on `bridge` (grouped per VM; a VM without its IPv4 lease has none). */
function guardElements(leases: readonly LeaseRecord[], bridge: string): GuardElement[] {
  const byVm = new Map<string, { ipv4?: string; ipv6?: string }>();
  for (const l of leases) {
    if (l.network !== bridge) continue;
    const e = byVm.get(l.vmId) ?? {};
    if (l.family === 4) e.ipv4 = l.address;
    else e.ipv6 = l.address;
    byVm.set(l.vmId, e);
  }
  const out: GuardElement[] = [];
  for (const [vmId, e] of byVm) {
    if (e.ipv4 === undefined) continue;
    out.push({ tap: tapName(vmId), mac: macFromIpv4(e.ipv4), ipv4: e.ipv4, ...(e.ipv6 === undefined ? {} : { ipv6: e.ipv6 }) });
  }
  return out;
}

export function createLinuxNetwork(deps: LinuxNetworkDeps): LinuxHostNetwork {
  const { instanceId, leases } = deps;
  if (!isInstanceId(instanceId)) throw new RangeError(`bad instance id: ${instanceId}`);
  const commands = deps.commands ?? systemCommandRunner();
  const now = deps.now ?? Date.now;
  const procSys = deps.procSys ?? '/proc/sys';
  const ip = (args: readonly string[], input?: string) => commands.run('ip', args, input === undefined ? {} : { input });
  const probe = deps.probe ?? createAddressProbe({ commands });

  function claim(net: NetworkConfig): void {
    if (deps.claims === undefined) return;
    const { v4, v6 } = pools(net);
    const stale = deps.claims.claim({ bridge: net.name, v4: poolSpan(v4), ...(v6 === undefined ? {} : { v6: poolSpan(v6) }), now: now() });
    for (const c of stale) {
      deps.log?.warn({ network: net.name, instance: c.instanceId, owner: c.owner, stateDir: c.stateDir }, 'removed the bridge claim of a Flint that is gone');
    }
  }

  /**
   * Leases the VM's addresses, skipping any that something on the bridge
   * answers for. The lease comes first (so no other attach can take the
   * address while it is probed); an address found in use is given back and
   * avoided in the next round.
   */
  async function leaseUnused(vmId: string, net: NetworkConfig, v4: AddressPool, v6: AddressPool | undefined): Promise<LeaseRecord[]> {
    let occupancy: BridgeOccupancy;
    try {
      occupancy = await probe.occupancy(net.name);
    } catch (err) {
      // No bridge, no neighbours: the tap step below fails and says so, naming the tap.
      if (!isNoSuchDevice(err)) throw commandFailed(err, `could not read the neighbours of ${net.name}`);
      occupancy = { taken: new Set(), doubtful: new Set(), foreignPorts: [] };
    }
    const avoid = new Set(occupancy.taken);
    for (let round = 0; ; round++) {
      const got = leases.acquireAll({ network: net.name, pools: v6 === undefined ? [v4] : [v4, v6], instanceId, vmId, now: now(), avoid });
      let answered: Array<{ address: string; by: string }>;
      try {
        answered = (await Promise.all(got.map(async (l) => {
          // A taken address comes back only as the lease this VM already
          // held (a retried attach): its own permanent entry, not a stranger.
          if (occupancy.taken.has(l.address)) return [];
          // Without foreign ports, only an old neighbour entry needs a look (see address-probe.ts).
          if (occupancy.foreignPorts.length === 0 && !occupancy.doubtful.has(l.address)) return [];
          const by = await probe.answerer(net.name, l.address);
          return by === undefined ? [] : [{ address: l.address, by }];
        }))).flat();
      } catch (err) {
        leases.release(vmId);
        throw commandFailed(err, `could not check whether an address on ${net.name} is in use`);
      }
      if (answered.length === 0) return got;
      leases.release(vmId);
      for (const a of answered) {
        avoid.add(a.address);
        deps.log?.warn({ network: net.name, address: a.address, answeredBy: a.by, ports: occupancy.foreignPorts },
          'skipped an address that a device Flint did not start answers for on the bridge');
      }
      if (round + 1 >= MAX_ANSWERED) {
        throw new FlintError('FLINT_ERR_NET_POOL_EXHAUSTED', `network ${net.name}: ${avoid.size - occupancy.taken.size} addresses in a row are answered for by devices Flint did not start (ports ${occupancy.foreignPorts.join(', ') || 'none'})`, {
          details: { network: net.name, answered: [...avoid].filter((a) => !occupancy.taken.has(a)) },
        });
      }
    }
  }

  async function showLink(name: string, withAddresses: boolean): Promise<IpLink | undefined> {
    try {
      const { stdout } = await ip(withAddresses ? ['-j', '-d', 'addr', 'show', 'dev', name] : ['-j', '-d', 'link', 'show', 'dev', name]);
      // `ip -j` prints an array of link objects; the fields used are checked where used.
      const parsed = JSON.parse(stdout) as IpLink[];
      return parsed[0];
    } catch (err) {
      if (isNoSuchDevice(err)) return undefined;
      throw commandFailed(err, `could not inspect ${name}`);
    }
  }

  async function sysctl(path: string, value: string): Promise<boolean> {
    const file = `${procSys}/${path}`;
    const current = (await readFile(file, 'utf8')).trim();
    if (current === value) return false;
    await writeFile(file, value);
    return true;
  }

  async function enableForwarding(hasV6: boolean): Promise<void> {
    // IPv4 forwarding is decided per input interface, and the replies to
    // the guests come in on the uplink: the global switch is the one that
    // works (as for every container runtime).
    if (await sysctl('net/ipv4/ip_forward', '1')) deps.log?.info({}, 'enabled IPv4 forwarding (net.ipv4.ip_forward=1)');
    if (!hasV6) return;
    if ((await readFile(`${procSys}/net/ipv6/conf/all/forwarding`, 'utf8')).trim() === '1') return;
    // Turning IPv6 forwarding on makes interfaces with accept_ra=1 ignore
    // router advertisements — a host that configures its uplink by SLAAC
    // would lose its default route. accept_ra=2 keeps them accepted.
    for (const dev of await readdir(`${procSys}/net/ipv6/conf`)) {
      if (dev === 'all' || dev === 'default' || dev === 'lo') continue;
      try {
        if ((await readFile(`${procSys}/net/ipv6/conf/${dev}/accept_ra`, 'utf8')).trim() !== '1') continue;
        await sysctl(`net/ipv6/conf/${dev}/accept_ra`, '2');
        deps.log?.info({ dev }, 'kept router advertisements accepted on an interface before enabling IPv6 forwarding (accept_ra=2)');
      } catch {
        // The interface went away meanwhile: nothing to keep.
      }
    }
    await sysctl('net/ipv6/conf/all/forwarding', '1');
    deps.log?.info({}, 'enabled IPv6 forwarding (net.ipv6.conf.all.forwarding=1)');
  }

  /** Egress allow-lists of the definitions on `bridge`, in name order (the index names their chain and sets). */
  function egressOf(bridge: string): Array<EgressPolicy & { readonly name: string }> {
    return (deps.definitions ?? [])
      .filter((d) => d.network === bridge && d.egress !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((d) => ({ name: d.name, definition: d.name, cidrs: d.egress?.cidrs ?? [], hosts: d.egress?.hosts ?? [] }));
  }

  function bridgePolicy(net: NetworkConfig): BridgePolicy {
    return {
      create: net.create,
      gateway4: net.v4.address,
      ...(net.v6 === undefined ? {} : { gateway6: net.v6.address }),
      hostDns: net.hostDns === true,
      ...(net.hostPorts === undefined ? {} : { hostPorts: net.hostPorts }),
      dns: net.dns,
      egress: egressOf(net.name),
    };
  }

  /** Addresses each host name resolved to last; a failed lookup keeps the previous answer. */
  const resolvedHosts = new Map<string, readonly string[]>();
  /** Names looked up at least once, answered or not: a name that does not resolve is asked once a pass, not once a step. */
  const lookedUp = new Set<string>();

  async function resolveHosts(names: readonly string[]): Promise<void> {
    const resolver = deps.resolver;
    if (resolver === undefined) return;
    await Promise.all([...new Set(names)].map(async (name) => {
      lookedUp.add(name);
      try {
        const addrs = (await resolver.lookup(name)).map((a) => canonicalAddress(a)).filter((a): a is string => a !== undefined);
        resolvedHosts.set(name, [...new Set(addrs)].sort());
      } catch (err) {
        deps.log?.warn({ host: name, err: err instanceof Error ? err.message : String(err), kept: resolvedHosts.get(name) ?? [] },
          'could not resolve a host name of an egress allow-list; its previous addresses stay allowed');
      }
    }));
  }

  const hostsOf = (egress: readonly EgressPolicy[]): string[] => egress.flatMap((e) => e.hosts);
  const resolvedOf = (egress: readonly EgressPolicy[]): string[][] => egress.map((e) => e.hosts.flatMap((h) => resolvedHosts.get(h) ?? []));

  /** The policy entries of the VMs holding `vmLeases` on `bridge`: each guest's MAC, and its definition's allow-list. */
  async function policyElements(vmLeases: readonly LeaseRecord[], bridge: string, egress: ReadonlyArray<{ readonly name: string }>): Promise<PolicyElement[]> {
    return Promise.all(guardElements(vmLeases, bridge).map(async (g) => {
      const vm = vmIdFromTap(g.tap, instanceId);
      const definition = vm === undefined || deps.definitionOf === undefined ? undefined : await deps.definitionOf(vm);
      const index = egress.findIndex((e) => e.name === definition);
      return { mac: g.mac, ipv4: g.ipv4, ...(g.ipv6 === undefined ? {} : { ipv6: g.ipv6 }), ...(index === -1 ? {} : { egress: index }) };
    }));
  }

  /** Bridges whose policy table this process has checked (attach checks once, as for the guard). */
  const policed = new Set<string>();

  /**
   * Installs the bridge's inet table when its fingerprint differs (replaced
   * with every live VM's entries and the allow sets in the same
   * transaction). With `refresh`, an unchanged table gets its per-VM entries
   * re-added and its allow sets rewritten, also in one transaction.
   */
  async function ensurePolicy(net: NetworkConfig, refresh: boolean): Promise<void> {
    const { v4, v6 } = pools(net);
    const policy = bridgePolicy(net);
    const egress = egressOf(net.name);
    // Host names never looked up yet (first start, `flint run`): before the first guest needs them.
    const unresolved = hostsOf(egress).filter((h) => !lookedUp.has(h));
    if (unresolved.length > 0) await resolveHosts(unresolved);
    const table = renderNftTable(instanceId, net.name, v4, v6, policy);
    let listing = '';
    try {
      listing = (await commands.run('nft', ['list', 'table', 'inet', table.name])).stdout;
    } catch (err) {
      if (!isNoSuchTable(err)) throw commandFailed(err, `could not read nftables table ${table.name}`);
    }
    const replace = fingerprintOf(listing) !== table.fingerprint;
    if (replace || refresh) {
      const elements = await policyElements(leases.ofInstance(instanceId), net.name, egress);
      const script = [
        replace ? replaceScript(instanceId, net.name, table) : '',
        policyElementsScript('add', table.name, egress.length, elements),
        egressSetsScript(table.name, egress, resolvedOf(egress)),
      ].join('');
      try {
        if (script !== '') await commands.run('nft', ['-f', '-'], { input: script });
      } catch (err) {
        throw commandFailed(err, `could not install nftables table ${table.name}`);
      }
      if (replace) deps.log?.info({ network: net.name, table: table.name }, net.create ? 'installed NAT and guest policy rules' : 'installed guest policy rules');
    }
    policed.add(net.name);
  }

  /** Bridges whose guard table this process has checked (attach checks once, for callers that skip ensureNetwork). */
  const guarded = new Set<string>();

  async function ensureGuard(bridge: string): Promise<void> {
    const table = renderGuardTable(instanceId, bridge);
    let listing = '';
    try {
      listing = (await commands.run('nft', ['list', 'table', 'bridge', table.name])).stdout;
    } catch (err) {
      if (!isNoSuchTable(err)) throw commandFailed(err, `could not read nftables table ${table.name}`);
    }
    if (fingerprintOf(listing) !== table.fingerprint) {
      // Re-filled from the leases in the same transaction: live VMs stay allowed throughout.
      const elements = guardElements(leases.ofInstance(instanceId), bridge);
      try {
        await commands.run('nft', ['-f', '-'], { input: replaceGuardScript(instanceId, bridge, table, elements) });
      } catch (err) {
        throw commandFailed(err, `could not install nftables table ${table.name}`);
      }
      deps.log?.info({ network: bridge, table: table.name }, 'installed the address guard of this instance\'s taps');
    }
    guarded.add(bridge);
  }

  /** Removes a VM's guard entries and permanent neighbour entries (best effort: both are harmless leftovers, see below). */
  async function forgetGuest(vmLeases: readonly LeaseRecord[]): Promise<void> {
    const byBridge = new Map<string, LeaseRecord[]>();
    for (const l of vmLeases) byBridge.set(l.network, [...(byBridge.get(l.network) ?? []), l]);
    await Promise.all([...byBridge].map(async ([bridge, ls]) => {
      const script = guardElementsScript('delete', guardTableName(instanceId, bridge), guardElements(ls, bridge));
      const egress = egressOf(bridge);
      // The MAC and addresses name a VM's policy entries: removing them needs no definition.
      const policy = policyElementsScript('delete', nftTableName(instanceId, bridge), egress.length, guardElements(ls, bridge));
      const neigh = ls.map((l) => `neigh del ${l.address} dev ${bridge}`).join('\n');
      // A missing table (never installed, or deleted by hand) holds no entries.
      const nft = (input: string): Promise<unknown> | undefined => (input === '' ? undefined
        : commands.run('nft', ['-f', '-'], { input }).catch((err: unknown) => { if (!isNoSuchTable(err)) throw err; }));
      await Promise.all([
        nft(script),
        nft(policy),
        // A stale permanent entry would still be right: the MAC follows the address.
        ip(['-force', '-batch', '-'], `${neigh}\n`).catch(() => undefined),
      ]);
    }));
  }

  /**
   * Deletes this instance's tables of bridges neither in `nets` nor holding
   * one of its leases. The name decides whose a table is: `flint_<instance>_`
   * (an instance id has no "_", so `flint_ab_…` is never `flint_abc_…`'s);
   * another instance's tables, and anything not Flint's, are never touched.
   * A VM still on a dropped network (adopted, or started by another process
   * sharing the state file) keeps its guard and policy until it is gone.
   */
  async function removeStaleTables(nets: readonly NetworkConfig[]): Promise<void> {
    const keep = new Set<string>();
    for (const bridge of new Set([...nets.map((n) => n.name), ...leases.ofInstance(instanceId).map((l) => l.network)])) {
      keep.add(`inet ${nftTableName(instanceId, bridge)}`);
      keep.add(`bridge ${guardTableName(instanceId, bridge)}`);
    }
    let listing: string;
    try {
      listing = (await commands.run('nft', ['list', 'tables'])).stdout;
    } catch (err) {
      throw commandFailed(err, 'could not list the nftables tables');
    }
    const prefix = `flint_${instanceId}_`;
    const removed: string[] = [];
    for (const line of listing.split('\n')) {
      const m = /^table (inet|bridge) (\S+)$/.exec(line.trim());
      const family = m?.[1];
      const name = m?.[2];
      if (family === undefined || name === undefined || !name.startsWith(prefix) || keep.has(`${family} ${name}`)) continue;
      try {
        await commands.run('nft', ['delete', 'table', family, name]);
        removed.push(`${family} ${name}`);
      } catch (err) {
        if (!isNoSuchTable(err)) throw commandFailed(err, `could not delete nftables table ${name}`);
      }
    }
    if (removed.length > 0) deps.log?.info({ removed }, 'deleted the nftables tables of networks no longer configured');
  }

  function wantedAddresses(net: NetworkConfig, v6: AddressPool | undefined): Array<{ family: 'inet' | 'inet6'; address: string; prefixLength: number }> {
    const out: Array<{ family: 'inet' | 'inet6'; address: string; prefixLength: number }> = [
      { family: 'inet', address: canonicalAddress(net.v4.address) ?? net.v4.address, prefixLength: net.v4.prefixLength },
    ];
    if (net.v6 !== undefined && v6 !== undefined) out.push({ family: 'inet6', address: canonicalAddress(net.v6.address) ?? net.v6.address, prefixLength: net.v6.prefixLength });
    return out;
  }

  const network: LinuxHostNetwork = {
    claim,

    async ensureNetwork(net) {
      const { v6 } = pools(net);
      // Before anything is created: a Flint whose addresses could meet ours stops here.
      claim(net);
      let link = await showLink(net.name, true);
      if (link === undefined) {
        if (!net.create) {
          const cidr = `${net.v4.address}/${net.v4.prefixLength}`;
          throw new FlintError('FLINT_ERR_NET_BRIDGE_MISSING', `network ${net.name}: there is no bridge named ${net.name} on this host`, {
            details: { network: net.name },
            hint: `Create it (\`ip link add ${net.name} address ${macFromIpv4(net.v4.address)} type bridge && ip addr add ${cidr} dev ${net.name} && ip link set ${net.name} up\`, plus NAT if guests need to get out), or set \`create: true\` on network ${net.name} so that Flint creates the bridge, its address and NAT itself.`,
          });
        }
        try {
          // A fixed MAC: a bridge without one takes the lowest MAC of its
          // ports and changes it when that tap goes, leaving the other
          // guests' ARP entries for the gateway pointing nowhere until they
          // expire (seen as a guest's connection timing out right after
          // another VM ended). The gateway address is never leased, so its
          // MAC cannot collide with a guest's.
          await ip(['link', 'add', 'name', net.name, 'address', macFromIpv4(net.v4.address), 'type', 'bridge']);
        } catch (err) {
          // Another process may have created it a moment ago; the re-read decides.
          if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw commandFailed(err, `could not create bridge ${net.name}`);
        }
        deps.log?.info({ network: net.name }, 'created bridge');
        link = await showLink(net.name, true);
        if (link === undefined) throw new FlintError('FLINT_ERR_NET_COMMAND_FAILED', `bridge ${net.name} vanished right after it was created`);
      }
      const problems: string[] = [];
      if (link.linkinfo?.info_kind !== 'bridge') {
        throw new FlintError('FLINT_ERR_NET_BRIDGE_MISCONFIGURED', `network ${net.name}: ${net.name} is a ${link.linkinfo?.info_kind ?? 'plain'} device, not a bridge`, { details: { network: net.name } });
      }
      const have = new Set((link.addr_info ?? []).map((a) => `${a.family ?? ''} ${canonicalAddress(a.local ?? '') ?? ''}/${a.prefixlen ?? ''}`));
      for (const want of wantedAddresses(net, v6)) {
        if (have.has(`${want.family} ${want.address}/${want.prefixLength}`)) continue;
        if (!net.create) {
          problems.push(`address ${want.address}/${want.prefixLength} is not on it`);
          continue;
        }
        // nodad: the bridge's IPv6 address is usable at once (no 1-2 s of
        // duplicate detection while the first guests already boot).
        const extra = want.family === 'inet6' ? ['nodad'] : [];
        try {
          await ip(['addr', 'replace', `${want.address}/${want.prefixLength}`, 'dev', net.name, ...extra]);
        } catch (err) {
          throw commandFailed(err, `could not add ${want.address}/${want.prefixLength} to ${net.name}`);
        }
      }
      if (!(link.flags ?? []).includes('UP')) {
        if (net.create) {
          try {
            await ip(['link', 'set', 'dev', net.name, 'up']);
          } catch (err) {
            throw commandFailed(err, `could not set ${net.name} up`);
          }
        } else {
          problems.push('it is down');
        }
      }
      if (problems.length > 0) {
        throw new FlintError('FLINT_ERR_NET_BRIDGE_MISCONFIGURED', `network ${net.name}: bridge ${net.name} ${problems.join(', ')}`, { details: { network: net.name } });
      }
      // The guard covers only this instance's taps: installed whether or not Flint owns the bridge.
      await ensureGuard(net.name);
      if (!net.create) {
        // The operator owns forwarding and NAT of a bridge Flint did not create; say when guests will not get out.
        const fwd = (await readFile(`${procSys}/net/ipv4/ip_forward`, 'utf8').catch(() => '')).trim();
        if (fwd === '0') deps.log?.warn({ network: net.name }, 'IPv4 forwarding is off on this host: guests will not reach anything beyond the bridge');
      } else {
        try {
          await enableForwarding(v6 !== undefined);
        } catch (err) {
          throw commandFailed(err, 'could not enable forwarding');
        }
      }
      // The guests' policy holds on every bridge; NAT only on one Flint created.
      await ensurePolicy(net, false);
    },

    async reassert(nets) {
      await resolveHosts(nets.flatMap((n) => hostsOf(egressOf(n.name))));
      let first: unknown;
      for (const net of nets) {
        try {
          await network.ensureNetwork(net);
          await ensurePolicy(net, true);
          // Guard entries someone deleted come back too (adding present ones changes nothing).
          const script = guardElementsScript('add', guardTableName(instanceId, net.name), guardElements(leases.ofInstance(instanceId), net.name));
          if (script !== '') await commands.run('nft', ['-f', '-'], { input: script }).catch((err: unknown) => { throw commandFailed(err, `could not re-add the address guard entries on ${net.name}`); });
        } catch (err) {
          deps.log?.warn({ network: net.name, err: err instanceof Error ? err.message : String(err) }, 'could not re-assert the network policy');
          first ??= err;
        }
      }
      try {
        await removeStaleTables(nets);
      } catch (err) {
        deps.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not delete the tables of networks no longer configured');
        first ??= err;
      }
      if (first !== undefined) throw first;
    },

    async attach(vmId, hostname, net, owner) {
      const parsed = parseVmId(vmId);
      if (parsed === undefined || parsed.instanceId !== instanceId) throw new RangeError(`VM id ${vmId} does not belong to instance ${instanceId}`);
      if (!HOSTNAME.test(hostname)) throw new RangeError(`not a usable guest hostname: ${JSON.stringify(hostname)}`);
      const tap = tapName(vmId);
      const { v4, v6 } = pools(net);
      // Lease first (see the ordering invariants above); both families in one transaction.
      const [lease4, lease6] = await leaseUnused(vmId, net, v4, v6);
      if (lease4 === undefined) throw new FlintError('FLINT_ERR_INTERNAL', `no IPv4 lease came back for ${vmId}`);
      let guest: GuestNetwork;
      try {
        guest = {
          hostname,
          ipv4: { address: lease4.address, prefixLength: net.v4.prefixLength, gateway: canonicalAddress(net.v4.address) ?? net.v4.address },
          ...(lease6 !== undefined && net.v6 !== undefined
            ? { ipv6: { address: lease6.address, prefixLength: net.v6.prefixLength, gateway: canonicalAddress(net.v6.address) ?? net.v6.address } }
            : {}),
          dns: [...net.dns],
        };
        if (!guarded.has(net.name)) await ensureGuard(net.name);
        if (!policed.has(net.name)) await ensurePolicy(net, false);
        const element = { tap, mac: macFromIpv4(lease4.address), ipv4: lease4.address, ...(lease6 === undefined ? {} : { ipv6: lease6.address }) };
        const egress = egressOf(net.name);
        const [policyElement] = await policyElements(leases.forVm(vmId), net.name, egress);
        // Guard and policy entries in one nft transaction.
        const entries = guardElementsScript('add', guardTableName(instanceId, net.name), [element])
          + policyElementsScript('add', nftTableName(instanceId, net.name), egress.length, policyElement === undefined ? [] : [policyElement]);
        // Entries and tap are made at the same time (two processes, half the
        // wait). No frame can slip through in between: only the VMM writes
        // frames into the tap, and it starts after attach returns.
        const addGuard = commands.run('nft', ['-f', '-'], { input: entries })
          .catch(async () => {
            // A table someone removed since it was checked (`nft flush ruleset`): put both back — re-filled
            // from the leases, this VM's included — and add once more.
            guarded.delete(net.name);
            policed.delete(net.name);
            await ensureGuard(net.name);
            await ensurePolicy(net, false);
            await commands.run('nft', ['-f', '-'], { input: entries });
          })
          .catch((err: unknown) => { throw commandFailed(err, `could not add the address guard and policy entries of ${tap}`); });
        const ownerArgs = owner === undefined ? '' : ` user ${owner.uid} group ${owner.gid}`;
        // One `ip` process for the whole tap setup. The port is isolated:
        // guests on one bridge reach the bridge (their gateway), never each
        // other. addrgenmode none: the host side needs no IPv6 link-local.
        const batch = [
          `tuntap add dev ${tap} mode tap${ownerArgs}`,
          `link set dev ${tap} addrgenmode none`,
          `link set dev ${tap} master ${net.name}`,
          `link set dev ${tap} type bridge_slave isolated on`,
          `link set dev ${tap} up`,
          // Permanent neighbour entries: no ARP/NDP round trip before the
          // first packet, and no forged advertisement can move them.
          `neigh replace ${lease4.address} lladdr ${element.mac} dev ${net.name} nud permanent`,
          ...(lease6 === undefined ? [] : [`neigh replace ${lease6.address} lladdr ${element.mac} dev ${net.name} nud permanent`]),
          '',
        ].join('\n');
        const makeTap = (async () => {
          try {
            await ip(['-batch', '-'], batch);
          } catch (err) {
            // A tap of this name left by a crash: remove it and try once more.
            await ip(['link', 'del', 'dev', tap]).catch(() => undefined);
            try {
              await ip(['-batch', '-'], batch);
            } catch {
              throw commandFailed(err, `could not create tap ${tap} on ${net.name}`);
            }
          }
        })();
        // allSettled: the rollback below must not race a step still running.
        for (const r of await Promise.allSettled([addGuard, makeTap])) if (r.status === 'rejected') throw r.reason;
      } catch (err) {
        await ip(['link', 'del', 'dev', tap]).catch(() => undefined);
        await forgetGuest(leases.forVm(vmId)).catch(() => undefined);
        leases.release(vmId);
        throw err;
      }
      deps.log?.info({ vmId, tap, network: net.name, ipv4: guest.ipv4.address, ipv6: guest.ipv6?.address }, 'attached VM to network');
      return { vmId, tap, mac: macFromIpv4(guest.ipv4.address), guest };
    },

    async detach(vmId) {
      // Never another instance's tap or leases, whatever id the caller passes.
      if (parseVmId(vmId)?.instanceId !== instanceId) throw new RangeError(`VM id ${vmId} does not belong to instance ${instanceId}`);
      const tap = tapName(vmId);
      const [delTap] = await Promise.allSettled([
        ip(['link', 'del', 'dev', tap]).catch((err: unknown) => {
          if (!isNoSuchDevice(err)) throw commandFailed(err, `could not remove tap ${tap}`);
        }),
        forgetGuest(leases.forVm(vmId)).catch((err: unknown) => {
          deps.log?.warn({ vmId, err: err instanceof Error ? err.message : String(err) }, 'could not remove the address guard entries of a VM');
        }),
      ]);
      // Only after the tap is gone may the address go back to the pool.
      if (delTap.status === 'rejected') throw delTap.reason;
      leases.release(vmId);
    },

    async sweep(live) {
      const removed: string[] = [];
      let links: IpLink[];
      try {
        // The fields used are checked below; `ip -j` prints an array of link objects.
        links = JSON.parse((await ip(['-j', 'link', 'show'])).stdout) as IpLink[];
      } catch (err) {
        throw commandFailed(err, 'could not list network devices');
      }
      const prefix = tapPrefix(instanceId);
      for (const link of links) {
        const name = link.ifname;
        if (typeof name !== 'string' || !name.startsWith(prefix)) continue;
        const vmId = vmIdFromTap(name, instanceId);
        if (vmId !== undefined && live.has(vmId)) continue;
        try {
          await ip(['link', 'del', 'dev', name]);
          removed.push(`tap ${name}`);
        } catch (err) {
          if (!isNoSuchDevice(err)) throw commandFailed(err, `could not remove tap ${name}`);
        }
      }
      const dead = leases.ofInstance(instanceId).filter((l) => !live.has(l.vmId));
      await forgetGuest(dead).catch((err: unknown) => {
        deps.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not remove the address guard entries of swept VMs');
      });
      for (const vmId of new Set(dead.map((l) => l.vmId))) {
        for (const r of leases.release(vmId)) removed.push(`lease ${r.vmId} ${r.network} ${r.address}`);
      }
      if (removed.length > 0) deps.log?.info({ removed }, 'swept network leftovers');
      return removed;
    },

    async removeNat(bridge) {
      for (const [family, name] of [['inet', nftTableName(instanceId, bridge)], ['bridge', guardTableName(instanceId, bridge)]] as const) {
        try {
          await commands.run('nft', ['delete', 'table', family, name]);
        } catch (err) {
          if (!isNoSuchTable(err)) throw commandFailed(err, `could not delete nftables table ${name}`);
        }
      }
      guarded.delete(bridge);
      policed.delete(bridge);
    },
  };
  return network;
}
