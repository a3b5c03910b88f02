/**
 * Guest MAC addresses, derived from the guest's IPv4 address:
 * `06:00:<a>:<b>:<c>:<d>` for a.b.c.d (the convention Firecracker's own
 * guest images use to recover their address from the MAC).
 *
 * Why from the address and not from the VM id: the leases guarantee that no
 * two live guests on a bridge share an address, so the MACs are unique by
 * construction (a hash of the id would only be unique with high
 * probability), and when an address is reused later the host's neighbour
 * entry for it still names the right MAC — no stale ARP delaying the next
 * VM's first packets.
 *
 * 0x06 = 0000 0110: the locally-administered bit (0x02) is set, the
 * multicast bit (0x01) is clear — a valid unicast address that no vendor
 * will ever burn into a real NIC.
 */
import { parseAddress } from './ipam.ts';

export function macFromIpv4(address: string): string {
  const a = parseAddress(address);
  if (a === undefined || a.family !== 4) throw new RangeError(`not an IPv4 address: ${address}`);
  const bytes = [0x06, 0x00, ...[24n, 16n, 8n, 0n].map((s) => Number((a.value >> s) & 0xffn))];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** True for a unicast, locally-administered MAC in canonical lower-case colon form. */
export function isLocalUnicastMac(mac: string): boolean {
  const m = /^([0-9a-f]{2})(:[0-9a-f]{2}){5}$/.exec(mac);
  if (!m || m[1] === undefined) return false;
  const first = parseInt(m[1], 16);
  return (first & 0x01) === 0 && (first & 0x02) === 0x02;
}
