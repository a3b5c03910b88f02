/** Defaults of every optional key (docs/config.md lists them for operators). */
export const DEFAULTS = {
  logLevel: 'info',
  address: ':8080',
  // Loopback only: from elsewhere through an SSH tunnel, or with a token (docs/operations.md, "Status page").
  statusAddress: '127.0.0.1:9090',
  stateDir: '/var/lib/flint',
  runDir: '/run/flint',
  apiUrl: 'https://api.github.com',
  acmeDirectoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
  // A fifth of an installation's 5,000 requests an hour (docs/operations.md).
  scanBudget: 1000,
  dns: ['1.1.1.1'],
  group: 'Default',
  hypervisor: 'firecracker',
  qemu: 'qemu-system-x86_64',
  cpuCount: 2,
  memorySize: 4096,
  smt: false,
  diskSize: 10 * 2 ** 30,
  // Firecracker runs a handful of threads (API, VMM, one per vCPU, and with
  // the Async io engine some io_uring workers); a few hundred leaves ample
  // room and still stops a VMM taken over by its guest from forking without
  // bound (docs/firecracker.md, "Limits").
  pidsMax: 512,
  maxRunners: 1,
  minIdle: 0,
  jobTimeoutSeconds: 6 * 3600,
  // Longer than GitHub takes to hand a queued job to an idle runner (seconds,
  // more when GitHub is busy), so a runner that just came up is not reaped
  // under the job about to arrive (docs/config.md).
  idleGraceSeconds: 5 * 60,
  unhealthyAfter: 3,
  // Most CI jobs end within minutes; 30 minutes lets nearly all of them
  // finish on a SIGTERM (an upgrade) without holding a reboot for hours.
  // systemd's TimeoutStopSec (default 90 s) must be set above it (docs/operations.md).
  shutdownGraceSeconds: 30 * 60,
  kernelArgs: '',
  uid: 123,
  gid: 100,
} as const;

/** The default configuration file of `flint serve` and `flint config check`. */
export const DEFAULT_CONFIG_PATH = '/etc/flint/config.yaml';
