/**
 * The composition root of the running daemon: every concrete adapter is
 * wired here and nowhere else, on ONE connection to the state database
 * (opened here with the `--db-sync` durability; every store is built on it
 * and `/healthz` reports on it) — or, when the configuration has
 * `store: {postgres: …}`, on ONE PostgreSQL pool (migrated at start), with
 * the SQLite connection kept for this host's address leases only. `flint serve` and `flint demo` start Flint
 * through `startFlint`; `flint serve --webhooks-only` through
 * `startWebhooksOnly`, the same root without VMs and without GitHub.
 *
 * Order matters:
 *   1. the state database is opened and the stores are built on it; the
 *      admin socket (http/admin.ts) is claimed — a second daemon on the same
 *      socket stops here — and answers 503 until the scheduler exists;
 *   2. the VM system adopts the VMs a previous run of this instance left
 *      running (a restart never kills a job), then its start-up sweep
 *      removes the rest it left (dead VMs, taps, leases, disks); the
 *      scheduler rebuilds its runners for the adopted VMs from the store;
 *   3. the webhook intake listens (deliveries are stored, never acted on in
 *      the request; entrypoints/http), with /readyz and /metrics beside
 *      /healthz (http/readiness.ts, http/metrics.ts; the taps on the
 *      scheduler's ports are observe.ts);
 *   4. the loops start, every one on the loop primitive (daemon/loop.ts),
 *      each named, with its trigger and interval, and listed by `loops()`:
 *        scale              every tickMs, and soon after a queued job arrives:
 *                           demand counts → VMs with JIT runners (scheduler.ts);
 *                           on PostgreSQL the demand is the queued jobs this
 *                           host claims (docs/fleet.md, "Sharing the work")
 *        missed-webhooks    every reconcileMs: queued jobs GitHub has and Flint
 *                           does not (reconciler.ts)
 *        stale-runners      at start and every staleRunnersMs: this instance's
 *                           runner registrations with no live VM; in a fleet,
 *                           every host's, by every host's VM records, on the
 *                           leader only (stale-runners.ts)
 *        job-truth          every jobTruth.intervalMs: held jobs whose news is
 *                           overdue, confirmed against GitHub (job-truth.ts)
 *        redeliver          at start and every redeliver.intervalMs: failed
 *                           deliveries asked for again (redeliver.ts)
 *        record-retention   every hour: runner registrations older than a week
 *                           (job-records.ts)
 *        delivery-retention every hour: deliveries and completed jobs older
 *                           than a week (GitHub redelivers for 3 days)
 *        console-retention  at start and every 15 min: old VM console logs
 *                           (the supervisor)
 *        fleet-heartbeat    PostgreSQL store only, at start and every 10 s: this
 *                           host's row (capacity, VMs, address) (daemon/fleet.ts)
 *        fleet-leadership   PostgreSQL store only, at start and every 6.7 s: takes
 *                           or renews the 20 s `singletons` lease; missed-webhooks,
 *                           stale-runners, job-truth, redeliver, fleet-reaper and
 *                           the scale-set listeners run on its holder only
 *                           (docs/fleet.md)
 *        fleet-reaper       PostgreSQL store, leader only, at start and every 10 s:
 *                           other hosts silent for 90 s are marked lost, their
 *                           VM records failed, their registrations removed
 *                           (daemon/fleet-reaper.ts)
 *        network-policy     at start and every 30 s: Flint's nftables tables re-asserted
 *                           (a flushed ruleset comes back with every live VM's
 *                           entries), allow-list host names re-resolved
 *                           (network-policy.ts)
 *      Under --webhooks-only only delivery-retention runs.
 *   5. the status page listens when `status:` is set (http/status-page.ts).
 * Shutdown runs it backwards: status page, admin socket, loops, VMs (each torn down), intake (requests
 * in flight answered, last group commit flushed), database.
 * A drain (SIGTERM, daemon/drain.ts) comes first when asked for: no new VM,
 * idle runners removed, busy ones given up to `shutdownGrace` to finish;
 * the loops and the intake keep running meanwhile (the intake's news shows
 * busy runners finishing).
 */
import { availableParallelism, totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import type { FlintConfig } from '../config/types.ts';
import type { Logger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { startCheckpointer } from '../adapters/store/checkpointer.ts';
import type { Checkpointer } from '../adapters/store/checkpointer.ts';
import type { Db, Synchronous } from '../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../adapters/store/intake-store.ts';
import { createSqliteJobRecords } from '../adapters/store/job-records.ts';
import { createSqliteTruthStore } from '../adapters/store/truth-store.ts';
import { createSqliteRunnerStates } from '../adapters/store/runner-states.ts';
import { openPostgresStores } from '../adapters/store/postgres/index.ts';
import type { PostgresStores } from '../adapters/store/postgres/index.ts';
import { createGitHubClient } from '../adapters/github/client.ts';
import { createScaleSetClient } from '../adapters/github/scaleset-client.ts';
import type { ScaleSetClient } from '../adapters/github/scaleset-client.ts';
import { createSqliteScaleSetState } from '../adapters/store/scaleset-state.ts';
import { scaleSetRunners, startScaleSetListener } from '../daemon/scaleset-listener.ts';
import type { ScaleSetListener } from '../daemon/scaleset-listener.ts';
import type { RunnerConfig, ScaleSetConfig } from '../config/types.ts';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { FlintError } from '../core/errors/index.ts';
import { fleetRunnersCanHold, runnersHostCanHold, type HostBudget } from '../core/capacity.ts';
import { Scheduler, type SchedulerDeps } from '../daemon/scheduler.ts';
import { startReconciler } from '../daemon/reconciler.ts';
import { fleetStaleView, removeStaleRunners } from '../daemon/stale-runners.ts';
import { globalTimers, startLoop } from '../daemon/loop.ts';
import { startNetworkPolicy } from '../daemon/network-policy.ts';
import type { Loop, LoopStatus, LoopTimers } from '../daemon/loop.ts';
import { startDrain } from '../daemon/drain.ts';
import { FLEET_DEFAULTS, startFleetMembership } from '../daemon/fleet.ts';
import { startFleetReaper } from '../daemon/fleet-reaper.ts';
import { fleetView } from '../daemon/status.ts';
import type { Drain, DrainOutcome } from '../daemon/drain.ts';
import { DEFAULTS } from '../config/defaults.ts';
import { JOB_TRUTH_DEFAULTS, startJobTruth } from '../daemon/job-truth.ts';
import { REDELIVER_DEFAULTS, startRedeliver } from '../daemon/redeliver.ts';
import type { RedeliverSettings } from '../daemon/redeliver.ts';
import { recordingRunnerRequests } from '../daemon/runner-requests.ts';
import type { IntakeStore, JobRecordStore, RunnerStateStore, TruthStore } from '../daemon/ports/store.ts';
import type { GitHubPort } from '../daemon/ports/github.ts';
import type { VmHandle, VmSupervisor } from '../daemon/vm/supervisor.ts';
import { buildVmSystem } from './vm-system.ts';
import type { VmEdges, VmSystem } from './vm-system.ts';
import { startWebhooks } from './http/webhooks.ts';
import { createMetrics } from './http/metrics.ts';
import type { FlintMetrics } from './http/metrics.ts';
import { GitHubReachability, HypervisorUsability, readiness } from './http/readiness.ts';
import { countedJitRunners, everyObserver, observeJobStarted, observedLauncher } from './observe.ts';
import { runnerName } from '../core/ids.ts';
import { startAdminServer } from './http/admin.ts';
import type { AdminServer, AdminSource } from './http/admin.ts';
import { adminSocketSettings, daemonAdminSource, readFleet } from './admin-source.ts';
import type { FleetSourceDeps } from './admin-source.ts';
import type { WebhookIntake, WebhookOptions } from './http/webhooks.ts';
import { startStatusPage } from './http/status-page.ts';
import type { RunningStatusPage } from './http/status-page.ts';

/** See docs/webhooks.md, "Durability": the measured trade-off behind this default. */
export const DEFAULT_SYNCHRONOUS: Synchronous = 'FULL';

/** What both modes of the root take. */
export interface RootOptions {
  readonly config: FlintConfig;
  readonly logger: Logger;
  /** Durability of every commit on the one connection (`--db-sync`); default DEFAULT_SYNCHRONOUS. */
  readonly synchronous?: Synchronous;
  /** Largest webhook body taken (`--webhook-body-limit`); default server.ts DEFAULT_MAX_BODY_BYTES. */
  readonly maxBodyBytes?: number;
  /** The one clock of the daemon (epoch ms); default the wall clock. */
  readonly clock?: { now(): number };
  /** Listener overrides (tests): the ACME client, other ports, the renewal timers. */
  readonly listen?: WebhookOptions['listen'];
  /** Export process_* and nodejs_* metrics beside Flint's own (default true). */
  readonly processMetrics?: boolean;
}

export interface FlintOptions extends RootOptions {
  /** Extra settings put on every guest's config drive (test images: FLINT_RUNNER_COMMAND, FLINT_GITHUB_URL). */
  readonly guestExtras?: Readonly<Record<string, string>>;
  readonly tickMs?: number;
  readonly reconcileMs?: number;
  readonly staleRunnersMs?: number;
  /** The job-truth loop (docs/config.md, "Job truth"); defaults JOB_TRUTH_DEFAULTS. */
  readonly jobTruth?: Partial<typeof JOB_TRUTH_DEFAULTS>;
  /** The redeliver loop (docs/config.md, "Job truth"); defaults REDELIVER_DEFAULTS. */
  readonly redeliver?: Partial<RedeliverSettings>;
  /** Back-off delays after failed launches (core/launch-health.ts); default DEFAULT_BACKOFF. Tests shorten them. */
  readonly backoff?: SchedulerDeps['backoff'];
  /** vCPUs this host may hand to VMs (default: 2 × its CPUs — vCPUs mostly wait on I/O). */
  readonly maxVcpus?: number;
  /** MiB this host may hand to VMs (default: all memory but 1 GiB). */
  readonly maxMemoryMib?: number;
  /** Timers of the drain (its grace and progress log); default the global ones. */
  readonly timers?: LoopTimers;
  /** The scale-set client's back-off on a session conflict (tests shorten it); default the client's. */
  readonly sessionConflict?: { readonly retries?: number; readonly baseMs?: number; readonly maxMs?: number };
  /** How often a drain logs what it waits for (default 30 s). */
  readonly drainProgressMs?: number;
  /** The fleet's heartbeat, lease, claim ttl and lost-host timeout (PostgreSQL store only), over the configuration's `fleet:`; defaults FLEET_DEFAULTS. Tests shorten them below a second. */
  readonly fleet?: { readonly heartbeatMs?: number; readonly leaseTtlMs?: number; readonly claimTtlMs?: number; readonly hostLostMs?: number };
  /** The outside edges; each defaults to its real adapter. Benchmarks give fakes (test/fakes). */
  readonly edges?: FlintEdges;
}

/** The host's edges (hypervisor drivers, network, disks) and GitHub. */
export interface FlintEdges extends VmEdges {
  readonly github?: GitHubPort;
  /** The Actions service client of definitions in scale-set mode; default one on the GitHub client's installation tokens. */
  readonly scaleSets?: ScaleSetClient;
}

/** The webhook intake alone (`flint serve --webhooks-only`). */
export interface RunningWebhooks {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Every named loop's status (name, interval, last pass start and end, last error, next pass). */
  loops(): LoopStatus[];
  /** The thread that checkpoints the SQLite WAL (adapters/store/checkpointer.ts). */
  readonly checkpointer: Pick<Checkpointer, 'active' | 'ready'>;
  /** Stops: loops, intake (requests in flight answered, last group commit flushed), database. */
  close(): Promise<void>;
}

export interface RunningFlint extends RunningWebhooks {
  /** Base URL of the status page, when `status:` is configured. */
  readonly statusUrl: string | undefined;
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

/**
 * GitHub's web base for an API base: the scale-set registration names the
 * organization's web URL. `https://api.HOST` → `https://HOST`; a GitHub
 * Enterprise Server's `https://HOST/api/v3` → `https://HOST`; anything else
 * (the simulator) is its own.
 */
/** The fleet's timings from the configuration (`fleet:`), in the membership's milliseconds; absent keys keep its defaults. */
export function fleetTimings(config: Pick<FlintConfig, 'fleet'>): { heartbeatMs?: number; leaseTtlMs?: number; claimTtlMs?: number; hostLostMs?: number } {
  const f = config.fleet;
  return {
    ...(f?.heartbeatSeconds === undefined ? {} : { heartbeatMs: f.heartbeatSeconds * 1000 }),
    ...(f?.leaseTtlSeconds === undefined ? {} : { leaseTtlMs: f.leaseTtlSeconds * 1000 }),
    ...(f?.claimTtlSeconds === undefined ? {} : { claimTtlMs: f.claimTtlSeconds * 1000 }),
    ...(f?.hostLostSeconds === undefined ? {} : { hostLostMs: f.hostLostSeconds * 1000 }),
  };
}

export function githubWebUrl(apiUrl: string): string {
  const u = new URL(apiUrl);
  if (u.pathname.replace(/\/+$/, '') === '' && u.hostname.startsWith('api.')) return `${u.protocol}//${u.host.slice(4)}`;
  if (/\/api\/v3\/?$/.test(u.pathname)) return `${u.protocol}//${u.host}${u.pathname.replace(/\/api\/v3\/?$/, '')}`;
  return apiUrl.replace(/\/+$/, '');
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

/** Runner registrations are kept as long as the deliveries and jobs they explain (delivery-retention). */
const RECORD_RETENTION_MS = 7 * 24 * 3600_000;
/** Deliveries and completed jobs are kept a week: GitHub redelivers for 3 days. */
const DELIVERY_RETENTION_MS = 7 * 24 * 3600_000;
const RETENTION_INTERVAL_MS = 3600_000;
const SQLITE_SYNCHRONOUS: Readonly<Record<number, string>> = { 0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA' };

/**
 * What both modes share: the SQLite connection, the intake store, the one
 * clock, the durability the connection runs at — and, when the
 * configuration has `store: {postgres: …}`, the PostgreSQL stores, which
 * then hold everything but this host's address leases (docs/fleet.md).
 */
interface Base {
  readonly db: Db;
  readonly checkpointer: Checkpointer;
  readonly store: IntakeStore;
  readonly clock: { now(): number };
  readonly synchronous: Synchronous;
  readonly postgres: PostgresStores | undefined;
  /** What /healthz and the `store` check of /readyz report: the store the intake writes to. */
  readonly health: () => { readonly ok: boolean; readonly [k: string]: unknown };
  /** Closes the PostgreSQL pool (if any), the WAL checkpointer and the SQLite connection. */
  close(): Promise<void>;
}

async function openState(opts: RootOptions): Promise<Base> {
  const { config } = opts;
  const synchronous = opts.synchronous ?? DEFAULT_SYNCHRONOUS;
  let db: Db;
  try {
    db = openDatabase(config.stateDir, { synchronous });
  } catch (err) {
    throw new FlintError('FLINT_ERR_STORE_OPEN_FAILED', `cannot open the state database in ${config.stateDir}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
  const clock = opts.clock ?? { now: () => Date.now() };
  // WAL checkpoints on a thread of their own, not inside a commit on the
  // event loop (adapters/store/checkpointer.ts).
  const checkpointer = startCheckpointer(db, { synchronous, logger: opts.logger.child({ component: 'checkpointer' }) });
  const closeDb = async (): Promise<void> => {
    await checkpointer.close();
    db.close();
  };
  const pgSettings = config.store?.postgres;
  if (pgSettings !== undefined) {
    let postgres: PostgresStores;
    try {
      postgres = await openPostgresStores(pgSettings);
    } catch (err) {
      await closeDb();
      throw err;
    }
    const local = databaseHealth(db);
    return {
      db, checkpointer, store: postgres.intake, clock, synchronous, postgres,
      // The leases' SQLite file counts too: without it no VM gets an address.
      health: () => {
        const pg = postgres.health();
        const leases = local();
        return { ...pg, ok: pg.ok && leases.ok, local: leases.database };
      },
      close: async () => { await postgres.close(); await closeDb(); },
    };
  }
  // The store commits on this thread: measured on a 2-core host, handing
  // commits to a worker thread (intake-store-worker.ts) was no faster and
  // its extra wake-ups cost latency under load (docs/webhooks.md).
  return {
    db, checkpointer, store: createSqliteIntakeStore(db), clock, synchronous, postgres: undefined, health: databaseHealth(db),
    close: closeDb,
  };
}

/**
 * What `GET /healthz` reports: a query on the one connection every store
 * uses, so a closed or broken database shows (without it no delivery can
 * be acknowledged), with the durability that connection runs at.
 */
export function databaseHealth(db: Db): () => { readonly ok: boolean; readonly [k: string]: unknown } {
  return () => {
    if (!db.open) return { ok: false, database: 'closed' };
    try {
      const level = db.pragma('synchronous', { simple: true });
      return { ok: true, database: 'open', synchronous: typeof level === 'number' ? (SQLITE_SYNCHRONOUS[level] ?? String(level)) : String(level) };
    } catch (err) {
      return { ok: false, database: 'failing', error: err instanceof Error ? err.message : String(err) };
    }
  };
}

function startDeliveryRetention(base: Base, logger: Logger): Loop {
  const log = logger.child({ component: 'delivery-retention' });
  return startLoop({
    name: 'delivery-retention', intervalMs: RETENTION_INTERVAL_MS, runAtStart: false, logger: log, now: () => base.clock.now(),
    run: async () => {
      const n = await base.store.prune(base.clock.now() - DELIVERY_RETENTION_MS);
      if (n.deliveries + n.jobs + n.unparsable > 0) log.info(n, 'delivery-retention: pruned');
    },
  });
}

function listening(logger: Logger, config: FlintConfig, base: Base, intake: WebhookIntake, mode: string): void {
  logger.info({ url: intake.url, tls: intake.tls, stateDir: config.stateDir, store: base.postgres === undefined ? 'sqlite' : 'postgres', runners: config.runners.map((r) => r.name), synchronous: base.synchronous, secrets: config.github.webhookSecrets.length, mode },
    'flint serve: listening for webhooks');
}

/** `flint serve --webhooks-only`: the root with no VM system and no GitHub client; only the intake and delivery-retention. */
export async function startWebhooksOnly(opts: RootOptions): Promise<RunningWebhooks> {
  const { config, logger } = opts;
  const base = await openState(opts);
  const metrics = createMetrics({ processMetrics: opts.processMetrics ?? true });
  // Both exist once the start is done; a request before then sees fewer loops.
  let retention: Loop | undefined = undefined;
  let intake: WebhookIntake | undefined;
  const loops = (): LoopStatus[] => [...(retention === undefined ? [] : [retention.status()]), ...(intake?.loops ?? []).map((l) => l.status())];
  try {
    intake = await startWebhooks({
      config, logger, store: base.store, clock: () => base.clock.now(), health: base.health,
      ready: readiness({ store: base.health, loops, now: () => base.clock.now() }),
      metrics: () => metrics.scrape(), observer: metrics.deliveries,
      ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
    });
  } catch (err) {
    await base.close();
    throw err;
  }
  listening(logger, config, base, intake, 'webhooks-only');
  const webhooks = intake;
  const deliveryRetention = startDeliveryRetention(base, logger);
  retention = deliveryRetention;
  metrics.collectFrom({ loops, jobs: (status) => base.store.countJobsByDefinition(status) });
  let closing: Promise<void> | undefined;
  return {
    url: webhooks.url,
    loops,
    checkpointer: base.checkpointer,
    close() {
      closing ??= (async () => {
        await deliveryRetention.stop();
        await webhooks.close();
        await base.close();
        logger.info({}, 'flint serve: stopped');
      })();
      return closing;
    },
  };
}

/**
 * Keeps the heap a busy spell grew. V8's memory reducer shrinks the heap
 * of a process that has gone quiet for some seconds; work that comes after
 * (a wave of jobs after a lull, the ordinary day of a runner manager) then
 * runs with GC limits far below what it needs, and every job's path was
 * 5 – 8 times slower for the next 10 s and more (fleet bench after a 10 s
 * pause: p50 118 ms against 12 ms; docs/operations.md). Flint is a daemon
 * whose peak heap is its working size. Read by V8 when it would start a
 * reduction, so setting it here, before any work, holds.
 */
function keepHeapWhenQuiet(): void {
  setFlagsFromString('--no-memory-reducer');
}

export async function startFlint(opts: FlintOptions): Promise<RunningFlint> {
  keepHeapWhenQuiet();
  const { config, logger } = opts;
  const base = await openState(opts);
  const { db, store, clock, postgres } = base;
  const scaleSetDefs = config.runners.filter((r): r is RunnerConfig & { readonly scaleSet: ScaleSetConfig } => r.scaleSet !== undefined);
  const webhookRunners = config.runners.filter((r) => r.scaleSet === undefined);
  let vms: VmSystem | undefined;
  let intake: WebhookIntake | undefined;
  let consoleRetention: Loop | undefined;
  let adopted: VmHandle[];
  let admin: AdminServer | undefined;
  // Answered 503 until the scheduler exists.
  const adminTarget: { source?: AdminSource } = {};
  // The scheduler exists only further down; a job accepted before then is
  // picked up by its first tick anyway.
  let onAccepted: (job: { readonly jobId: number; readonly action: string }) => void = () => undefined;
  let onCommitted: () => void = () => undefined;
  // The instruments: metrics on their own registry, and what /readyz checks beyond the database and the loops.
  const metrics: FlintMetrics = createMetrics({ processMetrics: opts.processMetrics ?? true });
  const githubReach = new GitHubReachability(() => clock.now());
  const hypervisor = new HypervisorUsability(() => clock.now());
  let loopStatus = (): LoopStatus[] => [];
  try {
    // First: a second daemon on the same socket stops here, before it touches anything.
    admin = await startAdminServer({ ...adminSocketSettings(config), source: () => adminTarget.source, logger: logger.child({ component: 'admin' }) });
    vms = await buildVmSystem(config, logger, {
      db, ...(postgres === undefined ? {} : { vmStore: postgres.vms }), ...(opts.edges === undefined ? {} : { edges: opts.edges }),
    });
    adopted = await vms.supervisor.adopt(config.runners);
    const swept = await vms.supervisor.sweep();
    if (swept.vms.length + swept.killed.length + swept.network.length + swept.strayDirs.length > 0) {
      logger.warn({ ...swept }, 'start-up sweep removed what a previous run left behind');
    }
    consoleRetention = vms.supervisor.startConsoleRetention();
    // Jobs of definitions in scale-set mode come from their listeners only: a webhook for them is no demand here.
    intake = await startWebhooks({
      config: { ...config, runners: webhookRunners }, logger, store, clock: () => clock.now(), health: base.health, onAccepted: (job) => onAccepted(job),
      onCommitted: () => onCommitted(),
      ready: readiness({ store: base.health, loops: () => loopStatus(), now: () => clock.now(), github: githubReach, hypervisor }),
      metrics: () => metrics.scrape(), observer: metrics.deliveries,
      ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
    });
  } catch (err) {
    await vms?.supervisor.shutdown();
    vms?.close();
    await admin?.close();
    await base.close();
    throw err;
  }
  listening(logger, config, base, intake, 'full');
  const system = vms;
  const webhooks = intake;
  const adminServer = admin;
  const deliveryRetention = startDeliveryRetention(base, logger);
  const records: JobRecordStore = postgres?.records ?? createSqliteJobRecords(db);
  const truth: TruthStore = postgres?.truth ?? createSqliteTruthStore(db);
  const runnerStates: RunnerStateStore = postgres?.runnerStates ?? createSqliteRunnerStates(db);
  // A client made here is closed here (its waits on rate limits end with it); one given as an edge belongs to the caller.
  const ownGithub = opts.edges?.github === undefined ? createGitHubClient({
    github: config.github, log: logger.child({ component: 'github' }), observer: everyObserver(metrics.github, githubReach),
  }) : undefined;
  const github: GitHubPort = ownGithub ?? (opts.edges?.github as GitHubPort);
  // The listeners exist only further down; the scheduler asks them for the current scale-set id.
  const listeners = new Map<string, ScaleSetListener>();
  const ssClient: ScaleSetClient | undefined = scaleSetDefs.length === 0 ? undefined : opts.edges?.scaleSets ?? (ownGithub === undefined ? undefined : createScaleSetClient({
    apiUrl: config.github.apiUrl, githubUrl: githubWebUrl(config.github.apiUrl), organization: config.github.organization,
    installationToken: () => ownGithub.installationToken(),
    ...(opts.sessionConflict === undefined ? {} : { sessionConflict: opts.sessionConflict }),
    onEvent: (e) => logger.child({ component: 'scaleset' }).info({ ...e }, `scale-set client: ${e.kind}`),
  }));
  if (scaleSetDefs.length > 0 && ssClient === undefined) {
    throw new FlintError('FLINT_ERR_USAGE', 'runner definitions in scale-set mode need the Actions service client: give edges.scaleSets with edges.github');
  }
  const maxVcpus = opts.maxVcpus ?? availableParallelism() * 2;
  const maxMemoryMib = opts.maxMemoryMib ?? Math.floor(totalmem() / (1 << 20)) - 1024;
  const scheduler = new Scheduler({
    config,
    store,
    // Every runner registration is recorded (the "runner requested" step of the job records).
    github: {
      runnerGroupId: (name) => github.runnerGroupId(name),
      deleteRunner: (scope, id) => github.deleteRunner(scope, id),
      createJitRunner: recordingRunnerRequests(
        countedJitRunners((req) => github.createJitRunner(req), metrics, (name) => system.supervisor.list().find((vm) => runnerName(vm.id) === name)?.runner),
        { records, clock, logger: logger.child({ component: 'job-records' }) }),
    },
    vms: observedLauncher(system.supervisor, { metrics, hypervisor, clock }),
    logger: logger.child({ component: 'scheduler' }),
    clock,
    random: Math.random,
    budget: () => hostBudget(config, system.supervisor, maxVcpus, maxMemoryMib),
    ...(opts.guestExtras === undefined ? {} : { guestExtras: opts.guestExtras }),
    ...(opts.backoff === undefined ? {} : { backoff: opts.backoff }),
    runnerStates: { store: runnerStates, instanceId: config.instanceId },
    // In a fleet this host serves the queued jobs it claims (ports/work-claims.ts).
    ...(postgres === undefined ? {} : { claims: { store: postgres.claims, host: config.instanceId, ttlMs: opts.fleet?.claimTtlMs ?? fleetTimings(config).claimTtlMs ?? FLEET_DEFAULTS.claimTtlMs } }),
    ...(ssClient === undefined ? {} : { scaleSets: scaleSetRunners(ssClient, scaleSetDefs, listeners) }),
  });
  await scheduler.restore(adopted);
  const scale = scheduler.start(opts.tickMs ?? 2000);
  // Another host stored a queued job or gave claims up: claim at once rather than at the next tick.
  const unlisten = await postgres?.claims.subscribe?.(() => scheduler.pokeForWork()).catch((err: unknown) => {
    logger.warn({ err }, 'fleet: cannot listen for work announced by other hosts; claiming at each scale tick only');
    return undefined;
  });
  // A committed batch wakes the scheduler at once: it reads the jobs from
  // the store, and need not wait for the batch's fsync (IntakeDeps.onCommitted).
  onCommitted = () => scheduler.poke();
  onAccepted = (job) => {
    if (job.action === 'in_progress') void observeJobStarted(records, metrics, job.jobId);
  };
  /** Runners of `def` this host can hold now: its own plus what fits in its free capacity, at most maxRunners; 0 while draining or paused. */
  const canHold = (def: RunnerConfig): number => (scheduler.isDraining() || scheduler.paused().host || scheduler.paused().definitions.includes(def.name) ? 0
    : runnersHostCanHold({ maxRunners: def.maxRunners, cpuCount: def.cpuCount, memoryMib: def.memorySize },
      system.supervisor.list().filter((vm) => vm.runner === def.name).length, hostBudget(config, system.supervisor, maxVcpus, maxMemoryMib)));
  /** What the fleet holds, per definition, when the last read of the hosts' rows failed: the listener keeps polling with it. */
  const lastFleetCanHold = new Map<string, number>();
  /**
   * Runners of `def` the fleet can hold: on a PostgreSQL store, what every
   * live host published with its heartbeat, each at most its maxRunners
   * (this host's own figure taken now; core/capacity.ts
   * fleetRunnersCanHold); on SQLite, this host's. Zero while this host
   * drains: its listener stops.
   */
  const scaleSetCapacity = async (def: RunnerConfig): Promise<number> => {
    const own = canHold(def);
    if (postgres === undefined || scheduler.isDraining()) return own;
    try {
      const hosts = await postgres.fleet.hosts();
      const freshMs = 2 * (fleetTimes.heartbeatMs ?? FLEET_DEFAULTS.heartbeatMs);
      const n = fleetRunnersCanHold(def.name, hosts, clock.now(), freshMs, { id: config.instanceId, canHold: own });
      lastFleetCanHold.set(def.name, n);
      return n;
    } catch (err) {
      logger.warn({ err, runner: def.name }, 'scale-set listener: cannot read the fleet\'s hosts; offering the capacity last read');
      return lastFleetCanHold.get(def.name) ?? own;
    }
  };
  const ssState = ssClient === undefined ? undefined : postgres?.scaleSetState ?? createSqliteScaleSetState(db);
  /** Starts a listener per scale-set definition (on the fleet's leader only; at once on SQLite). */
  const startListeners = (): void => {
    if (ssClient === undefined || ssState === undefined) return;
    for (const def of scaleSetDefs) {
      if (listeners.has(def.name)) continue;
      listeners.set(def.name, startScaleSetListener({
        definition: def, client: ssClient, owner: `flint-${config.instanceId}`, store, state: ssState, clock,
        logger: logger.child({ component: 'scaleset-listener' }),
        // Alone, what this host can hold; in a fleet, what the live hosts can hold together.
        capacity: () => scaleSetCapacity(def),
        onChanged: () => scheduler.poke(),
        sleep: (ms, signal) => sleepFor(ms, undefined, { signal, ref: false }),
      }));
    }
  };
  /** Stops every listener (each deletes its session, so the next leader opens its own). */
  const stopListeners = async (): Promise<void> => {
    for (const [name, l] of [...listeners]) {
      await l.stop();
      listeners.delete(name);
    }
  };
  // On a PostgreSQL store the loops that must run once per fleet run on the
  // holder of the `singletons` lease only (daemon/fleet.ts); on SQLite this
  // host is the whole fleet and nothing is gated.
  const gated: Loop[] = [];
  let listenerChange: Promise<void> = Promise.resolve();
  const { hostLostMs, ...fleetTimes } = { ...fleetTimings(config), ...opts.fleet };
  const membership = postgres === undefined ? undefined : startFleetMembership({
    fleet: postgres.fleet, clock, logger: logger.child({ component: 'fleet' }),
    host: () => ({
      id: config.instanceId, capacity: { vcpus: maxVcpus, memoryMib: maxMemoryMib }, vms: system.supervisor.list().length, address: webhooks.url,
      // The leader's scale-set listeners offer the sum of these over the live hosts.
      canHold: Object.fromEntries(config.runners.map((def) => [def.name, canHold(def)])),
    }),
    ...fleetTimes,
    onLeadership: (leads) => {
      // A new leader runs the fleet's passes at once rather than after an interval.
      if (leads) for (const l of gated) l.poke();
      listenerChange = listenerChange.then(() => (leads ? startListeners() : stopListeners())).catch((err: unknown) => {
        logger.error({ err }, 'fleet: starting or stopping the scale-set listeners failed');
      });
    },
  });
  const gate = membership === undefined ? {} : { gate: () => membership.leader() };
  if (membership === undefined) startListeners();
  const reconciler = startReconciler({
    github, store, runners: webhookRunners, clock, budgetPerHour: config.github.scanBudget,
    logger: logger.child({ component: 'missed-webhooks' }), onRecovered: () => scheduler.poke(), ...gate,
  }, opts.reconcileMs ?? 60_000);
  const staleDeps = {
    github, instanceId: config.instanceId, logger: logger.child({ component: 'stale-runners' }),
    liveVmIds: () => new Set(system.supervisor.list().map((vm) => vm.id)),
    // In a fleet the leader judges every host's registrations by every host's VM records: one listing per fleet.
    ...(postgres === undefined ? {} : { fleet: fleetStaleView(postgres.fleet, postgres.vms) }),
  };
  const staleRunners = startLoop({
    name: 'stale-runners', intervalMs: opts.staleRunnersMs ?? 10 * 60_000, runAtStart: true,
    run: () => removeStaleRunners(staleDeps), logger: staleDeps.logger, now: () => clock.now(), ...gate,
  });
  const jobTruthSettings = { ...JOB_TRUTH_DEFAULTS, ...opts.jobTruth };
  const jobTruth = startJobTruth({
    github, store, truth, thresholds: jobTruthSettings, clock,
    logger: logger.child({ component: 'job-truth' }), onChanged: () => scheduler.poke(), ...gate,
  }, jobTruthSettings.intervalMs);
  const redeliver = startRedeliver({
    github, store, truth, settings: { ...REDELIVER_DEFAULTS, ...opts.redeliver }, clock, logger: logger.child({ component: 'redeliver' }), ...gate,
  });
  // Marks the hosts that stopped heartbeating lost and removes their registrations (leader only).
  const reaper = postgres === undefined || membership === undefined ? undefined : startFleetReaper({
    fleet: postgres.fleet, hostId: config.instanceId, github, clock, logger: logger.child({ component: 'fleet-reaper' }),
    ...(ssClient === undefined ? {} : { scaleSets: scaleSetRunners(ssClient, scaleSetDefs, listeners) }),
    isScaleSet: (name) => scaleSetDefs.some((d) => d.name === name),
    ...(hostLostMs === undefined ? {} : { hostLostMs }),
    ...(fleetTimes.heartbeatMs === undefined ? {} : { intervalMs: fleetTimes.heartbeatMs }),
    gate: () => membership.leader(),
  });
  gated.push(reconciler, staleRunners, jobTruth, redeliver, ...(reaper === undefined ? [] : [reaper]));
  const recordRetention = startLoop({
    name: 'record-retention', intervalMs: RETENTION_INTERVAL_MS, runAtStart: false, logger: logger.child({ component: 'record-retention' }), now: () => clock.now(),
    run: () => records.prune(clock.now() - RECORD_RETENTION_MS),
  });
  // The scheduler's own stop also marks it stopped; the rest are stopped through their Loop.
  const networkPolicy = system.policy === undefined ? [] : [startNetworkPolicy({
    network: system.policy, networks: config.networks, logger: logger.child({ component: 'network-policy' }), now: () => clock.now(),
  })];
  // The fleet's hosts and lease, read from the store at each snapshot and scrape.
  const fleetSource: FleetSourceDeps | undefined = postgres === undefined ? undefined : {
    store: postgres.fleet, leaseName: FLEET_DEFAULTS.leaseName, claims: postgres.claims,
    heartbeatMs: fleetTimes.heartbeatMs ?? FLEET_DEFAULTS.heartbeatMs, lostAfterMs: hostLostMs ?? FLEET_DEFAULTS.hostLostMs,
  };
  const loops: readonly Loop[] = [scale, reconciler, staleRunners, jobTruth, redeliver, recordRetention, deliveryRetention, consoleRetention, ...networkPolicy,
    ...(membership?.loops ?? []), ...(reaper === undefined ? [] : [reaper])];
  loopStatus = () => [...loops, ...webhooks.loops, ...listeners.values()].map((l) => l.status());
  metrics.collectFrom({
    loops: loopStatus,
    jobs: (status) => store.countJobsByDefinition(status),
    runners: () => scheduler.snapshot(),
    vms: () => system.supervisor.list(),
    definitions: () => scheduler.health(),
    capacity: () => {
      const free = hostBudget(config, system.supervisor, maxVcpus, maxMemoryMib);
      return { vcpus: maxVcpus, vcpusUsed: maxVcpus - free.cpus, memoryBytes: maxMemoryMib * 2 ** 20, memoryUsedBytes: (maxMemoryMib - free.memoryMib) * 2 ** 20 };
    },
    ...(fleetSource === undefined || membership === undefined ? {} : { fleet: async () => {
      const now = clock.now();
      const view = fleetView(await readFleet(fleetSource, now), now, config.instanceId);
      const hosts: Record<string, number> = {};
      for (const h of view.hosts) hosts[h.state] = (hosts[h.state] ?? 0) + 1;
      // What gates this host's once-per-fleet loops, not the row alone.
      return { hosts, leader: membership.leader() };
    } }),
    ...(postgres === undefined ? {} : { claimHandOvers: () => ({ ...postgres.intake.claimHandOvers() }) }),
  });
  let closing: Promise<void> | undefined;
  let draining: { drain: Drain; closed: Promise<DrainOutcome> } | undefined;
  const source = daemonAdminSource({
    config, scheduler, supervisor: system.supervisor, store, records, clock,
    loops: () => loopStatus(),
    capacity: () => ({ limit: { cpus: maxVcpus, memoryMib: maxMemoryMib }, free: hostBudget(config, system.supervisor, maxVcpus, maxMemoryMib) }),
    shuttingDown: () => draining !== undefined || closing !== undefined,
    ...(fleetSource === undefined ? {} : { fleet: fleetSource }),
  });
  adminTarget.source = source;
  let statusPage: RunningStatusPage | undefined;
  const defaultGraceMs = (config.shutdownGraceSeconds ?? DEFAULTS.shutdownGraceSeconds) * 1000;
  const running: RunningFlint = {
    url: webhooks.url,
    get statusUrl() { return statusPage?.url; },
    scheduler,
    supervisor: system.supervisor,
    records,
    loops: loopStatus,
    checkpointer: base.checkpointer,
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
        await statusPage?.close();
        await adminServer.close();
        // The listeners first: no news is taken that nobody acts on; each deletes its session.
        await listenerChange;
        await stopListeners();
        // Then the lease is given up: another host leads at its next renewal, not after the ttl.
        await membership?.stop();
        await listenerChange;
        await unlisten?.();
        await scheduler.stop();
        for (const loop of loops) await loop.stop();
        await system.supervisor.shutdown();
        await scheduler.settled();
        ownGithub?.close();
        system.close();
        await webhooks.close();
        await base.close();
        logger.info({}, 'flint serve: stopped');
      })();
      return closing;
    },
  };
  if (config.status !== undefined) {
    try {
      statusPage = await startStatusPage(config.status.address, {
        source: { status: () => source.status(), consoleLogPath: (id) => system.supervisor.consoleLogPath(id) },
        ...(config.status.token === undefined ? {} : { token: config.status.token }),
        logger: logger.child({ component: 'status-page' }),
      });
    } catch (err) {
      await running.close();
      throw err;
    }
    logger.info({ url: statusPage.url, token: config.status.token !== undefined }, 'status page listening');
  }
  return running;
}
