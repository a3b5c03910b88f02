/**
 * The resolved, validated configuration every part of Flint consumes.
 *
 * This is the contract between the config loader (src/config/load.ts, which
 * turns YAML into these objects, applies defaults and resolves secrets from
 * files and environment variables) and everything else. Nothing outside the
 * loader ever sees raw YAML.
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export type HypervisorKind = 'firecracker' | 'qemu';

export interface NetworkConfig {
  /** Name of the Linux bridge (≤ 15 characters). */
  readonly name: string;
  /** The bridge's own IPv4 address with prefix, e.g. "10.0.0.1/24"; guests get addresses from this subnet and use it as gateway. */
  readonly v4: { readonly address: string; readonly prefixLength: number };
  /** Optional IPv6 address/prefix of the bridge, same meaning as v4. */
  readonly v6?: { readonly address: string; readonly prefixLength: number };
  /** Create the bridge (with its address and NAT) when it is missing, instead of failing. Default false. */
  readonly create: boolean;
  /**
   * The IPv4 addresses (inclusive, canonical text) this Flint hands out on the
   * bridge; default the whole subnet. Several Flints with different state
   * directories may share a bridge only with disjoint ranges (docs/networking.md).
   */
  readonly range?: { readonly first: string; readonly last: string };
  /** The same for IPv6 addresses (needs `v6`). */
  readonly range6?: { readonly first: string; readonly last: string };
  /** DNS servers handed to guests. Default ["1.1.1.1"] (the bridge's own address is not assumed to run a resolver); see docs/config.md. */
  readonly dns: readonly string[];
  /** The host serves DNS on the bridge's addresses and guests may ask it (udp/tcp 53 to the gateway); default false. */
  readonly hostDns?: boolean;
  /** TCP ports on the gateway addresses guests may connect to (a cache or mirror the host serves them); default none. */
  readonly hostPorts?: readonly number[];
}

/** Where a definition's guests may connect beyond the host (absent: anywhere). */
export interface EgressConfig {
  /** Addresses and prefixes, canonical ("140.82.112.0/20", "2606:50c0::/32", "192.0.2.7/32"). */
  readonly cidrs: readonly string[];
  /** Host names Flint resolves (and re-resolves every pass of the network-policy loop). */
  readonly hosts: readonly string[];
}

export interface GitHubConfig {
  /** The App's id (a number in GitHub; kept as a string as the reference system did). */
  readonly appId: string;
  readonly organization: string;
  /** Current webhook secret, and optionally the previous one during a rotation; empty when every definition is in scale-set mode and none is set. */
  readonly webhookSecrets: readonly string[];
  /** PEM of the App's private key (from `privateKey` inline or read from `privateKeyFile`). */
  readonly privateKey: string;
  /** Where privateKey was read from, when it came from `privateKeyFile` (for messages; never the key itself). */
  readonly privateKeyFile?: string;
  /** REST API base URL: https://api.github.com, a GitHub Enterprise Server URL ending in /api/v3, or the simulator's. */
  readonly apiUrl: string;
  /** Requests an hour the missed-jobs scan may spend (`github.scanBudget`). */
  readonly scanBudget: number;
}

/**
 * Per-VM device rate limits, each per second. Every drive of the VM gets the
 * disk limits separately; the network limits apply to its one interface,
 * `rx` being traffic into the guest and `tx` traffic out of it.
 */
export interface RateLimits {
  readonly disk?: { readonly bytesPerSecond?: number; readonly opsPerSecond?: number };
  readonly network?: { readonly rxBytesPerSecond?: number; readonly txBytesPerSecond?: number };
}

export interface RunnerConfig {
  readonly name: string;
  /** Runner group name in GitHub ("Default" when not set). */
  readonly group: string;
  readonly labels: readonly string[];
  readonly kernel: string;
  /** Optional initramfs for the kernel (needed by stock distribution kernels). */
  readonly initrd?: string;
  /** Base root filesystem image, attached read-only. */
  readonly filesystem: string;
  /** Paths of Firecracker's jailer and binary; "" for `hypervisor: qemu` runners, which need neither. */
  readonly jailer: string;
  readonly firecracker: string;
  readonly hypervisor: HypervisorKind;
  /** QEMU program for `hypervisor: qemu` (a path, or a name looked up in PATH). Always set by the loader. */
  readonly qemu?: string;
  /** Name of one of `networks[]`. */
  readonly network: string;
  readonly cpuCount: number;
  /** MiB. */
  readonly memorySize: number;
  readonly smt: boolean;
  /** Bytes. */
  readonly diskSize: number;
  /** Upper bound of VMs of this definition at once. */
  readonly maxRunners: number;
  /** Idle runners kept warm. */
  readonly minIdle: number;
  /** Seconds a job may run before its VM is stopped. */
  readonly jobTimeoutSeconds: number;
  /**
   * Seconds an idle runner beyond the warm pool is kept before it is reaped.
   * Always set by the loader; hand-built configs (tests) fall back to DEFAULTS.
   */
  readonly idleGraceSeconds?: number;
  /** Consecutive failed launch rounds after which the definition is unhealthy. Always set by the loader. */
  readonly unhealthyAfter?: number;
  /** Extra kernel command-line arguments. */
  readonly kernelArgs: string;
  /** Jailer uid/gid (default 123/100). */
  readonly uid: number;
  readonly gid: number;
  /** Most tasks (threads and processes) the VMM's cgroup allows (`pids.max`). Always set by the loader. */
  readonly pidsMax?: number;
  /** Optional per-VM device rate limits (Firecracker's rate limiters). */
  readonly rateLimits?: RateLimits;
  /** True for entries from `static_runners` (always-on runners, reference system semantics). */
  readonly static: boolean;
  /** The egress allow-list of this definition's guests; absent: they may reach anything beyond the host. */
  readonly egress?: EgressConfig;
  /**
   * Present when the definition is in scale-set mode (`mode: scaleset` or
   * `scaleSet:`): jobs come from this scale set's message queue, runners are
   * its JIT runners (docs/scale-sets.md). Absent: webhook mode.
   */
  readonly scaleSet?: ScaleSetConfig;
}

export interface ScaleSetConfig {
  /** The scale set's name in its runner group; default the definition's name. */
  readonly name: string;
  /** Its runner group; default the definition's `group`. */
  readonly runnerGroup: string;
}

export interface AcmeConfig {
  /** ACME directory URL (RFC 8555); default Let's Encrypt production. */
  readonly directoryUrl: string;
  /** PEM file of a CA to trust, besides the system's, for the ACME server's own HTTPS. */
  readonly caFile?: string;
}

export interface TlsFilesConfig {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface FlintConfig {
  /** Where the file came from (for messages). */
  readonly source: string;
  readonly logLevel: LogLevel;
  /**
   * Listen address, "host:port". With `tls`: HTTPS with the operator's
   * certificate on that port. Otherwise port 443 → HTTPS with a certificate
   * from ACME for `host` (needs `email`), port 80 answers HTTP-01 challenges
   * and redirects the rest; any other port → plain HTTP.
   */
  readonly address: string;
  readonly email?: string;
  /** The ACME server used when `address` uses port 443 without `tls`. */
  readonly acme: AcmeConfig;
  /** A certificate the operator manages (paths of PEM files). */
  readonly tls?: TlsFilesConfig;
  /** Directory for Flint's state: SQLite database, VM directories, console logs. */
  readonly stateDir: string;
  /** Directory for host-wide runtime records every Flint on the host shares (bridge claims); default /run/flint. */
  readonly runDir: string;
  /** Short id of this Flint instance (≤ 6 chars, [a-z0-9]); tags every resource it creates. */
  readonly instanceId: string;
  /**
   * Seconds busy runners get to finish their jobs when Flint drains on
   * SIGTERM, before what is left is stopped; default DEFAULTS.shutdownGraceSeconds.
   */
  readonly shutdownGraceSeconds?: number;
  /** The admin socket (entrypoints/http/admin.ts); default socket `<runDir>/admin.sock`, root only. */
  readonly admin?: AdminConfig;
  /** The live status page (entrypoints/http/status-page.ts); off unless `status:` is set. */
  readonly status?: StatusPageConfig;
  /** Where the stores live; absent: SQLite in stateDir. */
  readonly store?: StoreConfig;
  /** A fleet's timings (docs/fleet.md); only a PostgreSQL store has a fleet. Absent: the defaults of daemon/fleet.ts. */
  readonly fleet?: FleetConfig;
  readonly networks: readonly NetworkConfig[];
  readonly github: GitHubConfig;
  readonly runners: readonly RunnerConfig[];
}

export interface FleetConfig {
  readonly heartbeatSeconds?: number;
  readonly leaseTtlSeconds?: number;
  readonly claimTtlSeconds?: number;
  readonly hostLostSeconds?: number;
}

export interface StoreConfig {
  /** A PostgreSQL store shared by a fleet (docs/fleet.md); the host's address leases stay in its SQLite file. */
  readonly postgres?: PostgresStoreConfig;
}

export interface PostgresStoreConfig {
  /** postgresql:// URL; carries no password when `password` came from passwordFile or passwordEnv. */
  readonly url: string;
  /** Read at load from passwordFile or passwordEnv; never logged. */
  readonly password?: string;
}

export interface StatusPageConfig {
  /** "host:port"; default DEFAULTS.statusAddress (loopback). */
  readonly address: string;
  /** Asked for by the page (Bearer, or ?token= once then a cookie); required when `address` is not loopback. */
  readonly token?: string;
}

export interface AdminConfig {
  /** Path of the socket; default `<runDir>/admin.sock`. */
  readonly socket?: string;
  /** Group (name or gid) that may use the socket besides root: the socket is then 0660 root:group. */
  readonly group?: string | number;
}
