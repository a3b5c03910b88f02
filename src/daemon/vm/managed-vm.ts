/**
 * One VM's life, as the supervisor runs it: the per-VM state machine.
 *
 * It persists every state change first (core/vm-state.ts checks the move),
 * then makes the host side (work dir, disks, address + tap), starts the
 * hypervisor driver (`booting`), watches the serial console for the
 * guest's markers (`running` on "booted"), enforces the boot timeout and
 * the maximum lifetime, and when the VMM ends — for whatever reason —
 * tears everything down and records the end (`stopped` or `failed`).
 *
 * Invariants:
 *  - teardown runs exactly once per VM, on every path (also when
 *    preparation or the start failed half-way), and each of its steps is
 *    idempotent, so the start-up sweep can run them again after a crash;
 *  - a VM reaches a terminal state only after its teardown;
 *  - state changes run one at a time, in order (`serial`);
 *  - secrets (the guest environment) are never logged; only key names are.
 */
import type { NetworkConfig, RunnerConfig } from '../../config/types.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import { parseMarker } from '../../core/guest-contract.ts';
import { runnerName } from '../../core/ids.ts';
import type { ConsoleMarker } from '../../core/guest-contract.ts';
import { checkTransition, classifyEnd, isTerminal } from '../../core/vm-state.ts';
import type { VmState } from '../../core/vm-state.ts';
import { ConsoleLog, consoleLogPath, LineSplitter } from './console-log.ts';
import type { HypervisorDriver, RunningVm, VmExit, VmSpec } from './ports.ts';
import type { GuestEnv, Logger, StopRequest, SupervisorDeps, VmHandle, VmInfo, VmOutcome } from './supervisor-types.ts';
import { buildVmSpec, guestSettings } from './vm-spec.ts';
import type { VmRecord, VmRecordPatch } from './vm-store.ts';
import { keepAliveTimers } from '../loop.ts';
import type { LoopTimers } from '../loop.ts';

export interface Limits {
  readonly bootTimeoutMs: number;
  readonly maxLifetimeMs: number | null;
}

/** One VM's life. Made only by the supervisor (launch, adoption); callers see it as a VmHandle. */
export class ManagedVm implements VmHandle {
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
  private readonly clockTimers: LoopTimers;
  private timers: unknown[] = [];
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
    this.clockTimers = deps.timers ?? keepAliveTimers;
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

  /**
   * The whole life, from preparation to the terminal state, once `recorded`
   * (the commit of the VM's record) resolved: nothing is made before the
   * record is. Never rejects.
   */
  run(guestEnv: GuestEnv, recorded: Promise<void> = Promise.resolve()): void {
    void recorded.then(() => this.lifecycle(guestEnv), (err: unknown) => this.notRecorded(err)).catch((err: unknown) => this.unexpected(err));
  }

  /** The record could not be written: nothing was made, nothing is on record, the VM ends failed at once. */
  private notRecorded(err: unknown): void {
    const code: ErrorCode = isFlintError(err) ? err.code : 'FLINT_ERR_STORE_WRITE_FAILED';
    this.deps.logger.error({ vmId: this.id, code, err: errText(err) }, 'vm record could not be written; nothing was made');
    this.record = { ...this.record, state: 'failed', reason: `its record could not be written: ${errText(err)}`, endedAt: this.deps.clock.now() };
    this.failCode = code;
    for (const l of this.stateListeners) l('failed');
    this.resolveEnded({ record: this.record, code });
  }

  /**
   * Takes over a VMM started by a previous Flint process: console, exit and
   * the limits that are left (the boot timeout from the VMM's start, the
   * lifetime from the record's creation). A VM that was stopping is asked
   * to stop again. `log`: its console log, opened anew (the console file
   * holds everything since boot, so the log is rewritten from it).
   */
  resume(vm: RunningVm, log: ConsoleLog | undefined, now: number): void {
    this.vm = vm;
    this.log = log;
    this.attachConsole(vm);
    void vm.exited.then((exit) => this.onExit(exit), (err: unknown) => this.onExit({ code: null, signal: `unknown (${errText(err)})` }));
    if (this.record.state === 'stopping') {
      const reason = this.record.reason ?? 'stop requested';
      this.stopRequest = { reason, failure: false };
      const grace = this.deps.config.stopGraceMs;
      vm.stop(grace).catch(() => this.kill(vm.pid));
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
    if (this.vm !== undefined) this.kill(this.vm.pid);
    void this.finish('failed', `internal error: ${errText(err)}`, code).catch(async (again: unknown) => {
      this.deps.logger.error({ vmId: this.id, err: errText(again) }, 'vm could not be recorded as failed; the start-up sweep will');
      await this.teardown();
      this.resolveEnded({ record: this.record, code });
    });
  }

  private async lifecycle(guestEnv: GuestEnv): Promise<void> {
    const { clock, config, logger } = this.deps;
    const t0 = this.record.createdAt;
    // Asked to stop while its record was being written: nothing is made.
    if (this.stopRequest) return this.abortBeforeStart();
    // The console log does not depend on the rest of the preparation:
    // opened beside it. Both are waited for before reacting to a failure of
    // either, so teardown never runs while something is still being made.
    const [prepared, log] = await Promise.allSettled([
      this.prepare(guestEnv),
      ConsoleLog.open(this.deps.files, consoleLogPath(config.stateDir, this.id), config.consoleLogMaxBytes),
    ]);
    if (log.status === 'fulfilled') this.log = log.value;
    if (prepared.status === 'rejected') return this.failBeforeStart('FLINT_ERR_VM_PREPARE_FAILED', 'preparation failed', prepared.reason);
    if (log.status === 'rejected') return this.failBeforeStart('FLINT_ERR_VM_PREPARE_FAILED', 'the console log could not be created', log.reason);
    const spec = prepared.value;
    if (spec === undefined || this.stopRequest) return this.abortBeforeStart();
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

  /**
   * The host side of the VM: its work dir, its network lease and its
   * disks. What does not depend on each other is made at once — the work
   * dir, the lease and the guest's environment (a JIT registration: a
   * round trip to GitHub) — and all of it is waited for before reacting to
   * a failure of one, so teardown never runs while something is still being
   * made. The disks carry the guest's settings, so they come last.
   * Undefined when a stop was asked for meanwhile (nothing more is made).
   */
  private async prepare(guestEnv: GuestEnv): Promise<VmSpec | undefined> {
    const { disks, network, logger } = this.deps;
    const runner = this.runnerConfig;
    const [dir, net, env] = await Promise.allSettled([
      this.deps.files.makeDir(this.record.workDir, 0o711),
      this.ensureNetwork(this.net).then(() => network.attach(this.id, runnerName(this.id), this.net, { uid: runner.uid, gid: runner.gid })),
      typeof guestEnv === 'function' ? guestEnv(this.id) : guestEnv,
    ]);
    if (net.status === 'fulfilled') this.address = net.value.guest.ipv4.address;
    for (const r of [dir, net, env]) if (r.status === 'rejected') throw r.reason;
    if (net.status !== 'fulfilled' || env.status !== 'fulfilled' || this.stopRequest) return undefined;
    const lease = net.value;
    const content = guestSettings(this.id, runner, env.value);
    const made = await disks.prepare(this.id, this.record.workDir, runner.diskSize, content, { uid: runner.uid, gid: runner.gid });
    logger.debug({ vmId: this.id, tap: lease.tap, address: lease.guest.ipv4.address, guestEnvKeys: Object.keys(content) }, 'vm host side prepared');
    return buildVmSpec(this.id, this.record.workDir, runner, made, lease);
  }

  private armTimers(bootLeftMs = this.limits.bootTimeoutMs, lifetimeLeftMs = this.limits.maxLifetimeMs): void {
    const { bootTimeoutMs, maxLifetimeMs } = this.limits;
    const boot = this.clockTimers.setTimeout(() => {
      if (this.record.state === 'booting') {
        this.requestStop({ reason: `no booted marker within ${bootTimeoutMs} ms (boot timeout)`, failure: true, code: 'FLINT_ERR_VM_BOOT_TIMEOUT' });
      }
    }, Math.max(0, bootLeftMs));
    this.timers.push(boot);
    if (lifetimeLeftMs !== null) {
      this.timers.push(this.clockTimers.setTimeout(() => {
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
      try {
        await this.transitionNow('stopping', { reason: req.reason }, req.reason);
        this.deps.logger.info({ vmId: this.id, reason: req.reason }, 'vm stopping');
      } catch (err) {
        // The store is failing (or another host marked this VM lost): the VM
        // is stopped all the same — a shutdown must not wait on the database.
        this.deps.logger.warn({ vmId: this.id, reason: req.reason, err: errText(err) }, 'vm stopping; the stop could not be recorded');
      }
      const vm = this.vm;
      if (vm === undefined) return;
      const grace = this.deps.config.stopGraceMs;
      // The driver kills after the grace; if even that hangs, kill the pid.
      const backstop = this.clockTimers.setTimeout(() => this.kill(vm.pid), grace + 5000);
      vm.stop(grace).catch((err: unknown) => {
        this.deps.logger.warn({ vmId: this.id, err: errText(err) }, 'driver stop failed; killing the VMM');
        this.kill(vm.pid);
      }).finally(() => this.clockTimers.clearTimeout(backstop));
    });
  }

  private onExit(exit: VmExit): void {
    // The VMM is gone: its host side can go at once, beside state changes
    // still being written (a marker the guest printed as it ended). Only
    // the terminal state waits for it, in order behind those changes.
    void this.teardown();
    void this.serial(async () => {
      if (isTerminal(this.record.state)) return;
      for (const t of this.timers) this.clockTimers.clearTimeout(t);
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
      for (const t of this.timers) this.clockTimers.clearTimeout(t);
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

  /** SIGKILL through the host's processes port; a process already gone is no error. */
  private kill(pid: number): void {
    this.deps.processes.kill(pid);
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
      await bestEffort(logger, this.id, 'work dir removal', () => this.deps.files.removeDir(workDir));
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

export async function bestEffort(logger: Logger, vmId: string, step: string, fn: () => Promise<unknown> | undefined): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.warn({ vmId, step, err: errText(err) }, 'vm teardown step failed; the start-up sweep retries it');
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
