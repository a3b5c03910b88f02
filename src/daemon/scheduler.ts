/**
 * The scheduler loop ("scale"): turns demand into VMs.
 *
 * Every tick it counts, per runner definition, the queued jobs on record
 * (a count from the store, never a listing: a burst of a thousand queued
 * jobs costs a tick one indexed query) and the runners already up (starting, idle, busy), asks the pure
 * `planScale` what to start and stop, and acts: each new VM registers a
 * single-use (JIT) runner under the VM's own tagged name, carries the JIT
 * config on its config drive, and is removed from GitHub when the VM ends.
 *
 * Webhooks are hints: the store is the truth, the tick is idempotent, and a
 * job is never bound to a VM — GitHub gives a job to any idle runner whose
 * labels cover it.
 *
 * Static runners are definitions like the others (their warm pool is their
 * size). Idle runners beyond the warm pool are reaped only after the
 * definition's `idleGraceSeconds`. A launch that fails (prepare, boot, JIT
 * registration, or a VM that ends before its runner started) puts its
 * definition into back-off (core/launch-health.ts): it starts nothing —
 * and registers nothing with GitHub — until its next attempt, then one probe
 * at a time, until a runner comes online.
 */
import { planScale, type DefinitionDemand, type HostBudget } from '../core/capacity.ts';
import { FlintError, catalogue, isFlintError } from '../core/errors/index.ts';
import { runnerName } from '../core/ids.ts';
import {
  DEFAULT_BACKOFF, HEALTHY, launchAllowance, recordLaunchFailure, recordLaunchSuccess,
  type BackoffPolicy, type DefinitionHealth, type HealthState, type LaunchError,
} from '../core/launch-health.ts';
import { DEFAULTS } from '../config/defaults.ts';
import type { FlintConfig, RunnerConfig } from '../config/types.ts';
import { startLoop, type Loop, type LoopTimers } from './loop.ts';
import type { GitHubPort, RunnerScope } from './ports/github.ts';
import type { ScaleSetRunners } from './ports/scaleset-runners.ts';
import type { WorkClaims } from './ports/work-claims.ts';
import type { IntakeStore, RunnerPhase, RunnerState, RunnerStateStore } from './ports/store.ts';
import type { Logger, VmHandle, GuestEnv, LaunchOptions } from './vm/supervisor.ts';

/** What the scheduler needs of the VM supervisor. */
export interface VmLauncher {
  launch(runner: RunnerConfig, guestEnv: GuestEnv, options?: LaunchOptions): Promise<VmHandle>;
}

export interface SchedulerDeps {
  readonly config: Pick<FlintConfig, 'runners' | 'github'>;
  readonly store: Pick<IntakeStore, 'busyRunnerNames' | 'countJobsByDefinition'>;
  readonly github: Pick<GitHubPort, 'runnerGroupId' | 'createJitRunner' | 'deleteRunner'>;
  readonly vms: VmLauncher;
  readonly logger: Logger;
  readonly clock: { now(): number };
  /** Free capacity of this host for new VMs, after what running VMs hold. */
  readonly budget: () => HostBudget;
  /** Extra settings for every guest (e.g. FLINT_RUNNER_COMMAND for test images, FLINT_GITHUB_URL). */
  readonly guestExtras?: Readonly<Record<string, string>>;
  /** A sample of [0, 1) for the back-off jitter (Math.random in production). */
  readonly random: () => number;
  /** Back-off delays; `unhealthyAfter` comes from each definition. Default DEFAULT_BACKOFF. */
  readonly backoff?: Pick<BackoffPolicy, 'initialMs' | 'maxMs' | 'jitter'>;
  /** Timers of the "scale" loop started by `start()`; default the global ones. */
  readonly timers?: LoopTimers;
  /** Registration and removal of the runners of definitions in scale-set mode (`scaleSet` set); needed when there are any. */
  readonly scaleSets?: ScaleSetRunners;
  /**
   * With a fleet (PostgreSQL store): this host's demand is the queued jobs
   * it holds claims on, claimed each tick up to what it can serve now
   * (ports/work-claims.ts). None: every queued job on record is this host's.
   */
  readonly claims?: { readonly store: Pick<WorkClaims, 'claim' | 'releaseAll'>; readonly host: string; readonly ttlMs: number };
  /** Where each runner's state is kept, so a restarted Flint rebuilds it (`restore()`); none = memory only. */
  readonly runnerStates?: { readonly store: RunnerStateStore; readonly instanceId: string };
}

export type { RunnerPhase };

/** What an operator paused (`flint drain`): the whole host, or single definitions. Kept in memory only. */
export interface PausedView {
  readonly host: boolean;
  readonly definitions: readonly string[];
}

interface LiveRunner {
  readonly vm: VmHandle;
  readonly definition: RunnerConfig;
  phase: RunnerPhase;
  readonly startedAt: number;
  /** The launch-health round this VM was launched in. */
  readonly round: number;
  /** Its runner came online (or took a job): the launch succeeded. */
  online: boolean;
  /** When it last became idle (for the idle grace). */
  idleSince: number | undefined;
  /** Flint itself stopped it (scaled down): its end is no failure. */
  stoppedByFlint: boolean;
}

/** What `Scheduler.drain()` did, and what is left to wait for. */
export interface DrainStart {
  /** Idle or starting runners removed from GitHub; their VMs are being stopped. */
  readonly deregistered: number;
  /** VMs whose runner is busy (or whose registration GitHub would not delete), left to finish. */
  readonly busy: readonly VmHandle[];
  /** VMs already ending (their runner exited, or Flint stopped them): they end on their own. */
  readonly ending: readonly VmHandle[];
}

/** What the status surfaces show of a definition's launch health. */
export interface DefinitionHealthView {
  readonly state: HealthState;
  readonly consecutiveFailures: number;
  readonly lastError: LaunchError | undefined;
  /** Epoch ms before which the definition starts nothing; undefined while healthy. */
  readonly nextAttemptAt: number | undefined;
}

const ORG: RunnerScope = { kind: 'organization' };

export class Scheduler {
  private readonly deps: SchedulerDeps;
  private readonly live = new Map<string, LiveRunner>();
  private readonly groupIds = new Map<string, Promise<number>>();
  /** GitHub's id of the runner registered for each VM (set while the VM is being prepared). */
  private readonly runnerIds = new Map<string, number>();
  /** Why the JIT registration of a VM failed, when it did: a better launch error than "prepare failed". */
  private readonly jitErrors = new Map<string, unknown>();
  private readonly healthByName = new Map<string, DefinitionHealth>();
  private loop: Loop | undefined;
  /** Per-VM clean-ups (runner registration removal) still running. */
  private readonly cleanups = new Set<Promise<void>>();
  private stopped = false;
  private draining = false;
  /** Runner-state writes: one flush at a time, in order (the last write of a runner wins). */
  private persisting: Promise<void> = Promise.resolve();
  /** Each runner's latest state (null: forget it) not yet handed to a flush. */
  private readonly unpersisted = new Map<string, RunnerState | null>();
  /** Operator pauses (`flint drain` / `flint resume`): no new runner, idle ones removed. In memory: a restart resumes. */
  private hostPaused = false;
  /** In a fleet: the last claim pass held less than this host can serve (see pokeForWork). */
  private roomForClaims = true;
  private readonly pausedDefinitions = new Set<string>();

  constructor(deps: SchedulerDeps) {
    this.deps = deps;
  }

  /**
   * Rebuilds the runners of a previous Flint process from the stored
   * runner states and the VMs the supervisor adopted: call before
   * `start()`. An adopted VM keeps its phase, GitHub runner id and idle
   * time, so it counts against demand (no second VM for its job) and is
   * cleaned up when it ends. States of VMs that were not adopted are
   * dropped (their registrations go with the stale-runners loop); an
   * adopted VM without a state counts as starting.
   */
  async restore(adopted: readonly VmHandle[]): Promise<void> {
    const persisted = this.deps.runnerStates;
    const states = persisted === undefined ? [] : await persisted.store.list(persisted.instanceId);
    const byVm = new Map(states.map((st) => [st.vmId, st]));
    for (const st of states) {
      if (!adopted.some((vm) => vm.id === st.vmId)) await persisted?.store.remove(st.vmId);
    }
    for (const vm of adopted) {
      const def = this.deps.config.runners.find((d) => d.name === vm.runner);
      if (def === undefined || this.live.has(vm.id)) continue;
      const st = byVm.get(vm.id);
      if (st !== undefined && st.githubRunnerId !== null) this.runnerIds.set(vm.id, st.githubRunnerId);
      // A runner that came online while no Flint watched (its marker is on record) is idle, not starting.
      const onlineMeanwhile = (st === undefined || st.phase === 'starting') && typeof vm.runnerStartedAt === 'number';
      const phase = onlineMeanwhile ? 'idle' : st?.phase ?? 'starting';
      const live: LiveRunner = {
        vm, definition: def, phase, startedAt: st?.startedAt ?? this.deps.clock.now(), round: this.healthOf(def.name).round,
        online: phase !== 'starting', idleSince: onlineMeanwhile ? this.deps.clock.now() : st?.idleSince ?? undefined, stoppedByFlint: phase === 'ending',
      };
      this.live.set(vm.id, live);
      this.follow(live);
      this.persist(live);
      this.deps.logger.info({ vm: vm.id, runner: def.name, phase }, 'runner of a previous Flint process adopted');
    }
  }

  /** Runs the "scale" loop: a tick at once, then every `intervalMs` and on `poke()`, until `stop()`. Hands it back for the status surfaces. */
  start(intervalMs: number): Loop {
    this.loop = startLoop({
      name: 'scale', intervalMs, runAtStart: true, run: () => this.tick(), logger: this.deps.logger, now: () => this.deps.clock.now(),
      ...(this.deps.timers === undefined ? {} : { timers: this.deps.timers }),
    });
    return this.loop;
  }

  /** Stops the loop; with a fleet, gives this host's claims up so other hosts take those jobs at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop?.stop();
    const claims = this.deps.claims;
    if (claims !== undefined) {
      await claims.store.releaseAll(claims.host).catch((err: unknown) => {
        this.deps.logger.warn({ err: errText(err) }, 'could not give this host\'s work claims up; they expire on their own');
      });
    }
  }

  /**
   * The first step of a graceful shutdown: starts no VM any more, removes
   * every idle or starting runner from GitHub and stops its VM, and hands
   * back the VMs that must be waited for. A runner GitHub refuses to delete
   * has just taken a job: its VM lives on as busy. Busy runners are
   * recognised from the in-progress jobs on record (read once more here, so
   * news that arrived since the last tick counts).
   */
  async drain(): Promise<DrainStart> {
    this.draining = true;
    // After this no tick runs and none is under way: no launch is in flight.
    await this.stop();
    this.markBusy(await this.deps.store.busyRunnerNames());
    let deregistered = 0;
    for (const r of [...this.live.values()]) {
      if (r.phase !== 'idle' && r.phase !== 'starting') continue;
      const removed = await this.deregister(r, 'flint is draining: idle runner removed').catch((err: unknown) => {
        this.deps.logger.warn({ vm: r.vm.id, err: errText(err) }, 'could not remove an idle runner while draining; waiting for it as if busy');
        return false;
      });
      if (removed) deregistered += 1;
      // Refused: it just took a job (or GitHub failed us): it may run one, so it is waited for.
      else {
        r.phase = 'busy';
        this.persist(r);
      }
    }
    const pick = (p: RunnerPhase): VmHandle[] => [...this.live.values()].filter((r) => r.phase === p).map((r) => r.vm);
    return { deregistered, busy: pick('busy'), ending: pick('ending') };
  }

  /** True once `drain()` was called: the status surfaces say "draining". */
  isDraining(): boolean {
    return this.draining;
  }

  /**
   * Resolves when the clean-up of every VM this scheduler started has run
   * (its runner registration removed): after the VMs have been stopped, so
   * no GitHub call outlives the daemon.
   */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
    await this.persisting;
  }

  /** Asks for a tick soon (e.g. after the intake stored a queued job); ticks never overlap. No-op before `start()`. */
  poke(): void {
    if (!this.stopped) this.loop?.poke();
  }

  /**
   * Another host announced work (a queued job stored, claims given up): a
   * tick soon, unless this host's last claim pass already held all it can
   * serve — then there is nothing it could claim, and a VM that ends pokes
   * the scheduler anyway. Keeps a full host from ticking for every webhook
   * the fleet receives.
   */
  pokeForWork(): void {
    if (this.roomForClaims) this.poke();
  }

  /** Launch health of every definition, for the status surfaces. */
  health(): Record<string, DefinitionHealthView> {
    const out: Record<string, DefinitionHealthView> = {};
    for (const d of this.deps.config.runners) {
      const h = this.healthOf(d.name);
      out[d.name] = { state: h.state, consecutiveFailures: h.consecutiveFailures, lastError: h.lastError, nextAttemptAt: h.nextAttemptAt };
    }
    return out;
  }

  /**
   * An operator's drain of one definition (or, without a name, of the host)
   * while Flint keeps running: it starts no runner for it any more, and the
   * next pass removes its idle runners from GitHub and stops their VMs
   * (starting ones once they are idle); busy ones finish their jobs.
   * False for an unknown definition.
   */
  pause(definition?: string): boolean {
    if (definition === undefined) this.hostPaused = true;
    else if (this.deps.config.runners.some((d) => d.name === definition)) this.pausedDefinitions.add(definition);
    else return false;
    this.poke();
    return true;
  }

  /** Undoes `pause` (without a name: the host's pause and every definition's). False for an unknown definition. */
  resume(definition?: string): boolean {
    if (definition === undefined) {
      this.hostPaused = false;
      this.pausedDefinitions.clear();
    } else if (this.deps.config.runners.some((d) => d.name === definition)) this.pausedDefinitions.delete(definition);
    else return false;
    this.poke();
    return true;
  }

  paused(): PausedView {
    return { host: this.hostPaused, definitions: [...this.pausedDefinitions] };
  }

  private isPaused(name: string): boolean {
    return this.hostPaused || this.pausedDefinitions.has(name);
  }

  /** The runner phase of every VM this scheduler started, by VM id, for the status surfaces. */
  runnerPhases(): Map<string, RunnerPhase> {
    return new Map([...this.live].map(([id, r]) => [id, r.phase]));
  }

  /** Counts per definition, for metrics and tests. */
  snapshot(): Record<string, Record<RunnerPhase, number>> {
    const out: Record<string, Record<RunnerPhase, number>> = {};
    for (const r of this.live.values()) {
      const counts = (out[r.definition.name] ??= { starting: 0, idle: 0, busy: 0, ending: 0 });
      counts[r.phase] += 1;
    }
    return out;
  }

  async tick(): Promise<void> {
    // Both reads are asked for at once, in-progress first. A job that moves
    // from queued to in_progress between two reads that are not one snapshot
    // (another commit ran in between) must not count twice: as queued demand
    // AND as its runner's busy mark, which would start a VM nobody needs.
    // Read this way it counts at most once too few, which the in_progress
    // delivery's poke corrects at once. (SQLite answers both from one state.)
    const claims = this.deps.claims;
    const [running, counted] = await Promise.all([
      this.deps.store.busyRunnerNames(),
      claims === undefined ? this.deps.store.countJobsByDefinition('queued') : undefined,
    ]);
    this.markBusy(running);
    const now = this.deps.clock.now();
    // In a fleet the claim comes after the in-progress read, for the same reason.
    let queued = counted ?? new Map<string, number>();
    if (claims !== undefined) {
      const servable = this.servable(now);
      queued = await claims.store.claim(claims.host, servable, now, claims.ttlMs);
      this.roomForClaims = [...servable].some(([name, n]) => n > (queued.get(name) ?? 0));
    }
    const demand = this.demand(queued, now);
    const plan = planScale(demand, this.deps.budget());
    if (plan.deferredForBudget > 0) {
      this.deps.logger.warn({ deferred: plan.deferredForBudget }, 'host capacity is spent: some runners wait for VMs to end');
    }
    for (const def of this.deps.config.runners) {
      const n = plan.start.get(def.name) ?? 0;
      const go = (): boolean => !this.stopped && !this.isPaused(def.name);
      // The first launch alone: one that fails at once stops this definition's
      // round, its health now holds the rest back. Once one went through, the
      // rest go together: each waits on the store for its VM's id and record,
      // not on the launches before it.
      if (n > 0 && go() && await this.startOne(def)) await Promise.all(Array.from({ length: n - 1 }, async () => go() && this.startOne(def)));
      const excess = plan.stopIdle.get(def.name) ?? 0;
      if (excess > 0) await this.stopIdle(def, excess, now);
    }
  }

  /**
   * How many queued jobs of each definition this host can serve now: its
   * runners that can still take a job (starting, idle) plus what it could
   * start at once within its free capacity, maxRunners and launch health.
   * What it claims in a fleet; nothing for a paused definition.
   */
  private servable(now: number): Map<string, number> {
    const saturated = new Map(this.deps.config.runners.map((d) => [d.name, d.maxRunners]));
    const demand = this.demand(saturated, now);
    const plan = planScale(demand, this.deps.budget());
    return new Map(demand.map((d) => [d.name, this.isPaused(d.name) ? 0 : d.starting + d.idle + (plan.start.get(d.name) ?? 0)]));
  }

  private demand(queued: ReadonlyMap<string, number>, now: number): DefinitionDemand[] {
    return this.deps.config.runners.map((d) => {
      const mine = [...this.live.values()].filter((r) => r.definition.name === d.name);
      const count = (p: RunnerPhase): number => mine.filter((r) => r.phase === p).length;
      const graceMs = idleGraceMs(d);
      const starting = count('starting');
      // Paused by the operator: nothing wanted, every idle runner may go at once.
      if (this.isPaused(d.name)) {
        return {
          name: d.name, maxRunners: d.maxRunners, minIdle: 0, cpuCount: d.cpuCount, memoryMib: d.memorySize, queued: 0,
          starting, idle: count('idle'), busy: count('busy') + count('ending'), idlePastGrace: count('idle'), maxStart: 0,
        };
      }
      return {
        name: d.name,
        maxRunners: d.maxRunners,
        minIdle: d.minIdle,
        cpuCount: d.cpuCount,
        memoryMib: d.memorySize,
        queued: queued.get(d.name) ?? 0,
        starting,
        idle: count('idle'),
        // A VM that is ending still holds its resources and its place under maxRunners.
        busy: count('busy') + count('ending'),
        idlePastGrace: mine.filter((r) => r.phase === 'idle' && r.idleSince !== undefined && now - r.idleSince >= graceMs).length,
        maxStart: launchAllowance(this.healthOf(d.name), now, starting),
      };
    });
  }

  /** A runner named in an in-progress job is busy; jobs are matched to runners by name only. */
  private markBusy(busyNames: ReadonlySet<string>): void {
    for (const r of this.live.values()) {
      if ((r.phase === 'idle' || r.phase === 'starting') && busyNames.has(runnerName(r.vm.id))) {
        r.phase = 'busy';
        // A runner that took a job came online, whether or not its marker was seen.
        this.runnerOnline(r);
        this.persist(r);
      }
    }
  }

  private healthOf(name: string): DefinitionHealth {
    return this.healthByName.get(name) ?? HEALTHY;
  }

  private runnerOnline(r: LiveRunner): void {
    if (r.online) return;
    r.online = true;
    this.setHealth(r.definition, recordLaunchSuccess(this.healthOf(r.definition.name)));
  }

  private launchFailed(def: RunnerConfig, round: number, error: LaunchError): void {
    const policy: BackoffPolicy = { ...DEFAULT_BACKOFF, ...this.deps.backoff, unhealthyAfter: def.unhealthyAfter ?? DEFAULTS.unhealthyAfter };
    this.setHealth(def, recordLaunchFailure(this.healthOf(def.name), error, round, policy, this.deps.random()));
  }

  /** Stores a definition's health and logs a change of state once. */
  private setHealth(def: RunnerConfig, next: DefinitionHealth): void {
    const prev = this.healthOf(def.name);
    if (next === prev) return;
    this.healthByName.set(def.name, next);
    const { logger } = this.deps;
    const err = next.lastError;
    const retryInMs = next.nextAttemptAt === undefined || err === undefined ? undefined : next.nextAttemptAt - err.at;
    if (next.consecutiveFailures > prev.consecutiveFailures) {
      logger.debug({ runner: def.name, failures: next.consecutiveFailures, code: err?.code, retryInMs }, 'runner launch failed');
    }
    if (next.state === prev.state) return;
    if (next.state === 'healthy') {
      logger.info({ runner: def.name }, 'runner definition is healthy again: a runner came online');
    } else if (next.state === 'backing-off') {
      logger.warn({ runner: def.name, failures: next.consecutiveFailures, code: err?.code, hint: err?.hint, err: err?.message, retryInMs },
        'runner launch failed: backing off this definition');
    } else {
      logger.error({
        runner: def.name, code: 'FLINT_ERR_RUNNER_UNHEALTHY', failures: next.consecutiveFailures,
        lastCode: err?.code, hint: err?.hint, err: err?.message, retryInMs,
      }, `runner definition is unhealthy: ${next.consecutiveFailures} launches failed in a row; retrying slowly`);
    }
  }

  /** The runner group's id, asked of GitHub once: VMs registering at the same moment share the one question. */
  private groupId(name: string): Promise<number> {
    let id = this.groupIds.get(name);
    if (id === undefined) {
      id = this.deps.github.runnerGroupId(name);
      this.groupIds.set(name, id);
      // A failed lookup is not kept: the next registration asks again.
      id.catch(() => { if (this.groupIds.get(name) === id) this.groupIds.delete(name); });
    }
    return id;
  }

  /** Launches one VM of `def`; false when the launch failed at once. */
  private async startOne(def: RunnerConfig): Promise<boolean> {
    const round = this.healthOf(def.name).round;
    let registeredVm: string | undefined;
    // Called by the supervisor once the VM has its id, before it boots: the
    // runner is registered under the VM's tagged name.
    const guestEnv = async (vmId: string): Promise<Record<string, string>> => {
      // A scale set's runner gets its JIT config from the scale set (its labels are the scale set's).
      const register = async () => def.scaleSet !== undefined ? this.scaleSets().createJitRunner(def.name, runnerName(vmId)) : this.deps.github.createJitRunner({
        scope: ORG,
        name: runnerName(vmId),
        runnerGroupId: await this.groupId(def.group),
        labels: def.labels,
      });
      const jit = await register().catch((err: unknown) => {
        // The supervisor reports this as "prepare failed"; the launch error keeps GitHub's own code.
        this.jitErrors.set(vmId, err);
        throw err;
      });
      this.runnerIds.set(vmId, jit.runnerId);
      registeredVm = vmId;
      const known = this.live.get(vmId);
      if (known !== undefined) this.persist(known);
      return {
        ...this.deps.guestExtras,
        FLINT_RUNNER_NAME: jit.runnerName,
        FLINT_JITCONFIG: jit.encodedJitConfig,
        FLINT_JOB_TIMEOUT: String(def.jobTimeoutSeconds),
      };
    };
    let vm: VmHandle;
    try {
      vm = await this.deps.vms.launch(def, guestEnv);
    } catch (err) {
      // No VM to follow, so no clean-up will run: a registration already made
      // for it must not linger. (The supervisor registers only after launch()
      // has returned; this guards launchers that register first.)
      if (registeredVm !== undefined) await this.removeRegistration(registeredVm, def);
      this.deps.logger.warn({ runner: def.name, code: isFlintError(err) ? err.code : undefined, err: errText(err) }, 'runner VM could not be launched');
      this.launchFailed(def, round, launchError(err, this.deps.clock.now()));
      return false;
    }
    const live: LiveRunner = {
      vm, definition: def, phase: 'starting', startedAt: this.deps.clock.now(), round, online: false, idleSince: undefined, stoppedByFlint: false,
    };
    this.live.set(vm.id, live);
    this.persist(live);
    this.follow(live);
    this.deps.logger.info({ vm: vm.id, runner: def.name }, 'runner VM starting');
    return true;
  }

  /** Follows a runner's VM: its markers move the phase, its end removes the runner. */
  private follow(live: LiveRunner): void {
    const { vm, definition: def, round } = live;
    vm.onMarker((m) => {
      if (m.kind === 'runner-started' && live.phase === 'starting') {
        live.phase = 'idle';
        live.idleSince = this.deps.clock.now();
        this.persist(live);
      }
      if (m.kind === 'runner-started') this.runnerOnline(live);
      if (m.kind === 'runner-exited' && live.phase !== 'ending') {
        live.phase = 'ending';
        this.persist(live);
      }
    });
    const cleanup = vm.ended.then(async (outcome) => {
      this.live.delete(vm.id);
      this.forget(vm.id);
      const jitError = this.jitErrors.get(vm.id);
      this.jitErrors.delete(vm.id);
      this.deps.logger.info({ vm: vm.id, runner: def.name, state: outcome.record.state, code: outcome.code }, 'runner VM ended');
      // A VM that ends without its runner ever coming online is a failed
      // launch, unless Flint ended it (scaled down, or Flint is stopping).
      if (!live.online && !live.stoppedByFlint && !this.stopped) {
        const at = this.deps.clock.now();
        const code = outcome.code ?? 'FLINT_ERR_VM_NO_RUNNER';
        this.launchFailed(def, round, jitError !== undefined ? launchError(jitError, at) : {
          code, hint: catalogue[code].hint, message: outcome.record.reason ?? catalogue[code].title, at,
        });
      }
      // Its place is free now: a replacement need not wait for GitHub to
      // answer the registration's removal.
      this.poke();
      await this.removeRegistration(vm.id, def);
    });
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }

  /** Writes a runner's current state (queued behind earlier writes; a failure is logged, the next change writes again). */
  private persist(r: LiveRunner): void {
    const persisted = this.deps.runnerStates;
    if (persisted === undefined) return;
    this.queueState(r.vm.id, {
      vmId: r.vm.id, instanceId: persisted.instanceId, definition: r.definition.name, phase: r.phase,
      githubRunnerId: this.runnerIds.get(r.vm.id) ?? null, idleSince: r.idleSince ?? null, startedAt: r.startedAt,
    });
  }

  private forget(vmId: string): void {
    this.queueState(vmId, null);
  }

  /**
   * Queues a runner's state for the next flush. Changes made while a flush
   * runs wait for the next one; a runner changed twice before its flush is
   * written once, with its latest state. A flush hands every runner's write
   * to the store at once (different runners, so their order does not
   * matter; a store may commit them together) and waits for all.
   */
  private queueState(vmId: string, state: RunnerState | null): void {
    const persisted = this.deps.runnerStates;
    if (persisted === undefined) return;
    const flushQueued = this.unpersisted.size > 0;
    // Re-inserted: the map's order stays the order of the latest changes.
    this.unpersisted.delete(vmId);
    this.unpersisted.set(vmId, state);
    if (flushQueued) return;
    this.persisting = this.persisting.then(async () => {
      const batch = [...this.unpersisted];
      this.unpersisted.clear();
      await Promise.all(batch.map(([id, st]) => (st === null ? persisted.store.remove(id) : persisted.store.put(st)).catch((err: unknown) => {
        this.deps.logger.warn({ vm: id, err: errText(err) }, st === null
          ? 'could not forget the runner\'s state; the next restart drops it'
          : 'could not store the runner\'s state; a restart may not adopt it');
      })));
    });
  }

  /**
   * Deletes the runner registered for a VM that has ended (or never came to
   * be). An ephemeral runner that ran a job is already gone; one that never
   * did — its VM failed to boot, or was stopped idle — must not linger.
   */
  private async removeRegistration(vmId: string, def: RunnerConfig): Promise<void> {
    const runnerId = this.runnerIds.get(vmId);
    this.runnerIds.delete(vmId);
    if (runnerId === undefined) return;
    await this.deleteRunner(def, runnerId).catch((err: unknown) => {
      this.deps.logger.warn({ err, vm: vmId, runnerId }, 'could not remove the runner registration');
    });
  }

  /** Removes a runner registration the way the definition registered it (REST, or the scale set's service). */
  private async deleteRunner(def: RunnerConfig, runnerId: number): Promise<void> {
    if (def.scaleSet !== undefined) await this.scaleSets().deleteRunner(def.name, runnerId);
    else await this.deps.github.deleteRunner(ORG, runnerId);
  }

  private scaleSets(): ScaleSetRunners {
    const s = this.deps.scaleSets;
    if (s === undefined) throw new FlintError('FLINT_ERR_INTERNAL', 'a runner definition is in scale-set mode but the scheduler was given no scale-set runners');
    return s;
  }

  private async stopIdle(def: RunnerConfig, n: number, now: number): Promise<void> {
    const graceMs = this.isPaused(def.name) ? 0 : idleGraceMs(def);
    // Longest idle first; only those past their grace (planScale counted no more).
    const idle = [...this.live.values()]
      .filter((r) => r.definition.name === def.name && r.phase === 'idle' && r.idleSince !== undefined && now - r.idleSince >= graceMs)
      .sort((a, b) => (a.idleSince ?? 0) - (b.idleSince ?? 0))
      .slice(0, n);
    const reason = this.isPaused(def.name) ? 'drained by the operator: idle runner removed' : 'scaled down: idle beyond the warm pool';
    for (const r of idle) await this.deregister(r, reason);
  }

  /**
   * Removes a runner that is not busy from GitHub, then stops its VM; false
   * (and the runner is kept) when GitHub refuses: it may just have taken a job. Unregister first, so GitHub hands it no job while it stops.
   * A runner still starting may have no registration yet: nothing can have
   * been handed to it, so its VM is stopped (the clean-up removes a
   * registration made meanwhile).
   */
  private async deregister(r: LiveRunner, reason: string): Promise<boolean> {
    const runnerId = this.runnerIds.get(r.vm.id);
    if (runnerId === undefined && r.phase !== 'starting') return false;
    if (runnerId !== undefined) {
      try {
        await this.deleteRunner(r.definition, runnerId);
      } catch (err) {
        if (isFlintError(err)) {
          this.deps.logger.info({ vm: r.vm.id, code: err.code }, 'runner could not be removed (it may have taken a job); keeping it');
          return false;
        }
        throw err;
      }
      this.runnerIds.delete(r.vm.id);
    }
    r.phase = 'ending';
    r.stoppedByFlint = true;
    this.persist(r);
    void r.vm.stop(reason);
    return true;
  }
}

function idleGraceMs(def: RunnerConfig): number {
  return (def.idleGraceSeconds ?? DEFAULTS.idleGraceSeconds) * 1000;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function launchError(err: unknown, at: number): LaunchError {
  if (isFlintError(err)) return { code: err.code, hint: err.hint, message: err.message, at };
  return { code: 'FLINT_ERR_INTERNAL', hint: catalogue.FLINT_ERR_INTERNAL.hint, message: errText(err), at };
}

export function assertRunnersUsable(config: Pick<FlintConfig, 'runners'>): void {
  if (config.runners.length === 0) throw new FlintError('FLINT_ERR_USAGE', 'no runners are configured: nothing to schedule');
}
