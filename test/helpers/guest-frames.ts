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
