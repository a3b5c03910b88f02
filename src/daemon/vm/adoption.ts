/**
 * What the supervisor does once at start-up, before anything else runs:
 * adoption (take over the VMs a previous Flint process of this instance
 * left running) and then the sweep (clean up after the ones it could not
 * adopt, and the stray work dirs). Both touch only what carries this
 * instance's id, and never what a live VM of this process owns.
 */
import { join } from 'node:path';
import type { NetworkConfig, RunnerConfig } from '../../config/types.ts';
import { checkTransition, isTerminal } from '../../core/vm-state.ts';
import { keepAliveTimers } from '../loop.ts';
import type { LoopTimers } from '../loop.ts';
import { ConsoleLog, consoleLogPath } from './console-log.ts';
import { bestEffort, errText, ManagedVm } from './managed-vm.ts';
import type { RunningVm } from './ports.ts';
import type { SupervisorDeps, SweepReport, VmHandle } from './supervisor-types.ts';
import { VMS_DIR } from './supervisor-types.ts';
import type { VmRecord } from './vm-store.ts';

/** What adoption and the sweep need of the supervisor. */
export interface StartupContext {
  readonly deps: SupervisorDeps;
  /** The live VMs of this process, by id. */
  readonly live: ReadonlyMap<string, ManagedVm>;
  /** Makes a VM live (listed, forgotten when it ends). */
  track(vm: ManagedVm): void;
  ensureNetwork(net: NetworkConfig): Promise<void>;
}

/**
 * Start-up adoption: run before the sweep. Every unfinished VM of this
 * instance whose owning Flint process is dead and whose VMM is still the
 * process it recorded (pid and start time) is taken over: watched,
 * timed and stopped by this supervisor as if it had launched it, keeping
 * its tap, lease and disks. A VM whose definition is no longer configured
 * is adopted too, then stopped. What cannot be adopted is left for the sweep.
 */
export async function adoptVms(ctx: StartupContext, runners: readonly RunnerConfig[]): Promise<VmHandle[]> {
  const { store, config, logger, processes, clock, files } = ctx.deps;
  const adopted: VmHandle[] = [];
  for (const rec of await store.listUnfinished(config.instanceId)) {
    if (ctx.live.has(rec.id)) continue;
    if (rec.owner !== null && rec.owner !== processes.self() && processes.isOwnerAlive(rec.owner)) continue;
    if (rec.state !== 'booting' && rec.state !== 'running' && rec.state !== 'stopping') continue;
    if (rec.pid === null || rec.vmmStartTime === null || rec.controlSocket === null || rec.consoleFile === null) continue;
    const driver = ctx.deps.drivers[rec.hypervisor];
    if (driver === undefined) continue;
    const handle = { pid: rec.pid, startTime: rec.vmmStartTime, controlSocket: rec.controlSocket, consoleFile: rec.consoleFile };
    let vm: RunningVm | null;
    try {
      vm = await driver.adopt(rec.id, rec.workDir, handle);
    } catch (err) {
      logger.warn({ vmId: rec.id, err: errText(err) }, 'vm could not be adopted; the sweep removes it');
      continue;
    }
    if (vm === null) continue;
    const owner = processes.self();
    if (!(await store.update(rec.id, rec.state, { owner }))) {
      logger.warn({ vmId: rec.id }, 'vm record changed during adoption; left to the sweep');
      continue;
    }
    const definition = runners.find((r) => r.name === rec.runner);
    const net = definition === undefined ? undefined : config.networks.find((n) => n.name === definition.network);
    const entry = new ManagedVm(ctx.deps, { ...rec, owner }, definition ?? placeholderRunner(rec), net ?? placeholderNetwork(), driver, {
      bootTimeoutMs: config.bootTimeoutMs,
      maxLifetimeMs: definition === undefined ? 0 : definition.jobTimeoutSeconds * 1000 + config.lifetimeMarginMs,
    }, (n) => ctx.ensureNetwork(n));
    let log: ConsoleLog | undefined;
    try {
      log = await ConsoleLog.open(files, consoleLogPath(config.stateDir, rec.id), config.consoleLogMaxBytes);
    } catch (err) {
      // The VM matters more than its log: adopt it without one.
      logger.warn({ vmId: rec.id, err: errText(err) }, 'console log of an adopted vm could not be created; it runs without one');
    }
    ctx.track(entry);
    entry.resume(vm, log, clock.now());
    if (definition === undefined) void entry.stop(`runner definition "${rec.runner}" is no longer configured`);
    logger.info({ vmId: rec.id, runner: rec.runner, state: rec.state, pid: rec.pid }, 'vm of a previous Flint process adopted');
    adopted.push(entry);
  }
  return adopted;
}

/**
 * Start-up sweep: run before anything else starts (after adoption). Cleans
 * up after a previous run of THIS instance (same instance id), and only
 * that, and never what a live VM (adopted or launched here) owns: kills
 * leftover VMM processes, runs driver cleanup, removes disks, work dirs,
 * taps and leases, and marks the records failed ("flint restarted").
 */
export async function sweepLeftovers(ctx: StartupContext): Promise<SweepReport> {
  const { store, config, logger, processes, network, disks, clock, files } = ctx.deps;
  const report = { vms: [] as string[], killed: [] as number[], network: [] as string[], strayDirs: [] as string[], others: [] as string[] };
  for (const rec of await store.listUnfinished(config.instanceId)) {
    if (ctx.live.has(rec.id)) continue; // ours, alive in this process: not a leftover
    if (rec.owner !== null && rec.owner !== processes.self() && processes.isOwnerAlive(rec.owner)) {
      // Supervised by another live Flint process of this instance.
      report.others.push(rec.id);
      continue;
    }
    const pids = processes.findVm(rec.id);
    for (const pid of pids) processes.kill(pid);
    await waitUntil(ctx.deps.timers ?? keepAliveTimers, () => pids.every((p) => !processes.isAlive(p)), 10_000);
    report.killed.push(...pids);
    const driver = ctx.deps.drivers[rec.hypervisor];
    await bestEffort(logger, rec.id, 'driver cleanup', () => driver?.cleanup(rec.id, rec.workDir));
    await bestEffort(logger, rec.id, 'network detach', () => network.detach(rec.id));
    await bestEffort(logger, rec.id, 'disk removal', () => disks.remove(rec.id, rec.workDir));
    await bestEffort(logger, rec.id, 'work dir removal', () => files.removeDir(rec.workDir));
    checkTransition(rec.id, rec.state, 'failed', 'start-up sweep');
    const ok = await store.update(rec.id, rec.state, { state: 'failed', reason: 'flint restarted', endedAt: clock.now() });
    if (!ok) logger.warn({ vmId: rec.id }, 'vm record changed during the sweep; left as is');
    report.vms.push(rec.id);
    logger.warn({ vmId: rec.id, stateWas: rec.state, killed: pids }, 'vm left by a previous run cleaned up');
  }
  // Work dirs of this instance with no unfinished record (e.g. a teardown
  // that died between removing the record's resources and the dir, or a VM
  // whose record the fleet's leader failed when it marked this host lost).
  const liveIds = new Set([...ctx.live.keys(), ...report.others]);
  const vmsDir = join(config.stateDir, VMS_DIR);
  for (const name of await files.list(vmsDir)) {
    if (!name.startsWith(`${config.instanceId}-`) || liveIds.has(name)) continue;
    const rec = await store.get(name);
    if (rec !== undefined && !isTerminal(rec.state)) continue;
    const dir = join(vmsDir, name);
    // A VMM may still run behind a record that ended without it: the fleet's
    // leader marked this host lost (fleet-reaper) while it was cut off or down.
    const pids = processes.findVm(name);
    for (const pid of pids) processes.kill(pid);
    await waitUntil(ctx.deps.timers ?? keepAliveTimers, () => pids.every((p) => !processes.isAlive(p)), 10_000);
    report.killed.push(...pids);
    const driver = rec === undefined ? undefined : ctx.deps.drivers[rec.hypervisor];
    await bestEffort(logger, name, 'driver cleanup', () => driver?.cleanup(name, dir));
    await bestEffort(logger, name, 'disk removal', () => disks.remove(name, dir));
    await files.removeDir(dir);
    report.strayDirs.push(name);
  }
  report.network.push(...await network.sweep(liveIds));
  logger.info({ ...report, vms: report.vms.length }, 'start-up sweep done');
  return report;
}

/** Polls `cond` every 50 ms for up to `timeoutMs` (counted in polls, so a test clock that stands still cannot hang it). */
async function waitUntil(timers: LoopTimers, cond: () => boolean, timeoutMs: number): Promise<boolean> {
  for (let waited = 0; !cond(); waited += POLL_MS) {
    if (waited >= timeoutMs) return false;
    await new Promise<void>((resolve) => { timers.setTimeout(resolve, POLL_MS); });
  }
  return true;
}

const POLL_MS = 50;

/** Stands in for a definition removed from the config: an adopted VM of it is only stopped. */
function placeholderRunner(rec: VmRecord): RunnerConfig {
  // Only name/hypervisor are read on the stop path; the rest is never used for an adopted VM.
  return { name: rec.runner, hypervisor: rec.hypervisor, jobTimeoutSeconds: 0 } as RunnerConfig; // see above
}

function placeholderNetwork(): NetworkConfig {
  // Never used: an adopted VM does not prepare its network again.
  return { name: '' } as NetworkConfig; // see above
}
