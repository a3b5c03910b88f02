/**
 * The VM machinery wired: the concrete store, network, disks and drivers
 * behind one VmSupervisor. The daemon's composition root (flint.ts) builds
 * it on its one database connection; `flint run` (one VM, no daemon) on a
 * connection of its own. Nothing here runs at import time.
 */
import type { FlintConfig } from '../config/types.ts';
import { openDatabase } from '../adapters/store/db.ts';
import type { Db } from '../adapters/store/db.ts';
import { openLeaseStore } from '../adapters/store/leases.ts';
import { SqliteVmStore } from '../adapters/store/vms.ts';
import { createLinuxNetwork } from '../adapters/network/linux-network.ts';
import { systemHostResolver } from '../adapters/network/host-resolver.ts';
import type { NetworkPolicyPort } from '../daemon/network-policy.ts';
import { openBridgeClaims } from '../adapters/network/bridge-claims.ts';
import type { BridgeClaims } from '../adapters/network/bridge-claims.ts';
import { createDiskProvisioner } from '../adapters/disks/index.ts';
import { createDrivers } from '../adapters/hypervisor/index.ts';
import { NodeVmFiles } from '../adapters/host/node-vm-files.ts';
import { ProcHostProcesses } from '../adapters/host/proc-host-processes.ts';
import { DEFAULT_SUPERVISOR_TUNING, persistedVmIds, VmSupervisor } from '../daemon/vm/supervisor.ts';
import type { Logger, SupervisorConfig } from '../daemon/vm/supervisor.ts';
import type { DiskProvisioner, HostNetwork, HypervisorDriver } from '../daemon/vm/ports.ts';
import type { HypervisorKind } from '../config/types.ts';
import type { VmStore } from '../daemon/vm/vm-store.ts';

export interface VmSystem {
  readonly supervisor: VmSupervisor;
  /** The Linux network's policy re-assertion, for the `network-policy` loop; absent when a network edge was given. */
  readonly policy?: NetworkPolicyPort;
  /** Releases the bridge claims, and closes the database if it opened it. Call after `supervisor.shutdown()`. */
  close(): void;
}

export interface VmSystemOptions {
  /** Supervisor settings over DEFAULT_SUPERVISOR_TUNING. */
  readonly tuning?: Partial<SupervisorConfig>;
  readonly edges?: VmEdges;
  /**
   * The state database: the caller's, which stays open at `close()`.
   * Default: a connection of the VM system's own, closed at `close()`.
   */
  readonly db?: Db;
  /**
   * Where the VM records go: the daemon's PostgreSQL store when it has one.
   * Default: the SQLite file. The address leases stay in the SQLite file
   * either way: they are this host's own.
   */
  readonly vmStore?: VmStore;
}

/**
 * The host's edges, each the real adapter unless given: benchmarks and tests
 * put their fakes (test/fakes) here, and everything between them and the
 * daemon stays real. A given network is the caller's to claim: the bridge
 * claims belong to the Linux adapter and are made only with it.
 */
export interface VmEdges {
  readonly drivers?: Partial<Record<HypervisorKind, HypervisorDriver>>;
  readonly network?: HostNetwork;
  readonly disks?: DiskProvisioner;
}

export async function buildVmSystem(config: FlintConfig, logger: Logger, options: VmSystemOptions = {}): Promise<VmSystem> {
  const { tuning = {}, edges = {} } = options;
  const db = options.db ?? openDatabase(config.stateDir);
  const closeDb = options.db === undefined ? () => db.close() : () => undefined;
  const store = options.vmStore ?? new SqliteVmStore(db);
  if (edges.network !== undefined) return { supervisor: supervisorOf(config, logger, tuning, edges, edges.network, store), close: closeDb };
  let claims: BridgeClaims;
  try {
    claims = openBridgeClaims({ dir: config.runDir, instanceId: config.instanceId, stateDir: config.stateDir });
  } catch (err) {
    closeDb();
    throw err;
  }
  const network = createLinuxNetwork({
    instanceId: config.instanceId, leases: openLeaseStore(db), log: logger, claims,
    definitions: config.runners, resolver: systemHostResolver(),
    // The VM's record (written before its tap) names its definition, also after a restart.
    definitionOf: async (vmId) => (await store.get(vmId))?.runner,
  });
  try {
    // At start, before the sweep touches anything: a second Flint whose
    // addresses could meet another live one's on a bridge stops here.
    for (const net of config.networks) network.claim(net);
  } catch (err) {
    claims.close();
    closeDb();
    throw err;
  }
  const supervisor = supervisorOf(config, logger, tuning, edges, network, store);
  return { supervisor, policy: network, close: () => { claims.close(); closeDb(); } };
}

function supervisorOf(
  config: FlintConfig, logger: Logger, tuning: Partial<SupervisorConfig>, edges: VmEdges, network: HostNetwork, store: VmStore,
): VmSupervisor {
  return new VmSupervisor({
    drivers: edges.drivers ?? createDrivers({ stateDir: config.stateDir, logger }),
    network,
    disks: edges.disks ?? createDiskProvisioner({ stateDir: config.stateDir, log: logger }),
    store,
    clock: { now: () => Date.now() },
    ids: persistedVmIds(store, config.instanceId),
    logger,
    processes: new ProcHostProcesses(),
    files: new NodeVmFiles(),
    config: { ...DEFAULT_SUPERVISOR_TUNING, stateDir: config.stateDir, instanceId: config.instanceId, networks: config.networks, ...tuning },
  });
}
