/**
 * Composition root of the VM machinery: the concrete store, network, disks
 * and drivers behind one VmSupervisor. `flint run` uses it; `flint serve`
 * can too. Nothing here runs at import time.
 */
import type { FlintConfig } from '../config/types.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { openLeaseStore } from '../adapters/store/leases.ts';
import { SqliteVmStore } from '../adapters/store/vms.ts';
import { createLinuxNetwork } from '../adapters/network/linux-network.ts';
import { openBridgeClaims } from '../adapters/network/bridge-claims.ts';
import type { BridgeClaims } from '../adapters/network/bridge-claims.ts';
import { createDiskProvisioner } from '../adapters/disks/index.ts';
import { createDrivers } from '../adapters/hypervisor/index.ts';
import { ProcHostProcesses } from '../daemon/vm/host-processes.ts';
import { DEFAULT_SUPERVISOR_TUNING, persistedVmIds, VmSupervisor } from '../daemon/vm/supervisor.ts';
import type { Logger, SupervisorConfig } from '../daemon/vm/supervisor.ts';

export interface VmSystem {
  readonly supervisor: VmSupervisor;
  /** Releases the bridge claims and closes the database. Call after `supervisor.shutdown()`. */
  close(): void;
}

export async function buildVmSystem(config: FlintConfig, logger: Logger, tuning: Partial<SupervisorConfig> = {}): Promise<VmSystem> {
  const db = openDatabase(config.stateDir);
  const store = new SqliteVmStore(db);
  let claims: BridgeClaims;
  try {
    claims = openBridgeClaims({ dir: config.runDir, instanceId: config.instanceId, stateDir: config.stateDir });
  } catch (err) {
    db.close();
    throw err;
  }
  const network = createLinuxNetwork({ instanceId: config.instanceId, leases: openLeaseStore(db), log: logger, claims });
  try {
    // At start, before the sweep touches anything: a second Flint whose
    // addresses could meet another live one's on a bridge stops here.
    for (const net of config.networks) network.claim(net);
  } catch (err) {
    claims.close();
    db.close();
    throw err;
  }
  const disks = createDiskProvisioner({ stateDir: config.stateDir, log: logger });
  const supervisor = new VmSupervisor({
    drivers: createDrivers({ stateDir: config.stateDir, logger }),
    network, disks, store,
    clock: { now: () => Date.now() },
    ids: persistedVmIds(store, config.instanceId),
    logger,
    processes: new ProcHostProcesses(),
    config: { ...DEFAULT_SUPERVISOR_TUNING, stateDir: config.stateDir, instanceId: config.instanceId, networks: config.networks, ...tuning },
  });
  return { supervisor, close: () => { claims.close(); db.close(); } };
}
