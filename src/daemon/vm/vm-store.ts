/**
 * The VM store port: where the supervisor persists each VM's record before
 * it acts on the VM ("persist, then act"). The SQLite adapter is
 * src/adapters/store/vms.ts; test/fakes/memory-vm-store.ts is the in-memory
 * twin, and both pass the same contract suite (vm-store.contract.ts).
 */
import type { HypervisorKind } from '../../config/types.ts';
import type { VmState } from '../../core/vm-state.ts';

export interface VmRecord {
  readonly id: string;
  /** The Flint instance that made the VM; sweeps touch only their own. */
  readonly instanceId: string;
  /** Name of the runner definition the VM was made from. */
  readonly runner: string;
  readonly hypervisor: HypervisorKind;
  readonly state: VmState;
  /** Why the VM reached a terminal state (or why it is stopping). */
  readonly reason: string | null;
  readonly workDir: string;
  /**
   * The Flint process supervising the VM, as `<pid>:<start time>` (see
   * host-processes.ts). A start-up sweep leaves records whose owner is still
   * alive alone: they belong to another running Flint process of the same
   * instance (e.g. `flint run --interactive` next to `flint serve`).
   */
  readonly owner: string | null;
  /** Host pid of the VMM once started; used (with /proc cmdline) by the start-up sweep. */
  readonly pid: number | null;
  /**
   * Start time of the VMM process (/proc/<pid>/stat field 22): with `pid`
   * it tells the VMM from a process that reused its pid, so a restarted
   * Flint adopts (or signals) only the real one.
   */
  readonly vmmStartTime: string | null;
  /** The VMM's control socket (QMP or Firecracker API). */
  readonly controlSocket: string | null;
  /** The file the VMM writes the serial console to. */
  readonly consoleFile: string | null;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Host-side preparation time (disks, lease, tap), ms. */
  readonly prepareMs: number | null;
  readonly startedAt: number | null;
  readonly bootedAt: number | null;
  readonly runnerStartedAt: number | null;
  readonly endedAt: number | null;
  /** Exit code the guest reported for the runner (runner-exited marker). */
  readonly runnerExitCode: number | null;
  /** How the VMM process ended. */
  readonly vmmExitCode: number | null;
  readonly vmmSignal: string | null;
}

/** Fields that change after creation. */
export type VmRecordPatch = Partial<Omit<VmRecord, 'id' | 'instanceId' | 'runner' | 'hypervisor' | 'createdAt' | 'workDir'>>;

export interface VmStore {
  /** Next VM sequence number of the instance; persisted, so ids never repeat across restarts. */
  nextSequence(instanceId: string): Promise<number>;
  insert(record: VmRecord): Promise<void>;
  /**
   * Compare-and-set: applies `patch` only when the stored state is `expected`.
   * Returns false when it was not (someone else changed the record).
   */
  update(id: string, expected: VmState, patch: VmRecordPatch): Promise<boolean>;
  get(id: string): Promise<VmRecord | undefined>;
  /** Records of the instance in a non-terminal state (what a crashed Flint left). */
  listUnfinished(instanceId: string): Promise<VmRecord[]>;
  /** Most recent records of the instance, newest first. */
  listRecent(instanceId: string, limit: number): Promise<VmRecord[]>;
}

/** A record in state `preparing`, every later field still empty. */
export function newVmRecord(fields: Pick<VmRecord, 'id' | 'instanceId' | 'runner' | 'hypervisor' | 'workDir' | 'createdAt'> & { owner?: string | null }): VmRecord {
  return {
    owner: null,
    ...fields,
    state: 'preparing',
    reason: null,
    pid: null,
    vmmStartTime: null,
    controlSocket: null,
    consoleFile: null,
    prepareMs: null,
    startedAt: null,
    bootedAt: null,
    runnerStartedAt: null,
    endedAt: null,
    runnerExitCode: null,
    vmmExitCode: null,
    vmmSignal: null,
  };
}
