/**
 * The nftables table Flint owns for one bridge network: NAT for the guests'
 * subnet (bridges Flint created), and the policy of what a guest may reach —
 * the host only for what it needs, never another guest, never link-local or
 * metadata addresses, and beyond the host only what its definition's egress
 * allow-list names. Rendering is pure; linux-network.ts applies it.
 *
 * One table per (instance, bridge), named `flint_<instance>_<bridge>`, so
 * that two Flint instances, or two networks of one instance, never edit
 * each other's rules, and removing Flint's rules is one `delete table`.
 *
 * The table's comment carries a fingerprint of its content. Applying is
 * "if the fingerprint on the host equals the wanted one, do nothing, else
 * replace the whole table in one atomic nft transaction" — idempotent, and
 * never a moment with half the rules.
 */
import { createHash } from 'node:crypto';
import { formatAddress, parseAddress } from '../../core/ipam.ts';
import type { AddressPool, IpFamily } from '../../core/ipam.ts';

const SAFE = /^[A-Za-z0-9_-]+$/;

/** The name of the table of `bridge` owned by `instanceId`. */
export function nftTableName(instanceId: string, bridge: string): string {
  if (SAFE.test(bridge)) return `flint_${instanceId}_${bridge}`;
  // Linux allows almost any character in an interface name; nft identifiers
  // do not. Replace the rest, and add a hash so that "br.0" and "br:0" differ.
  const hash = createHash('sha256').update(bridge).digest('hex').slice(0, 8);
  return `flint_${instanceId}_${bridge.replace(/[^A-Za-z0-9_-]/g, '_')}_${hash}`;
}

/** True for an IPv6 unique local prefix (fc00::/7): not routable, so it needs NAT to leave the host. */
export function isUniqueLocal(pool: AddressPool): boolean {
  return pool.family === 6 && (pool.network >> 121n) === 0x7en;
}

/** nft string literal: the bridge name is quoted; a quote or backslash in it cannot end the literal. */
function quote(s: string): string {
  if (/["\\\n]/.test(s)) throw new RangeError(`interface name not usable in nftables: ${JSON.stringify(s)}`);
  return `"${s}"`;
}

function cidr(pool: AddressPool): string {
  return `${formatAddress(pool.family, pool.network)}/${pool.prefixLength}`;
}

export interface RenderedTable {
  readonly name: string;
  readonly fingerprint: string;
  /** Body of the `table inet NAME { … }` statement, without the comment. */
  readonly body: string;
}

/**
 * What a guest of one bridge may reach, as the inet table enforces it.
 * Static: it comes from the configuration (the network and the runner
 * definitions on it) and is part of the table's fingerprint. The addresses
 * an allow-list's host names resolve to are not: they are set elements,
 * rewritten by the `network-policy` loop (egressSetsScript).
 */
export interface BridgePolicy {
  /** Flint created the bridge: it owns NAT and inbound filtering, and every port is a guest. */
  readonly create: boolean;
  /** The bridge's own addresses (the guests' gateways). */
  readonly gateway4: string;
  readonly gateway6?: string;
  /** The host serves DNS to guests on the gateway addresses (`networks[].hostDns`). */
  readonly hostDns: boolean;
  /** TCP ports on the gateway addresses the host serves guests on (`networks[].hostPorts`). */
  readonly hostPorts?: readonly number[];
  /** The DNS servers handed to guests: a guest under an allow-list may still ask them (port 53). */
  readonly dns: readonly string[];
  /** The definitions on this bridge that have an egress allow-list, in a stable order (their index names their chain and sets). */
  readonly egress: readonly EgressPolicy[];
}

export interface EgressPolicy {
  /** The runner definition's name (shown in a rule comment). */
  readonly definition: string;
  /** Allowed destinations: addresses and CIDR prefixes, IPv4 or IPv6, canonical. */
  readonly cidrs: readonly string[];
  /** Host names Flint resolves and whose addresses it allows. */
  readonly hosts: readonly string[];
}

/** Link-local (cloud metadata services live at 169.254.169.254) and the IPv6 metadata address: never reachable from a guest. */
const METADATA = ['ip daddr 169.254.0.0/16 drop', 'ip6 daddr fd00:ec2::254 drop'];

function addressOf(s: string, family: IpFamily): string {
  const a = parseAddress(s);
  if (a === undefined || a.family !== family) throw new RangeError(`not an IPv${family} address: ${JSON.stringify(s)}`);
  return formatAddress(a.family, a.value);
}

export function renderNftTable(instanceId: string, bridge: string, v4: AddressPool, v6: AddressPool | undefined, policy: BridgePolicy): RenderedTable {
  const br = quote(bridge);
  // Who is a guest: on a bridge Flint created, every port is one (fail
  // closed); on an operator's bridge (which may hold the host's uplink), only
  // the MACs of this instance's guests — the address guard makes sure a tap
  // sends no other MAC.
  const fromGuest = policy.create ? `iifname ${br}` : `iifname ${br} ether saddr @guests`;
  const gw4 = addressOf(policy.gateway4, 4);
  const gw6 = policy.gateway6 === undefined ? undefined : addressOf(policy.gateway6, 6);
  const ports = [...(policy.hostPorts ?? [])].map((p) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`not a port: ${p}`);
    return p;
  });
  const lines: string[] = [
    // Filled per VM: the MACs of this instance's guests on the bridge, and
    // their addresses.
    '  set guests {',
    '    type ether_addr',
    '  }',
    '  set guest_addrs4 {',
    '    type ipv4_addr',
    '  }',
    '  set guest_addrs6 {',
    '    type ipv6_addr',
    '  }',
  ];
  policy.egress.forEach((_, i) => {
    lines.push(
      `  set members_${i} {`, '    type ether_addr', '  }',
      `  set allow_${i}_4 {`, '    type ipv4_addr', '    flags interval', '  }',
      `  set allow_${i}_6 {`, '    type ipv6_addr', '    flags interval', '  }',
    );
  });
  if (policy.create) {
    const masquerade = [`    ip saddr ${cidr(v4)} oifname != ${br} masquerade`];
    // A global IPv6 prefix is routed to the host by the operator: NAT would
    // only hide the guests. A unique local prefix cannot leave without it.
    if (v6 !== undefined && isUniqueLocal(v6)) masquerade.push(`    ip6 saddr ${cidr(v6)} oifname != ${br} masquerade`);
    lines.push('  chain nat_out {', '    type nat hook postrouting priority srcnat; policy accept;', ...masquerade, '  }');
  }
  const dns4 = policy.dns.filter((d) => parseAddress(d)?.family === 4).map((d) => addressOf(d, 4));
  const dns6 = policy.dns.filter((d) => parseAddress(d)?.family === 6).map((d) => addressOf(d, 6));
  lines.push(
    '  chain host_in {',
    // Policy accept: only traffic from this bridge's guests is decided here.
    '    type filter hook input priority filter; policy accept;',
    `    ${fromGuest} jump guest_in`,
    '  }',
    // A guest reaches the host (any of its addresses, not only the gateway)
    // only for what it needs; never Flint's webhook, status or admin
    // endpoints, SSH or anything else listening there.
    '  chain guest_in {',
    '    ct state established,related accept',
    `    ip daddr ${gw4} icmp type echo-request accept`,
    // Neighbour discovery: the guest must resolve its gateway's MAC over IPv6.
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
    ...(gw6 === undefined ? [] : [`    ip6 daddr ${gw6} icmpv6 type echo-request accept`]),
    ...(policy.hostDns ? [
      `    ip daddr ${gw4} meta l4proto { tcp, udp } th dport 53 accept`,
      ...(gw6 === undefined ? [] : [`    ip6 daddr ${gw6} meta l4proto { tcp, udp } th dport 53 accept`]),
    ] : []),
    ...(ports.length === 0 ? [] : [
      `    ip daddr ${gw4} tcp dport { ${ports.join(', ')} } accept`,
      ...(gw6 === undefined ? [] : [`    ip6 daddr ${gw6} tcp dport { ${ports.join(', ')} } accept`]),
    ]),
    '    counter drop',
    '  }',
    '  chain guard {',
    // Policy accept: this chain only decides traffic of this bridge and must
    // not change the fate of anything else on the host.
    '    type filter hook forward priority filter; policy accept;',
    // Guests are apart on layer 2 (isolated bridge ports); this stops them
    // reaching each other through the host's routing instead (and, with
    // br_netfilter, bridged). On a bridge Flint made every other port is a
    // guest. On an operator's bridge the others are the operator's LAN —
    // its router among them, maybe the host's uplink itself — which guests
    // may reach like anything outside: only this instance's addresses are
    // out of bounds there.
    ...(policy.create ? [`    ${fromGuest} oifname ${br} drop`] : [
      `    ${fromGuest} oifname ${br} ip daddr @guest_addrs4 drop`,
      `    ${fromGuest} oifname ${br} ip6 daddr @guest_addrs6 drop`,
    ]),
    `    ${fromGuest} jump guest_out`,
    ...(policy.create ? [
      `    oifname ${br} ct state established,related accept`,
      // Nothing outside may open connections to a guest.
      `    oifname ${br} drop`,
    ] : []),
    '  }',
    '  chain guest_out {',
    ...METADATA.map((r) => `    ${r}`),
    ...policy.egress.map((_, i) => `    ether saddr @members_${i} jump egress_${i}`),
    '    accept',
    '  }',
  );
  policy.egress.forEach((e, i) => {
    lines.push(
      `  chain egress_${i} {`,
      `    comment ${quote(`egress allow-list of runner definition ${e.definition}`)}`,
      // A connection already open stays open when a host name's addresses move on.
      '    ct state established,related accept',
      `    ip daddr @allow_${i}_4 accept`,
      `    ip6 daddr @allow_${i}_6 accept`,
      // The guest's resolvers stay reachable: a name must resolve before an allowed address is of use.
      ...(dns4.length === 0 ? [] : [`    ip daddr { ${dns4.join(', ')} } meta l4proto { tcp, udp } th dport 53 accept`]),
      ...(dns6.length === 0 ? [] : [`    ip6 daddr { ${dns6.join(', ')} } meta l4proto { tcp, udp } th dport 53 accept`]),
      '    counter drop',
      '  }',
    );
  });
  const body = lines.join('\n');
  const fingerprint = createHash('sha256').update(`v2\n${body}`).digest('hex').slice(0, 16);
  return { name: nftTableName(instanceId, bridge), fingerprint, body };
}

/** One VM's place in the policy table: its MAC and addresses, and the index of its definition's allow-list (none: no allow-list). */
export interface PolicyElement {
  readonly mac: string;
  readonly ipv4: string;
  readonly ipv6?: string;
  readonly egress?: number;
}

function checkMac(mac: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return mac;
}

/**
 * Adds or removes the policy entries of some VMs. Adding also takes the MAC
 * out of every other definition's member set (a stale entry left by an
 * earlier VM with the same address must not decide this one's egress);
 * removal first adds (a no-op for present elements), so that removing absent
 * ones is not an error.
 */
export function policyElementsScript(op: 'add' | 'delete', table: string, egressCount: number, elements: readonly PolicyElement[]): string {
  const lines: string[] = [];
  const both = (set: string, mac: string): void => {
    lines.push(`add element inet ${table} ${set} { ${mac} }`, `delete element inet ${table} ${set} { ${mac} }`);
  };
  for (const e of elements) {
    const mac = checkMac(e.mac);
    const v4 = addressOf(e.ipv4, 4);
    const v6 = e.ipv6 === undefined ? undefined : addressOf(e.ipv6, 6);
    if (op === 'delete') {
      both('guests', mac);
      both('guest_addrs4', v4);
      if (v6 !== undefined) both('guest_addrs6', v6);
      for (let i = 0; i < egressCount; i++) both(`members_${i}`, mac);
      continue;
    }
    lines.push(`add element inet ${table} guests { ${mac} }`, `add element inet ${table} guest_addrs4 { ${v4} }`);
    if (v6 !== undefined) lines.push(`add element inet ${table} guest_addrs6 { ${v6} }`);
    for (let i = 0; i < egressCount; i++) {
      if (i === e.egress) lines.push(`add element inet ${table} members_${i} { ${mac} }`);
      else both(`members_${i}`, mac);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * The destinations of one allow-list as non-overlapping ranges, merged: an
 * interval set refuses overlapping elements, and a resolved address often
 * lies inside a listed prefix.
 */
export function allowRanges(family: IpFamily, targets: readonly string[]): string[] {
  const bits = family === 4 ? 32 : 128;
  const spans: Array<[bigint, bigint]> = [];
  for (const t of targets) {
    const [addr = '', len] = t.split('/');
    const a = parseAddress(addr);
    if (a === undefined) throw new RangeError(`not an address or prefix: ${JSON.stringify(t)}`);
    if (a.family !== family) continue;
    const prefix = len === undefined ? bits : Number(len);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) throw new RangeError(`not an address or prefix: ${JSON.stringify(t)}`);
    const host = (1n << BigInt(bits - prefix)) - 1n;
    spans.push([a.value & ~host, (a.value & ~host) | host]);
  }
  spans.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const merged: Array<[bigint, bigint]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s[0] <= last[1] + 1n) {
      if (s[1] > last[1]) last[1] = s[1];
    } else {
      merged.push([s[0], s[1]]);
    }
  }
  return merged.map(([lo, hi]) => (lo === hi ? formatAddress(family, lo) : `${formatAddress(family, lo)}-${formatAddress(family, hi)}`));
}

/**
 * Rewrites the allow sets of every definition in one transaction (flush and
 * fill): a guest never sees a moment with an empty list. `resolved[i]` holds
 * the addresses the host names of definition `i` resolve to.
 */
export function egressSetsScript(table: string, egress: readonly EgressPolicy[], resolved: readonly (readonly string[])[]): string {
  const lines: string[] = [];
  egress.forEach((e, i) => {
    const targets = [...e.cidrs, ...(resolved[i] ?? [])];
    for (const family of [4, 6] as const) {
      const set = `allow_${i}_${family}`;
      lines.push(`flush set inet ${table} ${set}`);
      const ranges = allowRanges(family, targets);
      if (ranges.length > 0) lines.push(`add element inet ${table} ${set} { ${ranges.join(', ')} }`);
    }
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function tableComment(instanceId: string, bridge: string, fingerprint: string): string {
  return `flint instance=${instanceId} network=${bridge} fp=${fingerprint}`;
}

/** The nft script that replaces the table atomically (one transaction: create-if-missing, delete, create). */
export function replaceScript(instanceId: string, bridge: string, t: RenderedTable): string {
  return [
    `table inet ${t.name}`,
    `delete table inet ${t.name}`,
    `table inet ${t.name} {`,
    `  comment ${quote(tableComment(instanceId, bridge, t.fingerprint))}`,
    t.body,
    '}',
    '',
  ].join('\n');
}

/** The fingerprint in the comment of a table as `nft list table` prints it, if any. */
export function fingerprintOf(listing: string): string | undefined {
  return /comment "flint [^"]*\bfp=([0-9a-f]+)"/.exec(listing)?.[1];
}

/**
 * The anti-spoofing guard of this instance's taps on one bridge: a `bridge`
 * family table that drops every frame from a tap `f<instance>-*` whose
 * source MAC, IPv4 or IPv6 address (or ARP sender, or neighbour
 * advertisement target) is not the one leased to that tap. Without it a
 * guest could claim another guest's address (ARP spoofing the host) and
 * receive that guest's traffic, or, on an operator's bridge, poison the
 * neighbour caches of the machines behind its other ports. Frames from
 * other ports of the bridge are not looked at.
 *
 * It also drops what a guest sends to the metadata addresses: on an
 * operator's bridge a guest can address a frame to the MAC of a router
 * behind another port, and such a frame is bridged, never passing the inet
 * table's forward hook (without br_netfilter).
 *
 * The per-VM facts live in four sets, filled on attach and emptied on
 * detach; a replaced table is re-filled from the leases in the same
 * transaction.
 */
export interface GuardElement {
  readonly tap: string;
  readonly mac: string;
  readonly ipv4: string;
  readonly ipv6?: string;
}

export function guardTableName(instanceId: string, bridge: string): string {
  return `${nftTableName(instanceId, bridge)}_guard`;
}

/**
 * An IPv6 address as the 128-bit integer the `targets6` set holds: its
 * last field is a raw payload (nft 1.0.6 has no `icmpv6 taddr`), so its
 * elements are integers, not addresses.
 */
function ipv6Integer(s: string): string {
  const a = parseAddress(s);
  if (a === undefined || a.family !== 6) throw new RangeError(`not an IPv6 address: ${JSON.stringify(s)}`);
  return `0x${a.value.toString(16).padStart(32, '0')}`;
}

function elementLists(elements: readonly GuardElement[]): { macs: string[]; v4: string[]; v6: string[]; targets6: string[] } {
  const check = (s: string): string => {
    if (!/^[0-9a-f:.]+$/.test(s)) throw new RangeError(`not usable in nftables: ${JSON.stringify(s)}`);
    return s;
  };
  const v6 = elements.flatMap((e) => (e.ipv6 === undefined ? [] : [{ ...e, ipv6: e.ipv6 }]));
  return {
    macs: elements.map((e) => `${quote(e.tap)} . ${check(e.mac)}`),
    v4: elements.map((e) => `${quote(e.tap)} . ${check(e.mac)} . ${check(e.ipv4)}`),
    v6: v6.map((e) => `${quote(e.tap)} . ${check(e.mac)} . ${check(e.ipv6)}`),
    targets6: v6.map((e) => `${quote(e.tap)} . ${check(e.mac)} . ${ipv6Integer(e.ipv6)}`),
  };
}

export function renderGuardTable(instanceId: string, bridge: string): RenderedTable {
  const taps = quote(`f${instanceId}-*`);
  // Only Ethernet/IPv4 ARP, the layout the `arp saddr` matches read (and the only one Linux acts on).
  const arp = 'ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4';
  const body = [
    '  set macs {',
    '    type ifname . ether_addr',
    '  }',
    '  set guests4 {',
    '    type ifname . ether_addr . ipv4_addr',
    '  }',
    '  set guests6 {',
    '    type ifname . ether_addr . ipv6_addr',
    '  }',
    // The same entries as guests6, keyed by a neighbour advertisement's target address.
    '  set targets6 {',
    '    typeof iifname . ether saddr . @th,64,128',
    '  }',
    '  chain spoof {',
    '    type filter hook prerouting priority filter; policy accept;',
    `    iifname != ${taps} accept`,
    // Counters: `nft list table bridge …_guard` shows how much a guest tried to forge.
    '    iifname . ether saddr != @macs counter drop',
    // Also when the frame is bridged to a router behind another port (see above).
    ...METADATA.map((r) => `    ${r.replace(/ drop$/, ' counter drop')}`),
    `    ${arp} iifname . arp saddr ether . arp saddr ip @guests4 accept`,
    // ARP probes (RFC 5227) carry sender 0.0.0.0 and teach the host nothing;
    // their sender MAC is the guest's own (a reply goes there).
    `    ${arp} arp saddr ip 0.0.0.0 iifname . arp saddr ether @macs accept`,
    // A neighbour advertisement may claim only the guest's own address or a
    // link-local one (fe80::/10: the first 10 bits of the target at byte 8).
    // Whatever its source: an advertisement from the guest's own address
    // claiming another one is as false as one from fe80::.
    '    icmpv6 type nd-neighbor-advert @th,64,10 != 0x3fa iifname . ether saddr . @th,64,128 != @targets6 counter drop',
    '    ether type ip iifname . ether saddr . ip saddr @guests4 accept',
    '    ether type ip6 iifname . ether saddr . ip6 saddr @guests6 accept',
    // A guest's link-local address is its own choice (EUI-64 from the MAC,
    // or stable-privacy, as its image likes): from fe80::/10 only neighbour
    // discovery, router solicitation and multicast listener reports pass,
    // never a router advertisement, a redirect or any other traffic. From
    // the unspecified address, only what duplicate address detection sends.
    // The MAC check above still applies, and the host's neighbour entries
    // of guests are permanent (set on attach).
    '    ip6 saddr fe80::/10 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report } accept',
    '    ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept',
    '    counter drop',
    '  }',
  ].join('\n');
  const fingerprint = createHash('sha256').update(`guard-v2\n${body}`).digest('hex').slice(0, 16);
  return { name: guardTableName(instanceId, bridge), fingerprint, body };
}

/** Replaces the guard table atomically, re-filled with `elements`. */
export function replaceGuardScript(instanceId: string, bridge: string, t: RenderedTable, elements: readonly GuardElement[]): string {
  return [
    `table bridge ${t.name}`,
    `delete table bridge ${t.name}`,
    `table bridge ${t.name} {`,
    `  comment ${quote(tableComment(instanceId, bridge, t.fingerprint))}`,
    t.body,
    '}',
    guardElementsScript('add', t.name, elements),
  ].join('\n');
}

/**
 * Adds or removes the elements of some VMs. Removal first adds them (a no-op
 * for present elements) so that removing absent ones is not an error.
 */
export function guardElementsScript(op: 'add' | 'delete', table: string, elements: readonly GuardElement[]): string {
  if (elements.length === 0) return '';
  const l = elementLists(elements);
  const lines: string[] = [];
  const ops = op === 'add' ? ['add'] : ['add', 'delete'];
  for (const o of ops) {
    lines.push(`${o} element bridge ${table} macs { ${l.macs.join(', ')} }`);
    lines.push(`${o} element bridge ${table} guests4 { ${l.v4.join(', ')} }`);
    if (l.v6.length > 0) {
      lines.push(`${o} element bridge ${table} guests6 { ${l.v6.join(', ')} }`);
      lines.push(`${o} element bridge ${table} targets6 { ${l.targets6.join(', ')} }`);
    }
  }
  return `${lines.join('\n')}\n`;
}
