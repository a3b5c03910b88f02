/**
 * The scheduler loop ("scale"): turns demand into VMs.
 *
 * Every tick it counts, per runner definition, the queued jobs on record
 * and the runners already up (starting, idle, busy), asks the pure
 * `planScale` what to start and stop, and acts: each new VM registers a
 * single-use (JIT) runner under the VM's own tagged name, carries the JIT
 * config on its config drive, and is removed from GitHub when the VM ends.
 *
 * Webhooks are hints: the store is the truth, the tick is idempotent, and a
 * job is never bound to a VM — GitHub gives a job to any idle runner whose
 * labels cover it.
 */
import { planScale, type DefinitionDemand, type HostBudget } from '../core/capacity.ts';
import { FlintError, isFlintError } from '../core/errors/index.ts';
import { runnerName } from '../core/ids.ts';
import type { FlintConfig, RunnerConfig } from '../config/types.ts';
import type { GitHubPort, RunnerScope } from './ports/github.ts';
import type { IntakeStore, StoredJob } from './ports/store.ts';
import type { Logger, VmHandle, GuestEnv, LaunchOptions } from './vm/supervisor.ts';

/** What the scheduler needs of the VM supervisor. */
export interface VmLauncher {
  launch(runner: RunnerConfig, guestEnv: GuestEnv, options?: LaunchOptions): Promise<VmHandle>;
}

export interface SchedulerDeps {
  readonly config: Pick<FlintConfig, 'runners' | 'github'>;
  readonly store: Pick<IntakeStore, 'listJobs'>;
  readonly github: Pick<GitHubPort, 'runnerGroupId' | 'createJitRunner' | 'deleteRunner'>;
  readonly vms: VmLauncher;
  readonly logger: Logger;
  readonly clock: { now(): number };
  /** Free capacity of this host for new VMs, after what running VMs hold. */
  readonly budget: () => HostBudget;
  /** Extra settings for every guest (e.g. FLINT_RUNNER_COMMAND for test images, FLINT_GITHUB_URL). */
  readonly guestExtras?: Readonly<Record<string, string>>;
}

type RunnerPhase = 'starting' | 'idle' | 'busy' | 'ending';

interface LiveRunner {
  readonly vm: VmHandle;
  readonly definition: RunnerConfig;
  phase: RunnerPhase;
  readonly startedAt: number;
}

const ORG: RunnerScope = { kind: 'organization' };

export class Scheduler {
  private readonly deps: SchedulerDeps;
  private readonly live = new Map<string, LiveRunner>();
  private readonly groupIds = new Map<string, number>();
  /** GitHub's id of the runner registered for each VM (set while the VM is being prepared). */
  private readonly runnerIds = new Map<string, number>();
  private ticking: Promise<void> | undefined;
  private again = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Per-VM clean-ups (runner registration removal) still running. */
  private readonly cleanups = new Set<Promise<void>>();
  private stopped = false;

  constructor(deps: SchedulerDeps) {
    this.deps = deps;
  }

  /** Runs a tick every `intervalMs` until `stop()`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.poke(), intervalMs);
    this.timer.unref();
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }

  /**
   * Resolves when the clean-up of every VM this scheduler started has run
   * (its runner registration removed): after the VMs have been stopped, so
   * no GitHub call outlives the daemon.
   */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
  }

  /** Asks for a tick soon (e.g. after the intake stored a queued job); ticks never overlap. */
  poke(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((err: unknown) => this.deps.logger.error({ err, code: isFlintError(err) ? err.code : undefined }, 'scheduler tick failed'))
      .finally(() => {
        this.ticking = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
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
    const queued = await this.deps.store.listJobs({ status: 'queued' });
    const running = await this.deps.store.listJobs({ status: 'in_progress' });
    this.markBusy(running);
    const demand = this.demand(queued);
    const plan = planScale(demand, this.deps.budget());
    if (plan.deferredForBudget > 0) {
      this.deps.logger.warn({ deferred: plan.deferredForBudget }, 'host capacity is spent: some runners wait for VMs to end');
    }
    for (const def of this.deps.config.runners) {
      const n = plan.start.get(def.name) ?? 0;
      for (let i = 0; i < n && !this.stopped; i += 1) await this.startOne(def);
      const excess = plan.stopIdle.get(def.name) ?? 0;
      if (excess > 0) await this.stopIdle(def, excess);
    }
  }

  private demand(queued: readonly StoredJob[]): DefinitionDemand[] {
    return this.deps.config.runners
      .filter((d) => !d.static)
      .map((d) => {
        const mine = [...this.live.values()].filter((r) => r.definition.name === d.name);
        const count = (p: RunnerPhase): number => mine.filter((r) => r.phase === p).length;
        return {
          name: d.name,
          maxRunners: d.maxRunners,
          minIdle: d.minIdle,
          cpuCount: d.cpuCount,
          memoryMib: d.memorySize,
          queued: queued.filter((j) => j.definition === d.name).length,
          starting: count('starting'),
          idle: count('idle'),
          // A VM that is ending still holds its resources and its place under maxRunners.
          busy: count('busy') + count('ending'),
        };
      });
  }

  /** A runner named in an in-progress job is busy; jobs are matched to runners by name only. */
  private markBusy(running: readonly StoredJob[]): void {
    const busyNames = new Set(running.map((j) => j.runnerName).filter((n): n is string => n !== null));
    for (const r of this.live.values()) {
      if ((r.phase === 'idle' || r.phase === 'starting') && busyNames.has(runnerName(r.vm.id))) r.phase = 'busy';
    }
  }

  private async groupId(name: string): Promise<number> {
    let id = this.groupIds.get(name);
    if (id === undefined) {
      id = await this.deps.github.runnerGroupId(name);
      this.groupIds.set(name, id);
    }
    return id;
  }

  private async startOne(def: RunnerConfig): Promise<void> {
    // Called by the supervisor once the VM has its id, before it boots: the
    // runner is registered under the VM's tagged name.
    const guestEnv = async (vmId: string): Promise<Record<string, string>> => {
      const jit = await this.deps.github.createJitRunner({
        scope: ORG,
        name: runnerName(vmId),
        runnerGroupId: await this.groupId(def.group),
        labels: def.labels,
      });
      this.runnerIds.set(vmId, jit.runnerId);
      return {
        ...this.deps.guestExtras,
        FLINT_RUNNER_NAME: jit.runnerName,
        FLINT_JITCONFIG: jit.encodedJitConfig,
        FLINT_JOB_TIMEOUT: String(def.jobTimeoutSeconds),
      };
    };
    const vm = await this.deps.vms.launch(def, guestEnv);
    const live: LiveRunner = { vm, definition: def, phase: 'starting', startedAt: this.deps.clock.now() };
    this.live.set(vm.id, live);
    vm.onMarker((m) => {
      if (m.kind === 'runner-started' && live.phase === 'starting') live.phase = 'idle';
      if (m.kind === 'runner-exited') live.phase = 'ending';
    });
    const cleanup = vm.ended.then(async (outcome) => {
      this.live.delete(vm.id);
      const runnerId = this.runnerIds.get(vm.id);
      this.runnerIds.delete(vm.id);
      this.deps.logger.info({ vm: vm.id, runner: def.name, state: outcome.record.state, code: outcome.code }, 'runner VM ended');
      // An ephemeral runner that ran a job is already gone; one that never did must not linger.
      if (runnerId !== undefined) {
        await this.deps.github.deleteRunner(ORG, runnerId).catch((err: unknown) => {
          this.deps.logger.warn({ err, vm: vm.id, runnerId }, 'could not remove the runner registration');
        });
      }
      this.poke();
    });
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
    this.deps.logger.info({ vm: vm.id, runner: def.name }, 'runner VM starting');
  }

  private async stopIdle(def: RunnerConfig, n: number): Promise<void> {
    const idle = [...this.live.values()]
      .filter((r) => r.definition.name === def.name && r.phase === 'idle')
      .sort((a, b) => a.startedAt - b.startedAt)
      .slice(0, n);
    for (const r of idle) {
      // Unregister first: GitHub refuses to delete a runner that just took a
      // job, and then the VM must live on.
      const runnerId = this.runnerIds.get(r.vm.id);
      if (runnerId === undefined) continue;
      try {
        await this.deps.github.deleteRunner(ORG, runnerId);
      } catch (err) {
        if (isFlintError(err)) {
          this.deps.logger.info({ vm: r.vm.id, code: err.code }, 'idle runner could not be removed (it may have taken a job); keeping it');
          continue;
        }
        throw err;
      }
      this.runnerIds.delete(r.vm.id);
      r.phase = 'ending';
      void r.vm.stop('scaled down: idle beyond the warm pool');
    }
  }
}

export function assertRunnersUsable(config: Pick<FlintConfig, 'runners'>): void {
  if (config.runners.length === 0) throw new FlintError('FLINT_ERR_USAGE', 'no runners are configured: nothing to schedule');
}
