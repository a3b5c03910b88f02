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
