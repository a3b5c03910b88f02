/**
 * The nftables table Flint owns for one bridge network: NAT for the guests'
 * subnet and the forward rules that keep guests apart and unreachable from
 * outside. Rendering is pure; linux-network.ts applies it.
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
import { formatAddress } from '../../core/ipam.ts';
import type { AddressPool } from '../../core/ipam.ts';

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

export function renderNftTable(instanceId: string, bridge: string, v4: AddressPool, v6: AddressPool | undefined): RenderedTable {
  const br = quote(bridge);
  const masquerade = [`    ip saddr ${cidr(v4)} oifname != ${br} masquerade`];
  // A global IPv6 prefix is routed to the host by the operator: NAT would
  // only hide the guests. A unique local prefix cannot leave without it.
  if (v6 !== undefined && isUniqueLocal(v6)) masquerade.push(`    ip6 saddr ${cidr(v6)} oifname != ${br} masquerade`);
  const body = [
    '  chain nat_out {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...masquerade,
    '  }',
    '  chain guard {',
    // Policy accept: this chain only decides traffic of this bridge and must
    // not change the fate of anything else on the host.
    '    type filter hook forward priority filter; policy accept;',
    // Guests are apart on layer 2 (isolated bridge ports); this stops them
    // reaching each other through the host's routing instead.
    `    iifname ${br} oifname ${br} drop`,
    `    iifname ${br} accept`,
    `    oifname ${br} ct state established,related accept`,
    // Nothing outside may open connections to a guest.
    `    oifname ${br} drop`,
    '  }',
  ].join('\n');
  const fingerprint = createHash('sha256').update(`v1\n${body}`).digest('hex').slice(0, 16);
  return { name: nftTableName(instanceId, bridge), fingerprint, body };
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
 * source MAC, IPv4 or IPv6 address (or ARP sender) is not the one leased to
 * that tap. Without it a guest could claim another guest's address (ARP
 * spoofing the host) and receive that guest's traffic. Frames from other
 * ports of the bridge are not looked at.
 *
 * The per-VM facts live in three sets, filled on attach and emptied on
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

function elementLists(elements: readonly GuardElement[]): { macs: string[]; v4: string[]; v6: string[] } {
  const check = (s: string): string => {
    if (!/^[0-9a-f:.]+$/.test(s)) throw new RangeError(`not usable in nftables: ${JSON.stringify(s)}`);
    return s;
  };
  return {
    macs: elements.map((e) => `${quote(e.tap)} . ${check(e.mac)}`),
    v4: elements.map((e) => `${quote(e.tap)} . ${check(e.mac)} . ${check(e.ipv4)}`),
    v6: elements.flatMap((e) => (e.ipv6 === undefined ? [] : [`${quote(e.tap)} . ${check(e.mac)} . ${check(e.ipv6)}`])),
  };
}

export function renderGuardTable(instanceId: string, bridge: string): RenderedTable {
  const taps = quote(`f${instanceId}-*`);
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
    '  chain spoof {',
    '    type filter hook prerouting priority filter; policy accept;',
    `    iifname != ${taps} accept`,
    // Counters: `nft list table bridge …_guard` shows how much a guest tried to forge.
    '    iifname . ether saddr != @macs counter drop',
    '    ether type arp iifname . arp saddr ether . arp saddr ip @guests4 accept',
    // ARP probes (RFC 5227) carry sender 0.0.0.0 and teach the host nothing.
    '    ether type arp arp saddr ip 0.0.0.0 accept',
    '    ether type ip iifname . ether saddr . ip saddr @guests4 accept',
    '    ether type ip6 iifname . ether saddr . ip6 saddr @guests6 accept',
    // Neighbour discovery and duplicate detection use link-local and unspecified
    // sources; the MAC check above still applies, and the host's neighbour
    // entries of guests are permanent (set on attach), so a forged
    // advertisement cannot redirect another guest's address.
    '    ether type ip6 ip6 saddr { ::, fe80::/10 } accept',
    '    counter drop',
    '  }',
  ].join('\n');
  const fingerprint = createHash('sha256').update(`guard-v1\n${body}`).digest('hex').slice(0, 16);
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
    if (l.v6.length > 0) lines.push(`${o} element bridge ${table} guests6 { ${l.v6.join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}
