/**
 * A VmSupervisor on the real adapters (SQLite store, Linux networking,
 * disks, QEMU and Firecracker-through-the-emulator drivers) in a temp state
 * dir, for tests and the benchmark. Everything it makes carries its own
 * instance id and bridge name, so parallel test files never collide, and
 * `destroy()` removes it all (bridge, NAT table, state dir). Several systems
 * may share one bridge (`bridge`, `range`, `runDir`): they then claim it as
 * Flints on one host do.
 *
 * Must run inside a private network namespace (the test runner's, or the
 * benchmark's own).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetworkConfig, RunnerConfig } from '../../src/config/types.ts';
import { tapPrefix } from '../../src/core/ids.ts';
import { createDiskProvisioner } from '../../src/adapters/disks/index.ts';
import { createDrivers, jailBaseDir } from '../../src/adapters/hypervisor/index.ts';
import { createLinuxNetwork } from '../../src/adapters/network/linux-network.ts';
import type { LinuxHostNetwork } from '../../src/adapters/network/linux-network.ts';
import { openBridgeClaims } from '../../src/adapters/network/bridge-claims.ts';
import type { BridgeClaims } from '../../src/adapters/network/bridge-claims.ts';
import { openDatabase } from '../../src/adapters/store/db.ts';
import type { Db } from '../../src/adapters/store/db.ts';
import { openLeaseStore } from '../../src/adapters/store/leases.ts';
import type { LeaseStore } from '../../src/adapters/store/leases.ts';
import { SqliteVmStore } from '../../src/adapters/store/vms.ts';
import { NodeVmFiles } from '../../src/adapters/host/node-vm-files.ts';
import { ProcHostProcesses } from '../../src/adapters/host/proc-host-processes.ts';
import { DEFAULT_SUPERVISOR_TUNING, persistedVmIds, VmSupervisor } from '../../src/daemon/vm/supervisor.ts';
import type { SupervisorConfig } from '../../src/daemon/vm/supervisor.ts';
import type { HypervisorDriver } from '../../src/daemon/vm/ports.ts';
import { MemoryLogger } from '../fakes/rig.ts';
import { ensureTestImage } from '../helpers/test-image.ts';

export const EMULATED_JAILER = fileURLToPath(new URL('../../tools/firecracker-emu/jailer', import.meta.url));
export const EMULATED_FIRECRACKER = fileURLToPath(new URL('../../tools/firecracker-emu/firecracker', import.meta.url));

export interface RealSystemOptions {
  /** [a-z0-9]{1,6}; unique per test file. */
  readonly instanceId: string;
  /** Third octet of 10.<x>.<y>.0/24 and part of the bridge name; unique per test file. */
  readonly subnet: string;
  /** Reuse a state dir (a second "start" of Flint after a crash). */
  readonly stateDir?: string;
  /** Bridge name (≤ 15 characters); default `flb<instanceId>`. Systems given the same one share the bridge. */
  readonly bridge?: string;
  /** The IPv4 addresses this system hands out (the network's `range`, e.g. 10.<subnet>.2–.9); default the whole subnet. */
  readonly range?: { readonly first: string; readonly last: string };
  /**
   * Claim the bridge host-wide in `<runDir>/claims.db` at start, as the
   * composition root does (src/entrypoints/vm-system.ts): makeRealSystem
   * rejects with FLINT_ERR_NET_BRIDGE_CLAIMED when the claim clashes, and
   * close() releases it. Default: no claims.
   */
  readonly runDir?: string;
  /** TCP ports of the gateway guests may reach (the network's `hostPorts`); default none. */
  readonly hostPorts?: readonly number[];
  readonly config?: Partial<SupervisorConfig>;
  /** Replace drivers (the benchmark's stub). */
  readonly drivers?: Partial<Record<'qemu' | 'firecracker', HypervisorDriver>>;
}

export interface RealSystem {
  readonly supervisor: VmSupervisor;
  readonly store: SqliteVmStore;
  readonly leases: LeaseStore;
  readonly network: LinuxHostNetwork;
  readonly net: NetworkConfig;
  readonly stateDir: string;
  readonly instanceId: string;
  readonly logger: MemoryLogger;
  readonly db: Db;
  /** The host-wide claims and their directory (only with `runDir`). */
  readonly claims?: BridgeClaims;
  readonly runDir?: string;
  runner(overrides?: Partial<RunnerConfig>): Promise<RunnerConfig>;
  /** Shuts the supervisor down, releases the bridge claim and closes the database; keeps bridge and state dir (see destroy). */
  close(): Promise<void>;
  /** close() plus: NAT table, bridge and state dir removed (a shared bridge too: destroy the systems on it last). */
  destroy(): Promise<void>;
}

export function bridgeName(opts: { instanceId: string; bridge?: string }): string {
  return opts.bridge ?? `flb${opts.instanceId}`.slice(0, 15);
}

export async function makeRealSystem(opts: RealSystemOptions): Promise<RealSystem> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), `flint-${opts.instanceId}-`));
  const db = openDatabase(stateDir);
  const store = new SqliteVmStore(db);
  const leases = openLeaseStore(db);
  const logger = new MemoryLogger();
  const net: NetworkConfig = {
    name: bridgeName(opts), v4: { address: `10.${opts.subnet}.1`, prefixLength: 24 }, create: true, dns: [`10.${opts.subnet}.1`],
    ...(opts.range === undefined ? {} : { range: opts.range }),
    ...(opts.hostPorts === undefined ? {} : { hostPorts: opts.hostPorts }),
  };
  let claims: BridgeClaims | undefined;
  let network: LinuxHostNetwork;
  try {
    if (opts.runDir !== undefined) claims = openBridgeClaims({ dir: opts.runDir, instanceId: opts.instanceId, stateDir });
    network = createLinuxNetwork({ instanceId: opts.instanceId, leases, log: logger, ...(claims === undefined ? {} : { claims }) });
    network.claim(net);
  } catch (err) {
    // A refused start leaves nothing: no claim, no open database, no temp state dir.
    claims?.close();
    db.close();
    if (opts.stateDir === undefined) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  const config: SupervisorConfig = {
    ...DEFAULT_SUPERVISOR_TUNING, stateDir, instanceId: opts.instanceId, networks: [net], stopGraceMs: 3000, bootTimeoutMs: 90_000, ...opts.config,
  };
  const supervisor = new VmSupervisor({
    drivers: { ...createDrivers({ stateDir, logger }), ...opts.drivers },
    network, disks: createDiskProvisioner({ stateDir, log: logger }), store, clock: { now: () => Date.now() },
    ids: persistedVmIds(store, opts.instanceId), logger, processes: new ProcHostProcesses(), files: new NodeVmFiles(), config,
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await supervisor.shutdown('test over');
    claims?.close();
    db.close();
  };
  return {
    supervisor, store, leases, network, net, stateDir, instanceId: opts.instanceId, logger, db,
    ...(claims === undefined || opts.runDir === undefined ? {} : { claims, runDir: opts.runDir }),
    async runner(overrides = {}) {
      const image = await ensureTestImage();
      return {
        name: 'test', group: 'Default', labels: ['self-hosted'], kernel: image.kernel, initrd: image.initrd, filesystem: image.rootfs,
        jailer: EMULATED_JAILER, firecracker: EMULATED_FIRECRACKER, hypervisor: 'qemu', network: net.name, cpuCount: 1, memorySize: 256,
        smt: false, diskSize: 1024 * 1024 * 1024, maxRunners: 4, minIdle: 0, jobTimeoutSeconds: 600, kernelArgs: image.kernelArgs, uid: 0, gid: 0,
        static: false, ...overrides,
      };
    },
    close,
    async destroy() {
      await close();
      await network.removeNat(net.name).catch(() => {});
      try { execFileSync('ip', ['link', 'del', net.name], { stdio: 'ignore' }); } catch { /* never created */ }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Everything of `instanceId` still on the host: must be empty once VMs ended
 * or the sweep ran; with `runDir`, its bridge claims too (empty once closed).
 */
export function leftovers(sys: { stateDir: string; instanceId: string; runDir?: string }, vmIds: readonly string[]): string[] {
  const found: string[] = [];
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const line of links.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name?.startsWith(tapPrefix(sys.instanceId))) found.push(`tap ${name}`);
  }
  const vmsDir = join(sys.stateDir, 'vms');
  if (existsSync(vmsDir)) for (const d of readdirSync(vmsDir)) found.push(`work dir ${d}`);
  const jail = join(jailBaseDir(sys.stateDir), 'firecracker');
  if (existsSync(jail)) for (const d of readdirSync(jail)) found.push(`jail dir ${d}`);
  const db = openDatabase(sys.stateDir);
  try {
    for (const l of openLeaseStore(db).ofInstance(sys.instanceId)) found.push(`lease ${l.address} of ${l.vmId}`);
  } finally {
    db.close();
  }
  if (sys.runDir !== undefined) {
    // A reader of the claims (it claims nothing itself, so close() releases nothing).
    const reader = openBridgeClaims({ dir: sys.runDir, instanceId: sys.instanceId, stateDir: sys.stateDir });
    try {
      for (const c of reader.list()) if (c.instanceId === sys.instanceId) found.push(`claim of bridge ${c.bridge} by ${c.owner}`);
    } finally {
      reader.close();
    }
  }
  const procs = new ProcHostProcesses();
  for (const id of vmIds) for (const pid of procs.findVm(id)) found.push(`process ${pid} of ${id}`);
  return found;
}
