/**
 * The host side of the guest contract (docs/guest-contract.md): how a VM
 * learns its network settings (kernel command line) and what it prints on
 * the serial console. Pure functions; the guest side lives in guest/.
 *
 * Kernel command line — IPv4 uses the kernel's own `ip=` syntax, so that a
 * kernel built with CONFIG_IP_PNP configures itself and every other image
 * can parse one well-known format:
 *   ip=<client>::<gateway>:<netmask>:<hostname>:eth0:off[:<dns0>[:<dns1>]]
 * IPv6 (optional), DNS beyond two servers, and Flint's own settings use
 * `flint.*` parameters:
 *   flint.ip6=<address>/<prefix>  flint.gw6=<address>  flint.dns=<a>,<b>,…
 *
 * Console markers — one line each, greppable, anchored at line start:
 *   FLINT-MARKER booted
 *   FLINT-MARKER runner-started
 *   FLINT-MARKER runner-exited code=<n>
 */

export interface GuestNetwork {
  readonly hostname: string;
  readonly ipv4: { readonly address: string; readonly prefixLength: number; readonly gateway: string };
  readonly ipv6?: { readonly address: string; readonly prefixLength: number; readonly gateway: string };
  readonly dns: readonly string[];
}

export function prefixToNetmask(prefixLength: number): string {
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
    throw new RangeError(`IPv4 prefix length out of range: ${prefixLength}`);
  }
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.');
}

/** The network part of the kernel command line for one VM. */
export function networkKernelArgs(net: GuestNetwork): string {
  const { ipv4 } = net;
  const dns = net.dns.slice(0, 2);
  const ip = ['ip=' + ipv4.address, '', ipv4.gateway, prefixToNetmask(ipv4.prefixLength), net.hostname, 'eth0', 'off', ...dns].join(':');
  const args = [ip];
  if (net.dns.length > 0) args.push(`flint.dns=${net.dns.join(',')}`);
  if (net.ipv6) args.push(`flint.ip6=${net.ipv6.address}/${net.ipv6.prefixLength}`, `flint.gw6=${net.ipv6.gateway}`);
  return args.join(' ');
}

export const MARKER_PREFIX = 'FLINT-MARKER ';

export type ConsoleMarker =
  | { readonly kind: 'booted' }
  | { readonly kind: 'runner-started' }
  | { readonly kind: 'runner-exited'; readonly code: number };

/** Parses one console line; undefined when it is not a marker. Tolerates a trailing CR. */
export function parseMarker(line: string): ConsoleMarker | undefined {
  const idx = line.indexOf(MARKER_PREFIX);
  if (idx === -1) return undefined;
  const rest = line.slice(idx + MARKER_PREFIX.length).trim();
  if (rest === 'booted') return { kind: 'booted' };
  if (rest === 'runner-started') return { kind: 'runner-started' };
  const m = /^runner-exited code=(-?\d+)$/.exec(rest);
  if (m) return { kind: 'runner-exited', code: Number(m[1]) };
  return undefined;
}

/**
 * The config drive (vdc): a POSIX ustar archive written directly onto the
 * block device (no filesystem: the guest runs `tar -x -f /dev/vdc`), padded
 * to whole 512-byte sectors. It holds `flint/env`, shell `KEY='value'` lines
 * with the keys below, readable only by the VM's uid on the host.
 */
export const CONFIG_DRIVE_KEYS = [
  'FLINT_RUNNER_NAME', // name the runner registered under
  'FLINT_JITCONFIG', // the encoded JIT config (secret)
  'FLINT_JOB_TIMEOUT', // seconds; the guest powers off after it
  'FLINT_RUNNER_COMMAND', // optional: command the agent runs instead of the image's runner (test images)
  'FLINT_GITHUB_URL', // optional: base URL the runner talks to (the simulator in tests)
] as const;
export type ConfigDriveKey = (typeof CONFIG_DRIVE_KEYS)[number];
