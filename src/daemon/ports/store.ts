/**
 * The intake's view of Flint's durable store: deliveries and the jobs they
 * describe. Small on purpose (style.md: one narrow interface per outside
 * system); the SQLite adapter and the in-memory fake both implement it and
 * run the same contract tests (src/adapters/store/intake-store.contract.ts).
 */
import type { ErrorCode } from '../../core/errors/index.ts';
import type { DeliveryOutcome, JobCommand, JobConclusion, JobStatus } from '../../core/jobs.ts';

/** One verified, parsed workflow_job delivery on its way into the store. */
export interface JobDelivery {
  /** `X-GitHub-Delivery`; unique per delivery, kept by GitHub on redelivery. */
  readonly deliveryId: string;
  /** Milliseconds since the epoch, from the injected clock. */
  readonly receivedAt: number;
  readonly command: JobCommand;
  /** The runner definition that serves the job (core/labels.ts `mostSpecificServing`); undefined records the delivery as ignored. */
  readonly definition: string | undefined;
}

export interface StoredJob {
  readonly id: number;
  readonly runId: number;
  readonly runAttempt: number;
  readonly repository: string;
  readonly name: string;
  readonly workflowName: string | null;
  readonly labels: readonly string[];
  /** Runner definition that serves it (the most specific one, when first seen). */
  readonly definition: string;
  readonly status: JobStatus;
  readonly conclusion: JobConclusion | null;
  readonly runnerName: string | null;
  readonly firstSeenAt: number;
  readonly updatedAt: number;
}

/** Outcomes that are recorded; a duplicate is by definition not recorded again. */
export type RecordedOutcome = Exclude<DeliveryOutcome, 'duplicate'>;

export interface StoredDelivery {
  readonly id: string;
  readonly event: string;
  readonly action: string;
  readonly jobId: number;
  readonly receivedAt: number;
  readonly outcome: RecordedOutcome;
}

/**
 * A delivery whose signature was valid but which Flint could not parse
 * (malformed JSON, or a workflow_job payload without a field Flint needs).
 * It is kept whole so that it can be inspected, and replayed once Flint is
 * fixed (daemon/intake/replay.ts); keeping it changes no job.
 */
export interface UnparsableDelivery {
  /** `X-GitHub-Delivery`. */
  readonly deliveryId: string;
  readonly event: string;
  /** Milliseconds since the epoch, from the injected clock. */
  readonly receivedAt: number;
  /** GitHub's headers as received, lower-case names (parse-delivery.ts `keptHeaders`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, exactly the bytes the signature covers. */
  readonly body: Uint8Array;
  /** Why it could not be parsed (the latest attempt's error). */
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

/** `unparsable`: waiting for a replay; `replayed`: parsed on a replay and recorded like any delivery. */
export type UnparsableState = 'unparsable' | 'replayed';

export interface StoredUnparsable extends UnparsableDelivery {
  readonly state: UnparsableState;
  /** When a replay last tried it; null until one did. */
  readonly replayedAt: number | null;
  /** What the last replay made of it: the delivery outcome (`accepted`, `not-handled`, …) or null. */
  readonly replayOutcome: string | null;
}

/** What a replay did to one kept delivery. */
export type UnparsableUpdate =
  | { readonly state: 'replayed'; readonly at: number; readonly outcome: string }
  | { readonly state: 'unparsable'; readonly at: number; readonly error: { readonly code: ErrorCode; readonly message: string } };

export interface IntakeStore {
  /**
   * Records a batch of deliveries in ONE durable transaction and returns the
   * outcome of each, in order. A delivery id already on record (earlier or
   * earlier in the same batch) is a `duplicate` and changes nothing. Job
   * status changes follow the job state machine (core/jobs.ts). When the
   * promise resolves, everything is committed; when it rejects, nothing of
   * the batch is (all or none).
   *
   * `committed`, when given, is called once the batch is committed and
   * visible to reads, before the promise resolves — on a store that makes
   * a commit durable after it is visible (SQLite under FULL: the WAL's
   * fsync, db.ts durableWrite) before it is durable. Not called when the
   * batch failed or was empty. Whoever acts on it early acts on jobs whose
   * deliveries are not yet acknowledged (docs/webhooks.md, "Durability and
   * throughput").
   */
  ingest(batch: readonly JobDelivery[], committed?: () => void): Promise<readonly DeliveryOutcome[]>;
  getJob(id: number): Promise<StoredJob | undefined>;
  /** Jobs on record, oldest first; optionally only those with one status. */
  listJobs(filter?: { readonly status?: JobStatus }): Promise<readonly StoredJob[]>;
  /**
   * How many jobs with this status each runner definition has on record
   * (definitions with none are absent). The scheduler's demand, read every
   * tick: a count, not a listing, so a long queue costs a tick little.
   */
  countJobsByDefinition(status: JobStatus): Promise<ReadonlyMap<string, number>>;
  /**
   * The runner names that jobs in progress name (each once): which runners
   * are busy. Read by the scheduler every tick, so names only, not jobs.
   */
  busyRunnerNames(): Promise<ReadonlySet<string>>;
  getDelivery(id: string): Promise<StoredDelivery | undefined>;
  countDeliveries(): Promise<number>;
  /**
   * Keeps a batch of unparsable deliveries in ONE durable transaction, like
   * `ingest`; a delivery id already kept is a `duplicate` and changes
   * nothing. Jobs and the `deliveries` table are not touched.
   */
  keepUnparsable(batch: readonly UnparsableDelivery[]): Promise<readonly ('kept' | 'duplicate')[]>;
  /** Kept unparsable deliveries, oldest first; optionally only those in one state. */
  listUnparsable(filter?: { readonly state?: UnparsableState }): Promise<readonly StoredUnparsable[]>;
  /** Records what a replay made of a kept delivery; an unknown id is a no-op. */
  updateUnparsable(id: string, update: UnparsableUpdate): Promise<void>;
  /**
   * Forgets deliveries (parsed and unparsable) received before `before` and
   * completed jobs last updated before it (retention). Returns how many rows went.
   */
  prune(before: number): Promise<{ readonly deliveries: number; readonly jobs: number; readonly unparsable: number }>;
}

/** What the redeliver loop did about one event (guid) whose deliveries failed. */
export interface RedeliveryRecord {
  /** The event's `X-GitHub-Delivery` GUID, shared by every attempt. */
  readonly guid: string;
  /** GitHub's id of the newest failed attempt Flint asked to redeliver. */
  readonly deliveryId: number;
  /** Redeliveries asked for so far. */
  readonly attempts: number;
  /** When the last one was asked for (ms since the epoch, injected clock). */
  readonly lastAt: number;
}

/**
 * What the job-truth and redeliver loops keep beside the intake's tables:
 * when GitHub was last asked about a job, a loop's high-water mark, and the
 * redeliveries asked for. Separate from IntakeStore so the intake's port
 * stays as it is; the SQLite adapter keeps these in the same database.
 */
export interface TruthStore {
  /** When each job was last confirmed against GitHub (job id → ms); jobs never confirmed are absent. */
  jobChecks(): Promise<ReadonlyMap<number, number>>;
  markJobChecked(jobId: number, at: number): Promise<void>;
  /** A named loop's high-water mark (ms since the epoch), undefined before its first pass. */
  getMark(name: string): Promise<number | undefined>;
  setMark(name: string, value: number): Promise<void>;
  getRedelivery(guid: string): Promise<RedeliveryRecord | undefined>;
  /** Inserts or replaces the record of `guid`. */
  putRedelivery(r: RedeliveryRecord): Promise<void>;
  /** Forgets job checks and redelivery records older than `before` (retention). */
  pruneTruth(before: number): Promise<{ readonly jobChecks: number; readonly redeliveries: number }>;
}

/**
 * When Flint received the news that moved a job (its own clock, like every
 * other figure in a job record). Null when that news never came: a job first
 * heard of as `in_progress` has no `queuedAt`.
 */
export interface JobTimes {
  readonly queuedAt: number | null;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
}

/** The JIT registration made for a VM's runner. */
export interface RunnerRequest {
  /** The runner's name, `flint-<vm id>` (core/ids.ts runnerName). */
  readonly runnerName: string;
  readonly vmId: string;
  /** When Flint asked GitHub for the registration (epoch ms, injected clock). */
  readonly requestedAt: number;
  /** GitHub's id of the registered runner. */
  readonly githubRunnerId: number;
}

/**
 * The steps of a job's life, in the order they happen for a job that made
 * Flint start a VM. A job taken by a warm-pool runner had its runner
 * requested, its VM started and the runner online BEFORE it was queued.
 */
export const JOB_RECORD_STEPS = ['queued', 'runnerRequested', 'vmStarted', 'booted', 'runnerOnline', 'jobStarted', 'finished'] as const;
export type JobRecordStep = (typeof JOB_RECORD_STEPS)[number];

/**
 * Everything Flint knows about one job's way through it, joined from the
 * job (its deliveries), the runner registration and the VM. Runners are not
 * bound to jobs: the VM is the one whose runner GitHub named as having
 * taken the job (`runnerName`), which need not be the VM started for it.
 */
export interface JobRecord {
  readonly jobId: number;
  readonly repository: string;
  readonly name: string;
  readonly definition: string;
  readonly status: JobStatus;
  readonly conclusion: JobConclusion | null;
  /** The runner that took the job (from in_progress/completed); null until one did. */
  readonly runnerName: string | null;
  /** Flint's VM behind that runner; null when the runner is not a Flint VM on record. */
  readonly vmId: string | null;
  readonly githubRunnerId: number | null;
  /** Epoch milliseconds of each step; null when it has not happened or is not known. */
  readonly at: { readonly [S in JobRecordStep]: number | null };
}

/**
 * Per-job records: the figures metrics and the status page show. The VM
 * timings come from the VM store (the supervisor's record of each VM), the
 * job timings from the intake store; this port adds the runner
 * registrations and the query that joins the three.
 */
export interface JobRecordStore {
  /** Records a runner registration; recording the same runner name again keeps the first. */
  recordRunnerRequest(request: RunnerRequest): Promise<void>;
  getJobRecord(jobId: number): Promise<JobRecord | undefined>;
  /** Records of the jobs on record, oldest first (by when the job was first seen); optionally only the newest `limit`. */
  listJobRecords(filter?: { readonly status?: JobStatus; readonly limit?: number }): Promise<readonly JobRecord[]>;
  /** Forgets runner registrations requested before `before` (retention, like IntakeStore.prune). */
  prune(before: number): Promise<{ readonly runnerRequests: number }>;
}

/** Phases of a runner as the scheduler sees it (see scheduler.ts). */
export type RunnerPhase = 'starting' | 'idle' | 'busy' | 'ending';

/**
 * The scheduler's view of one runner VM, kept so that a restarted Flint
 * rebuilds it for the VMs it adopts (a restart never kills a job).
 */
export interface RunnerState {
  readonly vmId: string;
  /** The instance that made it; a restarted Flint reads only its own. */
  readonly instanceId: string;
  /** The runner definition the VM was launched from. */
  readonly definition: string;
  readonly phase: RunnerPhase;
  /** GitHub's id of the JIT runner registered for the VM, once registered. */
  readonly githubRunnerId: number | null;
  /** Epoch ms it last became idle (for the idle grace), null when not idle. */
  readonly idleSince: number | null;
  /** Epoch ms the scheduler launched the VM. */
  readonly startedAt: number;
}

/** Where the scheduler keeps its runners (SQLite: the same file as the VM store). */
export interface RunnerStateStore {
  /** Inserts or replaces the state of `state.vmId`. */
  put(state: RunnerState): Promise<void>;
  /** Forgets a runner (its VM has ended). Idempotent. */
  remove(vmId: string): Promise<void>;
  /** Every runner of the instance, oldest launch first. */
  list(instanceId: string): Promise<RunnerState[]>;
}
