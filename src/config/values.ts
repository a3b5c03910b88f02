/**
 * Parsers for the value syntaxes of the configuration file: durations,
 * sizes, addresses with prefix, listen addresses. Each returns either the
 * value or a message that says what was expected; none throws.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatAddress, parseAddress, parseAddressSpan } from '../core/ipam.ts';
import type { IpFamily } from '../core/ipam.ts';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(message: string): Parsed<T> => ({ ok: false, message });

/**
 * Seconds from a number of seconds or a duration such as "6h", "90m",
 * "1h30m", "2d". Must be positive and whole.
 */
export function parseDuration(input: number | string): Parsed<number> {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input > 0 ? ok(input) : bad('must be a positive whole number of seconds or a duration like "6h" or "1h30m"');
  }
  const s = input.trim();
  if (/^\d+$/.test(s)) return parseDuration(Number(s));
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  if (!m || s === '') return bad(`"${input}" is not a duration; write seconds (3600) or a duration like "6h", "90m", "1h30m", "2d"`);
  const [, d, h, min, sec] = m;
  const total = Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3_600 + Number(min ?? 0) * 60 + Number(sec ?? 0);
  return total > 0 ? ok(total) : bad('must be longer than zero');
}

const SIZE_UNITS: Readonly<Record<string, number>> = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/**
 * A size in `unit`s (bytes for diskSize, MiB for memorySize): a plain number
 * means that unit; a string may carry a binary suffix ("16GiB", "512 MiB").
 * Decimal suffixes (GB) are refused on purpose: 16GB vs 16GiB differ by 7%.
 */
export function parseSize(input: number | string, unitBytes: number, unitName: string): Parsed<number> {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input > 0 ? ok(input) : bad(`must be a positive whole number of ${unitName} or a size like "16GiB"`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  const unit = m?.[2]?.toLowerCase() ?? '';
  if (!m || (unit !== '' && SIZE_UNITS[unit] === undefined)) {
    return bad(`"${input}" is not a size; write a number of ${unitName} or a size with a binary unit: KiB, MiB, GiB, TiB (e.g. "16GiB")`);
  }
  const bytes = Number(m[1]) * (unit === '' ? unitBytes : (SIZE_UNITS[unit] ?? 1));
  const value = bytes / unitBytes;
  if (!Number.isSafeInteger(value) || value <= 0) return bad(`"${input}" is not a positive whole number of ${unitName}`);
  return ok(value);
}

function v4ToInt(address: string): number {
  return address.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * The bridge's own IPv4 address with prefix ("10.0.0.1/24"). The host part
 * must name a usable host: not the network or broadcast address, and the
 * prefix must leave room for at least one guest beside the bridge.
 */
export function parseV4Interface(input: string): Parsed<{ address: string; prefixLength: number }> {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(input.trim());
  if (!m || !isIPv4(m[1] ?? '')) return bad(`"${input}" is not an IPv4 address with prefix; write the bridge's own address like "10.0.0.1/24"`);
  const address = m[1] ?? '';
  const prefixLength = Number(m[2]);
  if (prefixLength < 8 || prefixLength > 30) return bad(`prefix /${prefixLength} is out of range; use /8 to /30 (the subnet must hold the bridge and at least one guest)`);
  const first = Number(address.split('.')[0]);
  if (first === 0 || first === 127 || first >= 224) return bad(`${address} cannot be a bridge address (0/8, loopback, multicast and reserved ranges are not usable)`);
  const ip = v4ToInt(address);
  const size = 2 ** (32 - prefixLength);
  const host = ip % size;
  if (host === 0) return bad(`${address} is the network address of ${intToV4(ip - host)}/${prefixLength}; use a host address such as ${intToV4(ip + 1)}/${prefixLength}`);
  if (host === size - 1) return bad(`${address} is the broadcast address of ${intToV4(ip - host)}/${prefixLength}; use a host address such as ${intToV4(ip - host + 1)}/${prefixLength}`);
  return ok({ address, prefixLength });
}

/** [first, last] addresses of the subnet, as integers. */
export function v4Range(address: string, prefixLength: number): [number, number] {
  const size = 2 ** (32 - prefixLength);
  const start = v4ToInt(address) - (v4ToInt(address) % size);
  return [start, start + size - 1];
}

/** Expands an IPv6 address to a 128-bit integer. Caller has checked isIPv6. */
function v6ToBigInt(address: string): bigint {
  let s = address;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = v4ToInt(v4[1] ?? '0.0.0.0');
    s = s.slice(0, -(v4[1] ?? '').length) + `${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** The bridge's own IPv6 address with prefix ("fd00::1/64"); same rules as v4 where they apply. */
export function parseV6Interface(input: string): Parsed<{ address: string; prefixLength: number }> {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(input.trim());
  if (!m || !isIPv6(m[1] ?? '')) return bad(`"${input}" is not an IPv6 address with prefix; write the bridge's own address like "fd00:f1::1/64"`);
  const address = (m[1] ?? '').toLowerCase();
  const prefixLength = Number(m[2]);
  if (prefixLength < 8 || prefixLength > 126) return bad(`prefix /${prefixLength} is out of range; use /8 to /126 (/64 is usual)`);
  const ip = v6ToBigInt(address);
  const hostBits = BigInt(128 - prefixLength);
  if (ip % (1n << hostBits) === 0n) return bad(`${address} is the subnet's own (router anycast) address; use a host address such as ${address}1/${prefixLength}`);
  if (ip >> 120n === 0xffn) return bad(`${address} is a multicast address`);
  return ok({ address, prefixLength });
}

/** A DNS server address: IPv4 or IPv6, no prefix. */
export function isIpAddress(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/**
 * A listen address "host:port": host may be empty (all interfaces), an IPv4
 * address, a bracketed IPv6 address or a host name. Port 0 asks the system
 * for a free port (tests and the demo).
 */
export function parseListenAddress(input: string): Parsed<{ host: string; port: number }> {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(input.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) return bad(`"${input}" is not a listen address; write "host:port", e.g. "flint.example.com:443" or ":8080"`);
  const host = m[1] ?? '';
  if (host.startsWith('[') && !isIPv6(host.slice(1, -1))) return bad(`"${host}" is not an IPv6 address`);
  return ok({ host, port });
}

/**
 * Whether a host name (as in a listen address or a Host header, without
 * port or brackets) is this machine's loopback: 127.0.0.0/8, ::1, localhost.
 * The empty host of ":9090" means every interface, so it is not.
 */
export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * A default instance id derived from a stable seed (the host name and the
 * state directory, so two Flints on one host with different state differ).
 * FNV-1a 32-bit, reduced to 6 base-36 digits: deterministic, and short
 * enough for tap names (see src/core/ids.ts).
 */
export function deriveInstanceId(seed: string): string {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(seed)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 36 ** 6).toString(36).padStart(6, '0');
}

/**
 * A network's address range, `first-last` (inclusive), of one family:
 * "10.0.0.10-10.0.0.99". Returned in canonical text. Whether it lies in the
 * network's subnet is a cross-check (it needs the `v4`/`v6` key).
 */
export function parseAddressRange(input: string, family: IpFamily): Parsed<{ first: string; last: string }> {
  const r = parseAddressSpan(input);
  const example = family === 4 ? '"10.0.0.10-10.0.0.99"' : '"fd00:f1::100-fd00:f1::1ff"';
  if (!r.ok) return bad(r.message);
  if (r.span.family !== family) return bad(`"${input}" is an IPv${r.span.family} range; this key takes IPv${family} addresses, like ${example}`);
  return ok({ first: formatAddress(family, r.span.first), last: formatAddress(family, r.span.last) });
}

/**
 * One entry of an egress allow-list: an address or a prefix ("140.82.112.0/20",
 * "2606:50c0::/32"; returned canonical, host bits cleared) or a host name
 * ("api.github.com", resolved by Flint).
 */
export function parseEgressTarget(input: string): Parsed<{ kind: 'cidr'; cidr: string } | { kind: 'host'; name: string }> {
  const text = input.trim();
  const [addr = '', len, extra] = text.split('/');
  const a = parseAddress(addr);
  if (a !== undefined) {
    const bits = a.family === 4 ? 32 : 128;
    const prefix = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
    if (extra !== undefined || !(prefix >= 0 && prefix <= bits)) return bad(`"${input}" is not an address or prefix: the prefix length must be 0–${bits}`);
    const host = (1n << BigInt(bits - prefix)) - 1n;
    return ok({ kind: 'cidr', cidr: `${formatAddress(a.family, a.value & ~host)}/${prefix}` });
  }
  const name = text.toLowerCase().replace(/\.$/, '');
  // RFC 1123 names with at least one dot: "localhost"-like single labels are more likely a typo than a registry.
  if (len === undefined && name.length <= 253 && /^(?=.*\.)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name) && !/^[\d.]+$/.test(name)) {
    return ok({ kind: 'host', name });
  }
  return bad(`"${input}" is neither an address, a prefix like "140.82.112.0/20", nor a host name like "api.github.com"`);
}
