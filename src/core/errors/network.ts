import type { CatalogueEntry } from './entry.ts';

/** Error codes of the network area (host networking and per-VM disks). Keys are stable; never rename or reuse one. */
export const networkErrors = {
  // --- Address pools (src/core/ipam.ts, src/adapters/store/leases.ts) ---
  FLINT_ERR_NET_BAD_SUBNET: {
    title: 'A network\'s address and prefix do not describe a usable subnet for VMs',
    hint: 'Give the bridge an address inside a subnet with room for guests: IPv4 /30 or shorter (e.g. `10.0.0.1/24`), IPv6 /126 or shorter (e.g. `fd00:f1::1/64`). The message names the network and the value.',
  },
  FLINT_ERR_NET_POOL_EXHAUSTED: {
    title: 'Every guest address of the network is leased, or answered for by something Flint did not start',
    hint: 'Lower `maxRunners` of the runners on this network, or give the bridge a shorter prefix (a larger subnet) or the network a larger `range`. If the message says devices Flint did not start answer for addresses of the pool, move them out of the pool (or the `range` away from them): `ip neigh show dev BRIDGE` lists them. If VMs are not really running, restart Flint: its start-up sweep releases the leases of VMs that are gone.',
  },
  FLINT_ERR_NET_LEASE_CONFLICT: {
    title: 'Two VMs wanted the same address at once and the retry did not settle it',
    hint: 'Another process keeps taking addresses from the same network in the same state database. Give each Flint its own `stateDir` and its own bridge, then restart.',
  },
  // --- Bridge, taps and NAT (src/adapters/network) ---
  FLINT_ERR_NET_BRIDGE_MISSING: {
    title: 'The bridge a network names does not exist',
    hint: 'Create it (`ip link add NAME type bridge && ip addr add ADDR/PREFIX dev NAME && ip link set NAME up`), or set `create: true` on the network so that Flint creates the bridge, its address and NAT itself.',
  },
  FLINT_ERR_NET_BRIDGE_MISCONFIGURED: {
    title: 'The bridge exists but is not what the configuration describes',
    hint: 'The message says what differs (not a bridge, address missing, link down). Fix the bridge by hand, or point the network at another bridge name and set `create: true`.',
  },
  FLINT_ERR_NET_COMMAND_FAILED: {
    title: 'A host networking command (ip, nft, sysctl) failed',
    hint: 'The message names the command and quotes its error. Flint needs root (or CAP_NET_ADMIN), iproute2 and nftables; check that the kernel has the tun, bridge and nf_tables modules.',
  },
  // --- Several Flints on one host (src/core/bridge-claims.ts, src/adapters/network/bridge-claims.ts) ---
  FLINT_ERR_NET_BRIDGE_CLAIMED: {
    title: 'Another live Flint instance hands out addresses on the same bridge',
    hint: 'Two Flints with different state directories may share a bridge only with disjoint address ranges: give the network a `range: FIRST-LAST` in each configuration (for IPv6 also `range6`), with ranges that do not overlap. Otherwise give each Flint its own bridge and subnet, or stop the other instance (the message names it, with its pid and state directory). See docs/networking.md, "Several Flints on one host".',
  },
  FLINT_ERR_NET_CLAIMS_UNUSABLE: {
    title: 'Flint could not read or write its host-wide bridge claims',
    hint: 'The claims live in `runDir` (default /run/flint), in claims.db. Check that the directory can be created and written by the user running Flint (root), and that it is on a local file system (tmpfs /run is right). The message names the file and quotes the cause.',
  },
  // --- Per-VM disks (src/adapters/disks) ---
  FLINT_ERR_DISK_PREPARE_FAILED: {
    title: 'Flint could not create a VM\'s scratch disk or config drive',
    hint: 'The message names the file and quotes the cause. Check free space and inodes in the state directory, and that e2fsprogs (`mkfs.ext4`) and coreutils (`cp`) are installed.',
  },
  FLINT_ERR_DISK_BAD_CONFIG_VALUE: {
    title: 'A value for the config drive cannot be written safely',
    hint: 'Keys must be shell variable names (A-Z, 0-9, _) and values must not contain NUL bytes. This is a bug in the caller: report it with the key name (never the value).',
  },
} as const satisfies Record<string, CatalogueEntry>;
