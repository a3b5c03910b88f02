/**
 * Small python3 programs that play a guest on a tap device (open it with
 * TUNSETIFF, write and read raw Ethernet frames), for network tests that
 * need guest traffic without booting a VM. Run them with
 * `python3 -c PROGRAM ARGS…`, inside the test's private network namespace.
 */

/**
 * Plays the guest on a tap: opens it (TUNSETIFF), sends one ICMP (or
 * ICMPv6) echo request to the gateway with the given source MAC/address,
 * and prints "reply" when the host answers within a second, else "none".
 */
export const GUEST_PING = String.raw`
import fcntl, os, select, socket, struct, sys, time
tap, src_mac, src_ip, dst_mac, dst_ip = sys.argv[1:6]
ident = int(sys.argv[6]) if len(sys.argv) > 6 else 0x4242
v6 = ':' in src_ip
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', tap.encode(), 0x0002 | 0x1000))
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
mac = lambda m: bytes(int(x, 16) for x in m.split(':'))
if v6:
    src, dst = socket.inet_pton(socket.AF_INET6, src_ip), socket.inet_pton(socket.AF_INET6, dst_ip)
    icmp = struct.pack('!BBHHH', 128, 0, 0, ident, 1) + b'flint'
    pseudo = src + dst + struct.pack('!I', len(icmp)) + b'\0\0\0' + bytes([58])
    icmp = icmp[:2] + struct.pack('!H', csum(pseudo + icmp)) + icmp[4:]
    frame = mac(dst_mac) + mac(src_mac) + b'\x86\xdd' + struct.pack('!IHBB', 0x60000000, len(icmp), 58, 64) + src + dst + icmp
    is_reply = lambda f: f[12:14] == b'\x86\xdd' and f[20] == 58 and f[54] == 129 and f[58:60] == struct.pack('!H', ident)
else:
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    icmp = struct.pack('!BBHHH', 8, 0, 0, ident, 1) + b'flint'
    icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, src, dst)
    hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
    frame = mac(dst_mac) + mac(src_mac) + b'\x08\x00' + hdr + icmp
    is_reply = lambda f: f[12:14] == b'\x08\x00' and f[23] == 1 and f[34] == 0 and f[38:40] == struct.pack('!H', ident)
time.sleep(0.2)
os.write(fd, frame)
end = time.time() + 1.0
while time.time() < end:
    r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
    if not r: break
    if is_reply(os.read(fd, 2048)):
        print('reply'); sys.exit(0)
print('none')
`;

/** Listens on a tap for `seconds` and prints the source IPv4 address of every IPv4 frame, one per line. */
export const GUEST_LISTEN = String.raw`
import fcntl, os, select, socket, struct, sys, time
tap, seconds = sys.argv[1], float(sys.argv[2])
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', tap.encode(), 0x0002 | 0x1000))
print('ready', flush=True)
end = time.time() + seconds
while time.time() < end:
    r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
    if not r: break
    f = os.read(fd, 2048)
    if f[12:14] == b'\x08\x00': print(socket.inet_ntoa(f[26:30]), flush=True)
`;

/**
 * Plays the guest on a tap: writes the frames given as hex arguments (one
 * after another), then prints every frame the tap receives within
 * `seconds`, as hex, one per line. Run: `python3 -c GUEST_FRAMES TAP SECONDS HEX…`.
 */
export const GUEST_FRAMES = String.raw`
import fcntl, os, select, struct, sys, time
tap, seconds = sys.argv[1], float(sys.argv[2])
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', tap.encode(), 0x0002 | 0x1000))
time.sleep(0.2)
for h in sys.argv[3:]: os.write(fd, bytes.fromhex(h))
end = time.time() + seconds
while time.time() < end:
    r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
    if not r: break
    print(os.read(fd, 2048).hex(), flush=True)
`;

const macBytes = (m: string): Buffer => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
const v4Bytes = (a: string): Buffer => Buffer.from(a.split('.').map(Number));

/** The 16 bytes of an IPv6 address (full or with one "::"). */
export function ipv6Bytes(a: string): Buffer {
  const [head = '', tail] = a.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

/** The EUI-64 link-local address a Linux guest makes from its MAC by default. */
export function linkLocalOf(mac: string): string {
  const b = macBytes(mac);
  const w = (x: number, y: number): string => ((x << 8) | y).toString(16);
  return `fe80::${w((b[0] ?? 0) ^ 2, b[1] ?? 0)}:${w(b[2] ?? 0, 0xff)}:${w(0xfe, b[3] ?? 0)}:${w(b[4] ?? 0, b[5] ?? 0)}`;
}

/** An ARP frame (Ethernet/IPv4); `op` 1 is a request, 2 a reply. */
export function arpFrame(f: { dst: string; src: string; op: 1 | 2; senderMac: string; senderIp: string; targetMac?: string; targetIp: string }): string {
  return Buffer.concat([
    macBytes(f.dst), macBytes(f.src), Buffer.from([0x08, 0x06]),
    Buffer.from([0, 1, 0x08, 0, 6, 4, 0, f.op]),
    macBytes(f.senderMac), v4Bytes(f.senderIp), macBytes(f.targetMac ?? '00:00:00:00:00:00'), v4Bytes(f.targetIp),
  ]).toString('hex');
}

function checksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] ?? 0) * 256 + (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * An ICMPv6 neighbour discovery frame: a solicitation (type 135, with a
 * source link-layer option) or an advertisement (136, with a target
 * link-layer option and the override flag), or a router advertisement (134),
 * hop limit 255 as the receiver demands.
 */
export function ndFrame(f: { dst: string; src: string; from: string; to: string; type: 134 | 135 | 136; target?: string; lladdr: string }): string {
  let body: Buffer;
  if (f.type === 134) {
    // Hop limit 64, no flags, router lifetime 1800 s, reachable/retrans 0, then the source link-layer option.
    body = Buffer.concat([Buffer.from([64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]), macBytes(f.lladdr)]);
  } else {
    const flags = f.type === 136 ? Buffer.from([0x20, 0, 0, 0]) : Buffer.alloc(4);
    body = Buffer.concat([flags, ipv6Bytes(f.target ?? '::'), Buffer.from([f.type === 135 ? 1 : 2, 1]), macBytes(f.lladdr)]);
  }
  const icmp = Buffer.concat([Buffer.from([f.type, 0, 0, 0]), body]);
  const from = ipv6Bytes(f.from);
  const to = ipv6Bytes(f.to);
  const pseudo = Buffer.concat([from, to, Buffer.from([0, 0, icmp.length >> 8, icmp.length & 0xff, 0, 0, 0, 58])]);
  icmp.writeUInt16BE(checksum(Buffer.concat([pseudo, icmp])), 2);
  const ip = Buffer.concat([Buffer.from([0x60, 0, 0, 0, icmp.length >> 8, icmp.length & 0xff, 58, 255]), from, to]);
  return Buffer.concat([macBytes(f.dst), macBytes(f.src), Buffer.from([0x86, 0xdd]), ip, icmp]).toString('hex');
}
