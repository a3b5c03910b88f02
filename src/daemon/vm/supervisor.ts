/**
 * The VM supervisor: makes, watches and destroys VMs.
 *
 * For each VM it persists the record first (state `preparing`), then makes
 * the host side (work dir, disks, address + tap), starts the hypervisor
 * driver (`booting`), watches the serial console for the guest's markers
 * (`running` on "booted"), enforces the boot timeout and the maximum
 * lifetime, and when the VMM ends — for whatever reason — tears everything
 * down and records the end (`stopped` or `failed`). State changes go through
 * core/vm-state.ts and are persisted before the supervisor acts on them.
 *
 * Invariants:
 *  - teardown runs exactly once per VM, on every path (also when
 *    preparation or the start failed half-way), and each of its steps is
 *    idempotent, so the start-up sweep can run them again after a crash;
 *  - a VM reaches a terminal state only after its teardown;
 *  - secrets (the guest environment) are never logged; only key names are.
 *
 * Named loop: "console-retention" deletes console logs older than the
 * retention (startConsoleRetention, on daemon/loop.ts). Nothing starts at
 * construction.
 */
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { HypervisorKind, NetworkConfig, RunnerConfig } from '../../config/types.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import { networkKernelArgs, parseMarker } from '../../core/guest-contract.ts';
import type { ConsoleMarker } from '../../core/guest-contract.ts';
import { runnerName, vmId } from '../../core/ids.ts';
import { checkTransition, classifyEnd, isTerminal } from '../../core/vm-state.ts';
import type { VmState } from '../../core/vm-state.ts';
import { ConsoleLog, consoleLogPath, LineSplitter, pruneConsoleLogs } from './console-log.ts';
import type { HostProcesses } from './host-processes.ts';
import type { DiskProvisioner, HostNetwork, HypervisorDriver, RunningVm, VmExit, VmSpec } from './ports.ts';
import { newVmRecord } from './vm-store.ts';
import { startLoop } from '../loop.ts';
import type { Loop, LoopTimers } from '../loop.ts';
import type { VmRecord, VmRecordPatch, VmStore } from './vm-store.ts';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The subset of pino's logger the supervisor uses (pino's Logger satisfies it). */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface VmIdSource {
  next(): Promise<string>;
}

/** VM ids from the store's persisted counter: never repeated, even across restarts. */
export function persistedVmIds(store: VmStore, instanceId: string): VmIdSource {
  return { next: async () => vmId(instanceId, await store.nextSequence(instanceId)) };
}

export interface SupervisorConfig {
  readonly stateDir: string;
  readonly instanceId: string;
  readonly networks: readonly NetworkConfig[];
  /** No "booted" marker within this long after the VMM started → stop, failed. */
  readonly bootTimeoutMs: number;
  /** Added to a runner's job timeout to get the VM's maximum lifetime. */
  readonly lifetimeMarginMs: number;
  /** How long a stopping guest gets to power off before the VMM is killed. */
  readonly stopGraceMs: number;
  /** Cap of one console log (first half + last half are kept). */
  readonly consoleLogMaxBytes: number;
  /** How long console logs are kept after their VM ended. */
  readonly consoleRetentionMs: number;
  /** Interval of the "console-retention" loop. */
  readonly consoleRetentionIntervalMs: number;
}

export const DEFAULT_SUPERVISOR_TUNING = {
  bootTimeoutMs: 120_000,
  lifetimeMarginMs: 10 * 60_000,
  stopGraceMs: 10_000,
  consoleLogMaxBytes: 8 * 1024 * 1024,
  consoleRetentionMs: 24 * 3600_000,
  consoleRetentionIntervalMs: 15 * 60_000,
} as const;

export interface SupervisorDeps {
  readonly drivers: Partial<Record<HypervisorKind, HypervisorDriver>>;
  readonly network: HostNetwork;
  readonly disks: DiskProvisioner;
  readonly store: VmStore;
  readonly clock: Clock;
  readonly ids: VmIdSource;
  readonly logger: Logger;
  readonly processes: HostProcesses;
  readonly config: SupervisorConfig;
}

/** What the guest gets on its config drive; a function receives the VM id first (to register a runner under its name). */
export type GuestEnv = Readonly<Record<string, string>> | ((vmId: string) => Promise<Readonly<Record<string, string>>>);

export interface LaunchOptions {
  /** Overrides the maximum lifetime (job timeout + margin); null = none (interactive mode). */
  readonly maxLifetimeMs?: number | null;
  readonly bootTimeoutMs?: number;
}

export interface VmOutcome {
  readonly record: VmRecord;
  /** Set when the VM failed for a reason with a catalogue code. */
  readonly code?: ErrorCode;
}

export interface VmHandle {
  readonly id: string;
  readonly runner: string;
  readonly state: VmState;
  /** When the guest reported its runner started (epoch ms), if it did; an adopted VM may have before this process saw it. */
  readonly runnerStartedAt?: number | null;
  /** Settles (never rejects) when the VM is in a terminal state, after teardown. */
  readonly ended: Promise<VmOutcome>;
  onConsole(listener: (chunk: Buffer) => void): () => void;
  onMarker(listener: (marker: ConsoleMarker, atMs: number) => void): () => void;
  onState(listener: (state: VmState) => void): () => void;
  /** Keystrokes for the serial console; dropped before the VMM runs. */
  writeConsole(data: Buffer | string): void;
  /** Stops the VM (a normal stop: ends `stopped` unless something else failed first). */
  stop(reason?: string): Promise<VmOutcome>;
}

/** A live VM as the status surfaces show it: its record's figures and its guest address. */
export interface VmInfo {
  readonly id: string;
  readonly runner: string;
  readonly state: VmState;
  /** The guest's IPv4 address once its lease is made. */
  readonly address: string | undefined;
  readonly createdAt: number;
  readonly prepareMs: number | null;
  readonly startedAt: number | null;
  readonly bootedAt: number | null;
  readonly runnerStartedAt: number | null;
}

export interface SweepReport {
  /** Records of a previous run that were marked failed. */
  readonly vms: string[];
  /** Leftover VMM processes killed. */
  readonly killed: number[];
  /** What network sweep removed (taps, leases). */
  readonly network: string[];
  /** Work directories removed that had no unfinished record. */
  readonly strayDirs: string[];
  /** Unfinished VMs left alone because their owning Flint process is alive. */
  readonly others: string[];
}

interface StopRequest {
  readonly reason: string;
  readonly failure: boolean;
  readonly code?: ErrorCode;
}

export const VMS_DIR = 'vms';

export class VmSupervisor {
  private readonly deps: SupervisorDeps;
  private readonly live = new Map<string, VmEntry>();
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

  /** Starts one VM from a runner definition. Resolves once the record is persisted; follow `handle.ended`. */
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
    await this.deps.store.insert(record);
    const maxLifetimeMs = options.maxLifetimeMs === undefined ? runner.jobTimeoutSeconds * 1000 + config.lifetimeMarginMs : options.maxLifetimeMs;
    const entry = new VmEntry(this.deps, record, runner, net, driver, {
      bootTimeoutMs: options.bootTimeoutMs ?? config.bootTimeoutMs, maxLifetimeMs,
    }, (n) => this.ensureNetwork(n));
    this.live.set(id, entry);
    void entry.ended.then(() => this.live.delete(id));
    this.deps.logger.info({ vmId: id, runner: runner.name, hypervisor: runner.hypervisor }, 'vm launching');
    entry.run(guestEnv);
    // shutdown() ran while this launch awaited the id or the insert: it did
    // not see this VM, so stop it here (it never boots).
    if (this.closed) void entry.stop('flint is stopping');
    return entry;
  }

  /**
   * Start-up adoption: run before the sweep. Every unfinished VM of this
   * instance whose owning Flint process is dead and whose VMM is still the
   * process it recorded (pid and start time) is taken over: watched,
   * timed and stopped by this supervisor as if it had launched it, keeping
   * its tap, lease and disks. A VM whose definition is no longer configured
   * is adopted too, then stopped. What cannot be adopted is left for
   * `sweep()`.
   */
  async adopt(runners: readonly RunnerConfig[]): Promise<VmHandle[]> {
    const { store, config, logger, processes, clock } = this.deps;
    const adopted: VmHandle[] = [];
    for (const rec of await store.listUnfinished(config.instanceId)) {
      if (this.live.has(rec.id)) continue;
      if (rec.owner !== null && rec.owner !== processes.self() && processes.isOwnerAlive(rec.owner)) continue;
      if (rec.state !== 'booting' && rec.state !== 'running' && rec.state !== 'stopping') continue;
      if (rec.pid === null || rec.vmmStartTime === null || rec.controlSocket === null || rec.consoleFile === null) continue;
      const driver = this.deps.drivers[rec.hypervisor];
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
      const entry = new VmEntry(this.deps, { ...rec, owner }, definition ?? placeholderRunner(rec), net ?? placeholderNetwork(), driver, {
        bootTimeoutMs: config.bootTimeoutMs,
        maxLifetimeMs: definition === undefined ? 0 : definition.jobTimeoutSeconds * 1000 + config.lifetimeMarginMs,
      }, (n) => this.ensureNetwork(n));
      this.live.set(rec.id, entry);
      void entry.ended.then(() => this.live.delete(rec.id));
      entry.resume(vm, clock.now());
      if (definition === undefined) void entry.stop(`runner definition "${rec.runner}" is no longer configured`);
      logger.info({ vmId: rec.id, runner: rec.runner, state: rec.state, pid: rec.pid }, 'vm of a previous Flint process adopted');
      adopted.push(entry);
    }
    return adopted;
  }

  /**
   * Start-up sweep: run before anything else starts (after `adopt()`). Cleans up after a
   * previous run of THIS instance (same instance id), and only that, and
   * never what a live VM (adopted or launched here) owns:
   * kills leftover VMM processes, runs driver cleanup, removes disks, work
   * dirs, taps and leases, and marks the records failed ("flint restarted").
   */
  async sweep(): Promise<SweepReport> {
    const { store, config, logger, processes, network, disks, clock } = this.deps;
    const report = { vms: [] as string[], killed: [] as number[], network: [] as string[], strayDirs: [] as string[], others: [] as string[] };
    for (const rec of await store.listUnfinished(config.instanceId)) {
      if (this.live.has(rec.id)) continue; // ours, alive in this process: not a leftover
      if (rec.owner !== null && rec.owner !== processes.self() && processes.isOwnerAlive(rec.owner)) {
        // Supervised by another live Flint process of this instance.
        report.others.push(rec.id);
        continue;
      }
      const pids = processes.findVm(rec.id);
      for (const pid of pids) processes.kill(pid);
      await waitUntil(() => pids.every((p) => !processes.isAlive(p)), 10_000);
      report.killed.push(...pids);
      const driver = this.deps.drivers[rec.hypervisor];
      await bestEffort(logger, rec.id, 'driver cleanup', () => driver?.cleanup(rec.id, rec.workDir));
      await bestEffort(logger, rec.id, 'network detach', () => network.detach(rec.id));
      await bestEffort(logger, rec.id, 'disk removal', () => disks.remove(rec.id, rec.workDir));
      await bestEffort(logger, rec.id, 'work dir removal', async () => rmSync(rec.workDir, { recursive: true, force: true }));
      checkTransition(rec.id, rec.state, 'failed', 'start-up sweep');
      const ok = await store.update(rec.id, rec.state, { state: 'failed', reason: 'flint restarted', endedAt: clock.now() });
      if (!ok) logger.warn({ vmId: rec.id }, 'vm record changed during the sweep; left as is');
      report.vms.push(rec.id);
      logger.warn({ vmId: rec.id, stateWas: rec.state, killed: pids }, 'vm left by a previous run cleaned up');
    }
    // Work dirs of this instance with no unfinished record (e.g. a teardown
    // that died between removing the record's resources and the dir).
    const liveIds = new Set([...this.live.keys(), ...report.others]);
    const vmsDir = join(config.stateDir, VMS_DIR);
    for (const name of safeReaddir(vmsDir)) {
      if (!name.startsWith(`${config.instanceId}-`) || liveIds.has(name)) continue;
      const rec = await store.get(name);
      if (rec !== undefined && !isTerminal(rec.state)) continue;
      const dir = join(vmsDir, name);
      const driver = rec === undefined ? undefined : this.deps.drivers[rec.hypervisor];
      await bestEffort(logger, name, 'driver cleanup', () => driver?.cleanup(name, dir));
      await bestEffort(logger, name, 'disk removal', () => disks.remove(name, dir));
      rmSync(dir, { recursive: true, force: true });
      report.strayDirs.push(name);
    }
    report.network.push(...await network.sweep(liveIds));
    logger.info({ ...report, vms: report.vms.length }, 'start-up sweep done');
    return report;
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
        const removed = pruneConsoleLogs(config.stateDir, config.instanceId, clock.now(), config.consoleRetentionMs, new Set(this.live.keys()));
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

interface Limits {
  readonly bootTimeoutMs: number;
  readonly maxLifetimeMs: number | null;
}

/** One VM's life. Private to the supervisor; callers see it as a VmHandle. */
class VmEntry implements VmHandle {
  readonly id: string;
  readonly runner: string;
  readonly ended: Promise<VmOutcome>;
  private readonly deps: SupervisorDeps;
  private readonly runnerConfig: RunnerConfig;
  private readonly net: NetworkConfig;
  private readonly driver: HypervisorDriver;
  private readonly limits: Limits;
  private readonly ensureNetwork: (net: NetworkConfig) => Promise<void>;
  private record: VmRecord;
  private vm: RunningVm | undefined;
  private log: ConsoleLog | undefined;
  private address: string | undefined;
  private stopRequest: StopRequest | undefined;
  private failCode: ErrorCode | undefined;
  private timers: ReturnType<typeof setTimeout>[] = [];
  /** State changes run one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  private teardownDone: Promise<void> | undefined;
  private resolveEnded!: (o: VmOutcome) => void; // assigned in the constructor's Promise executor
  private readonly consoleListeners = new Set<(chunk: Buffer) => void>();
  private readonly markerListeners = new Set<(m: ConsoleMarker, at: number) => void>();
  private readonly stateListeners = new Set<(s: VmState) => void>();

  constructor(deps: SupervisorDeps, record: VmRecord, runner: RunnerConfig, net: NetworkConfig, driver: HypervisorDriver, limits: Limits,
    ensureNetwork: (net: NetworkConfig) => Promise<void>) {
    this.deps = deps;
    this.record = record;
    this.id = record.id;
    this.runner = runner.name;
    this.runnerConfig = runner;
    this.net = net;
    this.driver = driver;
    this.limits = limits;
    this.ensureNetwork = ensureNetwork;
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
  }

  get state(): VmState {
    return this.record.state;
  }

  get runnerStartedAt(): number | null {
    return this.record.runnerStartedAt;
  }

  info(): VmInfo {
    const r = this.record;
    return {
      id: r.id, runner: r.runner, state: r.state, address: this.address, createdAt: r.createdAt,
      prepareMs: r.prepareMs, startedAt: r.startedAt, bootedAt: r.bootedAt, runnerStartedAt: r.runnerStartedAt,
    };
  }

  onConsole(listener: (chunk: Buffer) => void): () => void {
    this.consoleListeners.add(listener);
    return () => this.consoleListeners.delete(listener);
  }

  onMarker(listener: (m: ConsoleMarker, at: number) => void): () => void {
    this.markerListeners.add(listener);
    return () => this.markerListeners.delete(listener);
  }

  onState(listener: (s: VmState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  writeConsole(data: Buffer | string): void {
    if (this.vm !== undefined && !this.vm.consoleInput.destroyed) this.vm.consoleInput.write(data);
  }

  stop(reason = 'stop requested'): Promise<VmOutcome> {
    this.requestStop({ reason, failure: false });
    return this.ended;
  }

  /** The whole life, from preparation to the terminal state. Never rejects. */
  run(guestEnv: GuestEnv): void {
    void this.lifecycle(guestEnv).catch((err: unknown) => this.unexpected(err));
  }

  /**
   * Takes over a VMM started by a previous Flint process: console, exit and
   * the limits that are left (the boot timeout from the VMM's start, the
   * lifetime from the record's creation). A VM that was stopping is asked
   * to stop again.
   */
  resume(vm: RunningVm, now: number): void {
    this.vm = vm;
    // The console file holds everything since boot: the log is rewritten from it.
    this.log = new ConsoleLog(consoleLogPath(this.deps.config.stateDir, this.id), this.deps.config.consoleLogMaxBytes);
    this.attachConsole(vm);
    void vm.exited.then((exit) => this.onExit(exit), (err: unknown) => this.onExit({ code: null, signal: `unknown (${errText(err)})` }));
    if (this.record.state === 'stopping') {
      const reason = this.record.reason ?? 'stop requested';
      this.stopRequest = { reason, failure: false };
      const grace = this.deps.config.stopGraceMs;
      vm.stop(grace).catch(() => killQuietly(vm.pid));
      return;
    }
    const sinceStart = now - (this.record.startedAt ?? now);
    const sinceCreated = now - this.record.createdAt;
    this.armTimers(this.limits.bootTimeoutMs - sinceStart, this.limits.maxLifetimeMs === null ? null : this.limits.maxLifetimeMs - sinceCreated);
  }

  /**
   * Only a bug or a store conflict gets here (every expected failure is
   * handled where it happens). Still tear down and settle `ended`, so no
   * caller waits forever and nothing leaks.
   */
  private unexpected(err: unknown): void {
    const code: ErrorCode = isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL';
    this.deps.logger.error({ vmId: this.id, code, err: errText(err) }, 'vm lifecycle failed unexpectedly');
    if (this.vm !== undefined) killQuietly(this.vm.pid);
    void this.finish('failed', `internal error: ${errText(err)}`, code).catch(async (again: unknown) => {
      this.deps.logger.error({ vmId: this.id, err: errText(again) }, 'vm could not be recorded as failed; the start-up sweep will');
      await this.teardown();
      this.resolveEnded({ record: this.record, code });
    });
  }

  private async lifecycle(guestEnv: GuestEnv): Promise<void> {
    const { clock, disks, network, config, logger } = this.deps;
    const runner = this.runnerConfig;
    const t0 = this.record.createdAt;
    let spec: VmSpec;
    try {
      await mkdir(this.record.workDir, { recursive: true, mode: 0o711 });
      await this.ensureNetwork(this.net);
      const env = typeof guestEnv === 'function' ? await guestEnv(this.id) : guestEnv;
      if (this.stopRequest) return await this.abortBeforeStart();
      const content: Record<string, string> = {
        FLINT_RUNNER_NAME: runnerName(this.id),
        FLINT_JOB_TIMEOUT: String(runner.jobTimeoutSeconds),
        ...env,
      };
      // Disks and the network lease are independent: make them at once. Wait
      // for BOTH to settle before reacting to a failure of one, so teardown
      // never runs while the other is still creating something.
      const [diskResult, netResult] = await Promise.allSettled([
        disks.prepare(this.id, this.record.workDir, runner.diskSize, content, { uid: runner.uid, gid: runner.gid }),
        network.attach(this.id, runnerName(this.id), this.net, { uid: runner.uid, gid: runner.gid }),
      ]);
      if (diskResult.status === 'rejected') throw diskResult.reason;
      if (netResult.status === 'rejected') throw netResult.reason;
      const vmDisks = diskResult.value;
      const lease = netResult.value;
      this.address = lease.guest.ipv4.address;
      const kernelArgs = ['console=ttyS0 reboot=k panic=1', networkKernelArgs(lease.guest), runner.kernelArgs]
        .map((s) => s.trim()).filter((s) => s.length > 0).join(' ');
      spec = {
        id: this.id, vcpus: runner.cpuCount, memoryMib: runner.memorySize, smt: runner.smt, kernel: runner.kernel,
        ...(runner.initrd === undefined ? {} : { initrd: runner.initrd }),
        kernelArgs,
        drives: { rootfs: runner.filesystem, scratch: vmDisks.scratch, config: vmDisks.config },
        net: { tap: lease.tap, mac: lease.mac },
        workDir: this.record.workDir, uid: runner.uid, gid: runner.gid,
        ...(runner.hypervisor === 'firecracker' ? { firecracker: { jailer: runner.jailer, binary: runner.firecracker } } : {}),
      };
      logger.debug({ vmId: this.id, tap: lease.tap, address: lease.guest.ipv4.address, guestEnvKeys: Object.keys(content) }, 'vm host side prepared');
    } catch (err) {
      return this.failBeforeStart('FLINT_ERR_VM_PREPARE_FAILED', 'preparation failed', err);
    }
    if (this.stopRequest) return this.abortBeforeStart();
    try {
      this.log = await ConsoleLog.open(consoleLogPath(config.stateDir, this.id), config.consoleLogMaxBytes);
    } catch (err) {
      return this.failBeforeStart('FLINT_ERR_VM_PREPARE_FAILED', 'the console log could not be created', err);
    }
    if (this.stopRequest) return this.abortBeforeStart();
    const prepareMs = clock.now() - t0;
    let vm: RunningVm;
    try {
      vm = await this.driver.start(spec);
    } catch (err) {
      return this.failBeforeStart('FLINT_ERR_VM_START_FAILED', 'the VMM did not start', err);
    }
    this.vm = vm;
    this.attachConsole(vm);
    void vm.exited.then((exit) => this.onExit(exit), (err: unknown) => this.onExit({ code: null, signal: `unknown (${errText(err)})` }));
    await this.transition('booting', {
      pid: vm.pid, vmmStartTime: vm.handle.startTime, controlSocket: vm.handle.controlSocket, consoleFile: vm.handle.consoleFile,
      startedAt: clock.now(), prepareMs,
    }, 'vmm started');
    logger.info({ vmId: this.id, pid: vm.pid, prepareMs }, 'vm booting');
    if (this.stopRequest) {
      // Asked to stop while the VMM was starting: act on it now.
      const req = this.stopRequest;
      this.stopRequest = undefined;
      this.requestStop(req);
      return;
    }
    this.armTimers();
  }

  private armTimers(bootLeftMs = this.limits.bootTimeoutMs, lifetimeLeftMs = this.limits.maxLifetimeMs): void {
    const { bootTimeoutMs, maxLifetimeMs } = this.limits;
    const boot = setTimeout(() => {
      if (this.record.state === 'booting') {
        this.requestStop({ reason: `no booted marker within ${bootTimeoutMs} ms (boot timeout)`, failure: true, code: 'FLINT_ERR_VM_BOOT_TIMEOUT' });
      }
    }, Math.max(0, bootLeftMs));
    this.timers.push(boot);
    if (lifetimeLeftMs !== null) {
      this.timers.push(setTimeout(() => {
        this.requestStop({ reason: `maximum lifetime of ${maxLifetimeMs} ms reached`, failure: true });
      }, Math.max(0, lifetimeLeftMs)));
    }
  }

  private attachConsole(vm: RunningVm): void {
    const splitter = new LineSplitter();
    vm.console.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.log?.write(buf);
      for (const l of this.consoleListeners) l(buf);
      for (const line of splitter.feed(buf)) {
        const marker = parseMarker(line);
        if (marker !== undefined) this.handleMarker(marker);
      }
    });
    vm.console.on('error', () => { /* the exit handler reports the end */ });
  }

  private handleMarker(marker: ConsoleMarker): void {
    const at = this.deps.clock.now();
    for (const l of this.markerListeners) l(marker, at);
    const since = at - this.record.createdAt;
    void this.serial(async () => {
      if (isTerminal(this.record.state)) return;
      if (marker.kind === 'booted') {
        if (this.record.state === 'booting') {
          await this.transitionNow('running', { bootedAt: at }, 'booted marker');
          this.deps.logger.info({ vmId: this.id, bootMs: since }, 'vm running');
        } else if (this.record.bootedAt === null) {
          await this.patch({ bootedAt: at });
        }
      } else if (marker.kind === 'runner-started') {
        // An adopted VM's console is read again from its start: keep the first time seen.
        if (this.record.runnerStartedAt !== null) return;
        await this.patch({ runnerStartedAt: at });
        this.deps.logger.info({ vmId: this.id, runnerStartMs: since }, 'runner started in vm');
      } else {
        await this.patch({ runnerExitCode: marker.code });
        this.deps.logger.info({ vmId: this.id, exitCode: marker.code }, 'runner exited in vm');
      }
    });
  }

  private requestStop(req: StopRequest): void {
    if (this.stopRequest !== undefined || isTerminal(this.record.state)) return;
    this.stopRequest = req;
    if (this.record.state === 'preparing' && this.vm === undefined) return; // lifecycle() notices
    void this.serial(async () => {
      if (this.record.state !== 'booting' && this.record.state !== 'running') return;
      await this.transitionNow('stopping', { reason: req.reason }, req.reason);
      this.deps.logger.info({ vmId: this.id, reason: req.reason }, 'vm stopping');
      const vm = this.vm;
      if (vm === undefined) return;
      const grace = this.deps.config.stopGraceMs;
      // The driver kills after the grace; if even that hangs, kill the pid.
      const backstop = setTimeout(() => killQuietly(vm.pid), grace + 5000);
      vm.stop(grace).catch((err: unknown) => {
        this.deps.logger.warn({ vmId: this.id, err: errText(err) }, 'driver stop failed; killing the VMM');
        killQuietly(vm.pid);
      }).finally(() => clearTimeout(backstop));
    });
  }

  private onExit(exit: VmExit): void {
    void this.serial(async () => {
      if (isTerminal(this.record.state)) return;
      for (const t of this.timers) clearTimeout(t);
      const end = classifyEnd({ stateAtExit: this.record.state, ...(this.stopRequest ? { stopRequest: this.stopRequest } : {}), exit });
      this.failCode = end.state === 'failed' ? (this.stopRequest?.code ?? this.failCode) : undefined;
      await this.teardown();
      await this.transitionNow(end.state, { reason: end.reason, endedAt: this.deps.clock.now(), vmmExitCode: exit.code, vmmSignal: exit.signal }, 'vmm exited');
    }).then(() => this.settle(), (err: unknown) => this.unexpected(err));
  }

  /** Preparation or start failed: tear down what exists, record the failure. */
  private async failBeforeStart(code: ErrorCode, what: string, err: unknown): Promise<void> {
    const msg = isFlintError(err) ? `${err.code}: ${err.message}` : errText(err);
    this.deps.logger.error({ vmId: this.id, code, err: msg }, `vm ${what}`);
    await this.finish('failed', `${what}: ${msg}`, code);
  }

  /** A stop arrived before the VMM started: preparing → stopping → (teardown) → stopped. */
  private async abortBeforeStart(): Promise<void> {
    const req = this.stopRequest ?? { reason: 'stop requested', failure: false };
    await this.serial(() => this.transitionNow('stopping', { reason: req.reason }, req.reason));
    await this.finish(req.failure ? 'failed' : 'stopped', req.reason, req.code);
  }

  private async finish(state: 'stopped' | 'failed', reason: string, code?: ErrorCode): Promise<void> {
    await this.serial(async () => {
      if (isTerminal(this.record.state)) return;
      if (code !== undefined) this.failCode = code;
      for (const t of this.timers) clearTimeout(t);
      await this.teardown();
      await this.transitionNow(state, { reason, endedAt: this.deps.clock.now() }, reason);
    });
    this.settle();
  }

  private settle(): void {
    if (!isTerminal(this.record.state)) return;
    const r = this.record;
    const timings = {
      prepareMs: r.prepareMs,
      bootMs: r.bootedAt === null ? null : r.bootedAt - r.createdAt,
      runnerStartMs: r.runnerStartedAt === null ? null : r.runnerStartedAt - r.createdAt,
      totalMs: r.endedAt === null ? null : r.endedAt - r.createdAt,
    };
    const level = r.state === 'failed' ? 'warn' : 'info';
    this.deps.logger[level]({ vmId: this.id, state: r.state, reason: r.reason, runnerExitCode: r.runnerExitCode, vmmExitCode: r.vmmExitCode, vmmSignal: r.vmmSignal, ...timings }, 'vm ended');
    this.resolveEnded(this.failCode === undefined ? { record: r } : { record: r, code: this.failCode });
  }

  /** Releases everything the VM held. Runs once; every step is idempotent and attempted even if an earlier one failed. */
  private teardown(): Promise<void> {
    this.teardownDone ??= (async () => {
      const { logger, network, disks } = this.deps;
      const { workDir } = this.record;
      this.vm?.consoleInput.destroy();
      await bestEffort(logger, this.id, 'driver cleanup', () => this.driver.cleanup(this.id, workDir));
      await bestEffort(logger, this.id, 'network detach', () => network.detach(this.id));
      await bestEffort(logger, this.id, 'disk removal', () => disks.remove(this.id, workDir));
      // Asynchronous: removing a directory can wait on the file system's
      // journal, and a busy host tears down many VMs at once.
      await bestEffort(logger, this.id, 'work dir removal', () => removeWorkDir(workDir));
      this.log?.close();
    })();
    return this.teardownDone;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private transition(to: VmState, patch: VmRecordPatch, trigger: string): Promise<void> {
    return this.serial(() => this.transitionNow(to, patch, trigger));
  }

  /** Checks the move against the table, persists it, then applies it. Call only inside serial(). */
  private async transitionNow(to: VmState, patch: VmRecordPatch, trigger: string): Promise<void> {
    const from = this.record.state;
    checkTransition(this.id, from, to, trigger);
    const ok = await this.deps.store.update(this.id, from, { ...patch, state: to });
    if (!ok) {
      throw new FlintError('FLINT_ERR_VM_STATE_CONFLICT', `VM ${this.id}: stored state is no longer ${from}`, { details: { vmId: this.id, from, to } });
    }
    this.record = { ...this.record, ...patch, state: to };
    for (const l of this.stateListeners) l(to);
  }

  private async patch(patch: VmRecordPatch): Promise<void> {
    if (await this.deps.store.update(this.id, this.record.state, patch)) this.record = { ...this.record, ...patch };
  }
}

async function bestEffort(logger: Logger, vmId: string, step: string, fn: () => Promise<unknown> | undefined): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.warn({ vmId, step, err: errText(err) }, 'vm teardown step failed; the start-up sweep retries it');
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Stands in for a definition removed from the config: an adopted VM of it is only stopped. */
function placeholderRunner(rec: VmRecord): RunnerConfig {
  // Only name/hypervisor are read on the stop path; the rest is never used for an adopted VM.
  return { name: rec.runner, hypervisor: rec.hypervisor, jobTimeoutSeconds: 0 } as RunnerConfig; // see above
}

function placeholderNetwork(): NetworkConfig {
  // Never used: an adopted VM does not prepare its network again.
  return { name: '' } as NetworkConfig; // see above
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Removes a VM's work dir. Teardown has removed the disks and the driver's
 * files by now, so it is usually empty: one rmdir, not a recursive walk
 * (which costs a stat and a listing more per VM).
 */
async function removeWorkDir(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
    if (code === 'ENOENT') return;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    await rm(dir, { recursive: true, force: true });
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
