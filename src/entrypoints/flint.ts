/**
 * The composition root of the running daemon: every concrete adapter is
 * wired here and nowhere else. `flint serve` and `flint demo` start Flint
 * through `startFlint`.
 *
 * Order matters:
 *   1. the VM system adopts the VMs a previous run of this instance left
 *      running (a restart never kills a job), then its start-up sweep
 *      removes the rest it left (dead VMs, taps, leases, disks); the
 *      scheduler rebuilds its runners for the adopted VMs from the store;
 *   2. the webhook intake listens (deliveries are stored, never acted on in
 *      the request);
 *   3. the loops start — each named, with its trigger and interval:
 *        scale            every tickMs, and soon after a queued job arrives:
 *                         demand counts → VMs with JIT runners (scheduler.ts)
 *        missed-webhooks  every reconcileMs: queued jobs GitHub has and Flint
 *                         does not (reconciler.ts)
 *        stale-runners    at start and every staleRunnersMs: this instance's
 *                         runner registrations with no live VM (stale-runners.ts)
 *        job-truth        every jobTruth.intervalMs: held jobs whose news is
 *                         overdue, confirmed against GitHub (job-truth.ts)
 *        redeliver        at start and every redeliver.intervalMs: failed
 *                         deliveries asked for again (redeliver.ts)
 *        record-retention every hour: runner registrations older than a week
 *                         (job-records.ts)
 *        console-retention, delivery-retention (the supervisor and the intake)
 * Shutdown runs it backwards: loops, VMs (each torn down), intake, database.
 * A drain (SIGTERM, daemon/drain.ts) comes first when asked for: no new VM,
 * idle runners removed, busy ones given up to `shutdownGrace` to finish;
 * the loops and the intake keep running meanwhile (the intake's news shows
 * busy runners finishing).
 */
import { availableParallelism, totalmem } from 'node:os';
import type { FlintConfig } from '../config/types.ts';
import type { Logger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../adapters/store/intake-store.ts';
import { createSqliteJobRecords } from '../adapters/store/job-records.ts';
import { createSqliteRunnerStates } from '../adapters/store/runner-states.ts';
import { createGitHubClient } from '../adapters/github/client.ts';
import type { HostBudget } from '../core/capacity.ts';
import { Scheduler } from '../daemon/scheduler.ts';
import { startReconciler } from '../daemon/reconciler.ts';
import { removeStaleRunners } from '../daemon/stale-runners.ts';
import { globalTimers, startLoop } from '../daemon/loop.ts';
import type { LoopTimers } from '../daemon/loop.ts';
import { startDrain } from '../daemon/drain.ts';
import type { Drain, DrainOutcome } from '../daemon/drain.ts';
import { DEFAULTS } from '../config/defaults.ts';
import { JOB_TRUTH_DEFAULTS, startJobTruth } from '../daemon/job-truth.ts';
import { REDELIVER_DEFAULTS, startRedeliver } from '../daemon/redeliver.ts';
import type { RedeliverSettings } from '../daemon/redeliver.ts';
import { createSqliteTruthStore } from '../adapters/store/truth-store.ts';
import { recordingRunnerRequests } from '../daemon/runner-requests.ts';
import type { JobRecordStore } from '../daemon/ports/store.ts';
import type { GitHubPort } from '../daemon/ports/github.ts';
import { buildVmSystem } from './vm-system.ts';
import type { VmEdges } from './vm-system.ts';
import { startServe } from './commands/serve.ts';
import type { ServeOptions } from './commands/serve.ts';
import type { VmSupervisor } from '../daemon/vm/supervisor.ts';

export interface FlintOptions {
  readonly config: FlintConfig;
  readonly logger: Logger;
  /** Extra settings put on every guest's config drive (test images: FLINT_RUNNER_COMMAND, FLINT_GITHUB_URL). */
  readonly guestExtras?: Readonly<Record<string, string>>;
  readonly tickMs?: number;
  readonly reconcileMs?: number;
  readonly staleRunnersMs?: number;
  /** The job-truth loop (docs/config.md, "Job truth"); defaults JOB_TRUTH_DEFAULTS. */
  readonly jobTruth?: Partial<typeof JOB_TRUTH_DEFAULTS>;
  /** The redeliver loop (docs/config.md, "Job truth"); defaults REDELIVER_DEFAULTS. */
  readonly redeliver?: Partial<RedeliverSettings>;
  /** vCPUs this host may hand to VMs (default: 2 × its CPUs — vCPUs mostly wait on I/O). */
  readonly maxVcpus?: number;
  /** MiB this host may hand to VMs (default: all memory but 1 GiB). */
  readonly maxMemoryMib?: number;
  /** Settings of the webhook intake (`flint serve` flags). */
  readonly serve?: Pick<ServeOptions, 'synchronous' | 'maxBodyBytes'>;
  /** Timers of the drain (its grace and progress log); default the global ones. */
  readonly timers?: LoopTimers;
  /** How often a drain logs what it waits for (default 30 s). */
  readonly drainProgressMs?: number;
  /** The outside edges; each defaults to its real adapter. Benchmarks give fakes (test/fakes). */
  readonly edges?: FlintEdges;
}

/** The host's edges (hypervisor drivers, network, disks) and GitHub. */
export interface FlintEdges extends VmEdges {
  readonly github?: GitHubPort;
}

export interface RunningFlint {
  readonly url: string;
  readonly scheduler: Scheduler;
  readonly supervisor: VmSupervisor;
  /** Per-job records (queued → runner requested → VM started → booted → runner online → job started → finished). */
  readonly records: Pick<JobRecordStore, 'getJobRecord' | 'listJobRecords'>;
  /**
   * Graceful shutdown: no new VM, idle runners removed from GitHub and their
   * VMs stopped, busy ones waited for up to `graceMs` (default the config's
   * shutdownGrace), then `close()`. Resolves once closed.
   */
  drain(graceMs?: number): Promise<DrainOutcome>;
  /** Stops at once (cutting a drain short): loops, VMs, intake, database. */
  close(): Promise<void>;
}

/** Free host capacity: the limits minus what live VMs hold. */
export function hostBudget(config: FlintConfig, supervisor: Pick<VmSupervisor, 'list'>, maxVcpus: number, maxMemoryMib: number): HostBudget {
  let cpus = maxVcpus;
  let memoryMib = maxMemoryMib;
  for (const vm of supervisor.list()) {
    const def = config.runners.find((r) => r.name === vm.runner);
    if (def === undefined) continue;
    cpus -= def.cpuCount;
    memoryMib -= def.memorySize;
  }
  return { cpus: Math.max(0, cpus), memoryMib: Math.max(0, memoryMib) };
}

/** Runner registrations are kept as long as the deliveries and jobs they explain (serve.ts delivery-retention). */
const RECORD_RETENTION_MS = 7 * 24 * 3600_000;

export async function startFlint(opts: FlintOptions): Promise<RunningFlint> {
  const { config, logger } = opts;
  const vms = await buildVmSystem(config, logger, {}, opts.edges);
  const adopted = await vms.supervisor.adopt(config.runners);
  const swept = await vms.supervisor.sweep();
  if (swept.vms.length + swept.killed.length + swept.network.length + swept.strayDirs.length > 0) {
    logger.warn({ ...swept }, 'start-up sweep removed what a previous run left behind');
  }
  vms.supervisor.startConsoleRetention();
  // The scheduler exists only further down; a job accepted before then is
  // picked up by its first tick anyway.
  let onAccepted = (): void => undefined;
  const serving = await startServe({ config, logger, ...opts.serve, onAccepted: () => onAccepted() });
  const db = openDatabase(config.stateDir);
  const store = createSqliteIntakeStore(db);
  const records = createSqliteJobRecords(db);
  const github = opts.edges?.github ?? createGitHubClient({ github: config.github, log: logger.child({ component: 'github' }) });
  const clock = { now: () => Date.now() };
  const maxVcpus = opts.maxVcpus ?? availableParallelism() * 2;
  const maxMemoryMib = opts.maxMemoryMib ?? Math.floor(totalmem() / (1 << 20)) - 1024;
  const scheduler = new Scheduler({
    config,
    store,
    // Every runner registration is recorded (the "runner requested" step of the job records).
    github: {
      runnerGroupId: (name) => github.runnerGroupId(name),
      deleteRunner: (scope, id) => github.deleteRunner(scope, id),
      createJitRunner: recordingRunnerRequests((req) => github.createJitRunner(req), { records, clock, logger: logger.child({ component: 'job-records' }) }),
    },
    vms: vms.supervisor,
    logger: logger.child({ component: 'scheduler' }),
    clock,
    random: Math.random,
    budget: () => hostBudget(config, vms.supervisor, maxVcpus, maxMemoryMib),
    ...(opts.guestExtras === undefined ? {} : { guestExtras: opts.guestExtras }),
    runnerStates: { store: createSqliteRunnerStates(db), instanceId: config.instanceId },
  });
  await scheduler.restore(adopted);
  scheduler.start(opts.tickMs ?? 2000);
  onAccepted = () => scheduler.poke();
  const reconciler = startReconciler({
    github, store, runners: config.runners, clock, budgetPerHour: config.github.scanBudget,
    logger: logger.child({ component: 'missed-webhooks' }), onRecovered: () => scheduler.poke(),
  }, opts.reconcileMs ?? 60_000);
  const staleDeps = {
    github, instanceId: config.instanceId, logger: logger.child({ component: 'stale-runners' }),
    liveVmIds: () => new Set(vms.supervisor.list().map((vm) => vm.id)),
  };
  const staleRunners = startLoop({
    name: 'stale-runners', intervalMs: opts.staleRunnersMs ?? 10 * 60_000, runAtStart: true,
    run: () => removeStaleRunners(staleDeps), logger: staleDeps.logger, now: clock.now,
  });
  const truth = createSqliteTruthStore(db);
  const jobTruthSettings = { ...JOB_TRUTH_DEFAULTS, ...opts.jobTruth };
  const jobTruth = startJobTruth({
    github, store, truth, thresholds: jobTruthSettings, clock,
    logger: logger.child({ component: 'job-truth' }), onChanged: () => scheduler.poke(),
  }, jobTruthSettings.intervalMs);
  const redeliver = startRedeliver({
    github, store, truth, settings: { ...REDELIVER_DEFAULTS, ...opts.redeliver }, clock, logger: logger.child({ component: 'redeliver' }),
  });
  const recordRetention = startLoop({
    name: 'record-retention', intervalMs: 3600_000, runAtStart: false, logger: logger.child({ component: 'record-retention' }), now: clock.now,
    run: () => records.prune(clock.now() - RECORD_RETENTION_MS),
  });
  let closing: Promise<void> | undefined;
  let draining: { drain: Drain; closed: Promise<DrainOutcome> } | undefined;
  const defaultGraceMs = (config.shutdownGraceSeconds ?? DEFAULTS.shutdownGraceSeconds) * 1000;
  const running: RunningFlint = {
    url: serving.url,
    scheduler,
    supervisor: vms.supervisor,
    records,
    drain(graceMs = defaultGraceMs) {
      if (draining === undefined) {
        const drain = startDrain({
          scheduler, clock, timers: opts.timers ?? globalTimers, logger: logger.child({ component: 'drain' }),
          ...(opts.drainProgressMs === undefined ? {} : { progressEveryMs: opts.drainProgressMs }),
        }, graceMs);
        // Closed whatever the drain's end, even a failed one.
        const closed = drain.done.finally(() => running.close());
        draining = { drain, closed };
      }
      return draining.closed;
    },
    close() {
      closing ??= (async () => {
        if (draining !== undefined) {
          // Cut the wait short, but let the drain's own GitHub calls finish before the loops and the database go.
          draining.drain.now();
          await draining.drain.done.catch((err: unknown) => { logger.error({ err }, 'drain failed'); });
        }
        await scheduler.stop();
        await reconciler.stop();
        await staleRunners.stop();
        await jobTruth.stop();
        await redeliver.stop();
        await recordRetention.stop();
        await vms.supervisor.shutdown();
        await scheduler.settled();
        vms.close();
        await serving.close();
        db.close();
      })();
      return closing;
    },
  };
  return running;
}
