/**
 * Guest address allocation, pure: parsing and formatting IPv4/IPv6
 * addresses, the pool of a bridge's subnet, and the choice of the next
 * address. The adapter (src/adapters/store/leases.ts) supplies the leased
 * set and the cursor from SQLite and persists the result in one transaction.
 *
 * Invariants of every pool:
 *   - the network address, the IPv4 broadcast address and the gateway (the
 *     bridge's own address) are never handed out;
 *   - on IPv6 the subnet-router anycast address (host part all zeros) and the
 *     reserved subnet anycast addresses (the highest 128 interface ids,
 *     RFC 2526, when the host part has at least 8 bits) are never handed out;
 *   - every address handed out lies inside the subnet.
 *
 * Strategy: "next free after the last one handed out", wrapping at the end
 * of the pool (like a DHCP server's round robin), rather than "lowest free".
 * A just-released address is then not reused until the pool wraps, so
 * state keyed on the previous VM's address — conntrack entries of its NAT
 * flows, remote firewalls, logs — does not carry over to the next job. With
 * no cursor (first allocation, or a cursor outside the pool) the search
 * starts at the lowest address.
 */
import { FlintError } from './errors/index.ts';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface AddressPool {
  readonly family: IpFamily;
  readonly prefixLength: number;
  /** The subnet's network address (host part all zeros). */
  readonly network: bigint;
  /** The bridge's own address; guests use it as their gateway. */
  readonly gateway: bigint;
  /** Lowest and highest candidate addresses (inclusive); the gateway may lie between them and is skipped. */
  readonly first: bigint;
  readonly last: bigint;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };
/** Longest prefixes that still leave the gateway plus at least one guest. */
const MAX_PREFIX: Record<IpFamily, number> = { 4: 30, 6: 126 };

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Decimal only, no leading zeros (an octal-looking "010" is rejected, not guessed at).
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined; // zone ids name a link, not an address in a subnet
  let text = s;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") stands for the last two groups: rewrite it as them.
  const lastColon = text.lastIndexOf(':');
  if (lastColon !== -1 && text.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string | undefined): string[] | undefined => {
    if (h === undefined || h === '') return [];
    const g = h.split(':');
    return g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)) ? g : undefined;
  };
  let head: string[] | undefined;
  let rest: string[] | undefined;
  if (halves.length === 2) {
    head = groupsOf(halves[0]);
    rest = groupsOf(halves[1]);
  } else {
    head = groupsOf(halves[0]);
    rest = [];
  }
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length;
  if (halves.length === 2 ? explicit > 7 : explicit !== 8) return undefined;
  const zeros = 8 - explicit;
  const groups = [...head.map((g) => BigInt(parseInt(g, 16))), ...Array<bigint>(zeros).fill(0n), ...rest.map((g) => BigInt(parseInt(g, 16)))];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses a textual IPv4 or IPv6 address; undefined when it is neither. */
export function parseAddress(s: string): IpAddress | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  if (!s.includes(':')) return undefined;
  const v6 = parseV6(s);
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

/** Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, longest zero run as "::"). */
export function formatAddress(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups (the first one on a tie) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address, or undefined when it does not parse. */
export function canonicalAddress(s: string): string | undefined {
  const a = parseAddress(s);
  return a === undefined ? undefined : formatAddress(a.family, a.value);
}

/**
 * The pool of guest addresses of a bridge with address `gateway`/`prefixLength`.
 * Throws FLINT_ERR_NET_BAD_SUBNET (naming `label`) when the address does not
 * parse, has the other family than `family`, the prefix leaves no guest
 * address, or the gateway is the network or broadcast address.
 */
export function addressPool(gateway: string, prefixLength: number, family: IpFamily, label: string): AddressPool {
  const bad = (why: string): FlintError =>
    new FlintError('FLINT_ERR_NET_BAD_SUBNET', `network ${label}: ${gateway}/${prefixLength} ${why}`, { details: { network: label } });
  const addr = parseAddress(gateway);
  if (addr === undefined || addr.family !== family) throw bad(`is not an IPv${family} address`);
  const bits = BITS[family];
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > bits) throw bad(`has a prefix length outside 1..${bits}`);
  if (prefixLength > MAX_PREFIX[family]) {
    throw bad(`leaves no address for guests (the bridge takes one; use /${MAX_PREFIX[family]} or shorter)`);
  }
  const hostBits = BigInt(bits - prefixLength);
  const size = 1n << hostBits;
  const network = (addr.value >> hostBits) << hostBits;
  let last = network + size - 1n;
  if (family === 4) {
    last -= 1n; // the broadcast address
  } else if (hostBits >= 8n) {
    last -= 128n; // RFC 2526 reserved subnet anycast addresses
  }
  const first = network + 1n;
  if (addr.value < first || addr.value > last) {
    throw bad(family === 4 ? 'is the network or broadcast address; the bridge needs a host address' : 'is a reserved anycast address; the bridge needs a host address');
  }
  return { family, prefixLength, network, gateway: addr.value, first, last };
}

/** How many addresses guests can get from the pool (the gateway excluded). */
export function poolCapacity(pool: AddressPool): bigint {
  const gatewayInside = pool.gateway >= pool.first && pool.gateway <= pool.last;
  return pool.last - pool.first + 1n - (gatewayInside ? 1n : 0n);
}

/** An inclusive span of addresses of one family, e.g. a network's `range: first-last`. */
export interface AddressSpan {
  readonly family: IpFamily;
  readonly first: bigint;
  readonly last: bigint;
}

/**
 * Parses `first-last` (both addresses of one family, first ≤ last); the
 * message says what is wrong otherwise. Whitespace around the dash is allowed.
 */
export function parseAddressSpan(text: string): { ok: true; span: AddressSpan } | { ok: false; message: string } {
  const parts = text.split('-').map((p) => p.trim());
  if (parts.length !== 2) return { ok: false, message: `"${text}" is not a range; write the first and the last address, like "10.0.0.10-10.0.0.99"` };
  const a = parseAddress(parts[0] ?? '');
  const b = parseAddress(parts[1] ?? '');
  if (a === undefined || b === undefined) return { ok: false, message: `"${text}": ${a === undefined ? parts[0] : parts[1]} is not an IP address` };
  if (a.family !== b.family) return { ok: false, message: `"${text}" mixes an IPv${a.family} and an IPv${b.family} address` };
  if (a.value > b.value) return { ok: false, message: `"${text}" ends before it starts; write the lower address first` };
  return { ok: true, span: { family: a.family, first: a.value, last: b.value } };
}

export function formatSpan(span: AddressSpan): string {
  return `${formatAddress(span.family, span.first)}-${formatAddress(span.family, span.last)}`;
}

/** The pool's candidate addresses as a span (what a network hands out; the gateway inside it is skipped). */
export function poolSpan(pool: AddressPool): AddressSpan {
  return { family: pool.family, first: pool.first, last: pool.last };
}

export function spansOverlap(a: AddressSpan, b: AddressSpan): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/**
 * The pool narrowed to `span` (a network's `range`): only addresses inside
 * both are handed out. Throws FLINT_ERR_NET_BAD_SUBNET when the span has the
 * other family, reaches outside the pool (the network, broadcast or
 * reserved addresses, or another subnet), or holds no address but the
 * gateway. The loader reports the same problems with the file's line;
 * this is the guard for configurations built in code.
 */
export function restrictPool(pool: AddressPool, span: AddressSpan, label: string): AddressPool {
  const text = span.family === pool.family ? formatSpan(span) : 'the range';
  const bad = (why: string): FlintError =>
    new FlintError('FLINT_ERR_NET_BAD_SUBNET', `network ${label}: range ${text} ${why}`, { details: { network: label } });
  if (span.family !== pool.family) throw bad(`is not IPv${pool.family}`);
  if (span.first < pool.first || span.last > pool.last) {
    throw bad(`reaches outside the guest addresses ${formatAddress(pool.family, pool.first)}-${formatAddress(pool.family, pool.last)} of the subnet`);
  }
  const narrowed = { ...pool, first: span.first, last: span.last };
  if (poolCapacity(narrowed) < 1n) throw bad('holds no address but the gateway');
  return narrowed;
}

export function inPool(pool: AddressPool, value: bigint): boolean {
  return value >= pool.first && value <= pool.last && value !== pool.gateway;
}

/**
 * The next free address after `after` (wrapping), or undefined when every
 * guest address is in `leased` (which the caller may extend with addresses
 * it must avoid for other reasons, e.g. something else answers for them). Leased values outside the pool are ignored.
 * Bounded: it inspects at most |leased| + 2 candidates, so a /8 or an IPv6
 * /64 costs no more than a /24.
 */
export function pickAddress(pool: AddressPool, leased: ReadonlySet<bigint>, after?: bigint): bigint | undefined {
  const span = pool.last - pool.first + 1n;
  let candidate = after !== undefined && after >= pool.first && after <= pool.last ? after + 1n : pool.first;
  let budget = BigInt(leased.size) + 2n;
  if (budget > span) budget = span;
  for (let i = 0n; i < budget; i++) {
    if (candidate > pool.last) candidate = pool.first;
    if (candidate !== pool.gateway && !leased.has(candidate)) return candidate;
    candidate++;
  }
  return undefined;
}
