/**
 * The VM supervisor: makes, watches and destroys VMs. The facade over its
 * parts: managed-vm.ts runs one VM's life (the per-VM state machine),
 * vm-spec.ts decides what the VM is made of, adoption.ts does the start-up
 * adoption and sweep; supervisor-types.ts holds the shared vocabulary,
 * re-exported here for the callers.
 *
 * The supervisor keeps the live VMs, the networks it has checked, and the
 * named loop "console-retention" that deletes console logs older than the
 * retention (startConsoleRetention, on daemon/loop.ts). Nothing starts at
 * construction.
 */
import { join } from 'node:path';
import type { NetworkConfig, RunnerConfig } from '../../config/types.ts';
import { FlintError } from '../../core/errors/index.ts';
import { vmId } from '../../core/ids.ts';
import { startLoop } from '../loop.ts';
import type { Loop, LoopTimers } from '../loop.ts';
import { adoptVms, sweepLeftovers } from './adoption.ts';
import type { StartupContext } from './adoption.ts';
import { consoleLogPath, pruneConsoleLogs } from './console-log.ts';
import { ManagedVm } from './managed-vm.ts';
import type { GuestEnv, LaunchOptions, SupervisorDeps, SweepReport, VmHandle, VmIdSource, VmInfo, VmOutcome } from './supervisor-types.ts';
import { VMS_DIR } from './supervisor-types.ts';
import { newVmRecord } from './vm-store.ts';
import type { VmStore } from './vm-store.ts';

export { DEFAULT_SUPERVISOR_TUNING, VMS_DIR } from './supervisor-types.ts';
export type {
  Clock, GuestEnv, LaunchOptions, Logger, SupervisorConfig, SupervisorDeps, SweepReport, VmHandle, VmIdSource, VmInfo, VmOutcome,
} from './supervisor-types.ts';

/**
 * VM ids from the store's persisted counter: never repeated, even across
 * restarts. One number is always taken ahead, so a launch finds its id
 * ready instead of waiting for a write of its own before the VM's row can
 * be written; a restart skips the number taken ahead (ids need not be
 * dense). A failed reservation fails the launch that takes it; the next
 * launch reserves anew.
 */
export function persistedVmIds(store: VmStore, instanceId: string): VmIdSource {
  const reserve = (): Promise<number> => {
    const n = store.nextSequence(instanceId);
    // Observed by the launch that takes it; until then a failure must not count as unhandled.
    n.catch(() => undefined);
    return n;
  };
  let ahead: Promise<number> | undefined;
  return {
    next: async () => {
      const mine = ahead ?? reserve();
      ahead = reserve();
      return vmId(instanceId, await mine);
    },
  };
}

export class VmSupervisor {
  private readonly deps: SupervisorDeps;
  private readonly live = new Map<string, ManagedVm>();
  private readonly ensuredNetworks = new Map<string, Promise<void>>();
  private closed = false;
  private retention: Loop | undefined;

  constructor(deps: SupervisorDeps) {
    this.deps = deps;
  }

  /** VMs not yet in a terminal state. */
  list(): VmHandle[] {
    return [...this.live.values()];
  }

  /** What the status surfaces show of each live VM (no secrets: the guest environment is not kept). */
  describe(): VmInfo[] {
    return [...this.live.values()].map((e) => e.info());
  }

  /** Where a VM's console log is (or was), live or not. */
  consoleLogPath(id: string): string {
    return consoleLogPath(this.deps.config.stateDir, id);
  }

  /**
   * Starts one VM from a runner definition; follow `handle.ended`. Resolves
   * once the VM has its id, without waiting for its record's commit: the VM
   * makes nothing before that commit, and ends failed (nothing made, nothing
   * recorded) if it fails — so a scheduler launching several VMs in one
   * pass goes on at once.
   */
  async launch(runner: RunnerConfig, guestEnv: GuestEnv, options: LaunchOptions = {}): Promise<VmHandle> {
    if (this.closed) throw new FlintError('FLINT_ERR_VM_SUPERVISOR_CLOSED');
    const { config } = this.deps;
    const net = config.networks.find((n) => n.name === runner.network);
    if (net === undefined) {
      throw new FlintError('FLINT_ERR_VM_UNKNOWN_NETWORK', `runner "${runner.name}" uses network "${runner.network}", which is not configured`, {
        details: { runner: runner.name, network: runner.network },
      });
    }
    const driver = this.deps.drivers[runner.hypervisor];
    if (driver === undefined) {
      throw new FlintError('FLINT_ERR_VM_START_FAILED', `no ${runner.hypervisor} driver is available for runner "${runner.name}"`, {
        hint: `Set the runner's hypervisor to one this host supports, or install ${runner.hypervisor}.`,
      });
    }
    const id = await this.deps.ids.next();
    const record = newVmRecord({
      id, instanceId: config.instanceId, runner: runner.name, hypervisor: runner.hypervisor,
      workDir: join(config.stateDir, VMS_DIR, id), createdAt: this.deps.clock.now(), owner: this.deps.processes.self(),
    });
    const recorded = this.deps.store.insert(record);
    const maxLifetimeMs = options.maxLifetimeMs === undefined ? runner.jobTimeoutSeconds * 1000 + config.lifetimeMarginMs : options.maxLifetimeMs;
    const entry = new ManagedVm(this.deps, record, runner, net, driver, {
      bootTimeoutMs: options.bootTimeoutMs ?? config.bootTimeoutMs, maxLifetimeMs,
    }, (n) => this.ensureNetwork(n));
    this.track(entry);
    this.deps.logger.info({ vmId: id, runner: runner.name, hypervisor: runner.hypervisor }, 'vm launching');
    entry.run(guestEnv, recorded);
    // shutdown() ran while this launch awaited the id: it did not see this
    // VM, so stop it here (it never boots).
    if (this.closed) void entry.stop('flint is stopping');
    return entry;
  }

  /**
   * Start-up adoption (adoption.ts): run before the sweep. Takes over every
   * VM of this instance that a dead Flint process left running; what cannot
   * be adopted is left for `sweep()`.
   */
  adopt(runners: readonly RunnerConfig[]): Promise<VmHandle[]> {
    return adoptVms(this.startup(), runners);
  }

  /**
   * Start-up sweep (adoption.ts): run before anything else starts (after
   * `adopt()`). Cleans up after a previous run of this instance, never
   * touching what a live VM owns.
   */
  sweep(): Promise<SweepReport> {
    return sweepLeftovers(this.startup());
  }

  /**
   * Starts the named loop "console-retention" (daemon/loop.ts: a pass now,
   * then every interval) and hands it back for the status surfaces;
   * `shutdown()` stops it. Starting it twice hands back the running one.
   */
  startConsoleRetention(timers?: LoopTimers): Loop {
    const { config, clock, logger } = this.deps;
    this.retention ??= startLoop({
      name: 'console-retention', intervalMs: config.consoleRetentionIntervalMs, runAtStart: true, logger, now: () => clock.now(),
      ...(timers === undefined ? {} : { timers }),
      run: async () => {
        const removed = await pruneConsoleLogs(this.deps.files, config.stateDir, config.instanceId, clock.now(), config.consoleRetentionMs, new Set(this.live.keys()));
        if (removed.length > 0) logger.info({ loop: 'console-retention', removed: removed.length }, 'old console logs deleted');
      },
    });
    return this.retention;
  }

  /** Stops every VM (and the loops); resolves when all are torn down. Launches after this fail. */
  async shutdown(reason = 'flint is stopping'): Promise<VmOutcome[]> {
    this.closed = true;
    await this.retention?.stop();
    return Promise.all([...this.live.values()].map((e) => e.stop(reason)));
  }

  private track(vm: ManagedVm): void {
    this.live.set(vm.id, vm);
    void vm.ended.then(() => this.live.delete(vm.id));
  }

  private startup(): StartupContext {
    return { deps: this.deps, live: this.live, track: (vm) => this.track(vm), ensureNetwork: (n) => this.ensureNetwork(n) };
  }

  private ensureNetwork(net: NetworkConfig): Promise<void> {
    let p = this.ensuredNetworks.get(net.name);
    if (p === undefined) {
      p = this.deps.network.ensureNetwork(net);
      // A failure is retried by the next launch, not cached.
      p.catch(() => this.ensuredNetworks.delete(net.name));
      this.ensuredNetworks.set(net.name, p);
    }
    return p;
  }
}
