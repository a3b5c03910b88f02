/**
 * Jobs as Flint knows them: the typed commands a `workflow_job` delivery
 * becomes at the edge, and the job state machine that decides what each
 * command does to the job Flint has on record.
 *
 * Webhooks are hints (style.md): GitHub may deliver them late, twice or out
 * of order, so the state machine never moves a job backwards. A `completed`
 * that arrives before its `queued` records the job as completed, and the
 * late `queued` is then stale — it must not resurrect the job and make the
 * scheduler start a VM for work that is already done.
 *
 * Field types are taken from GitHub's published webhook schema
 * (@octokit/openapi-webhooks-types, type-only), never written by hand, so a
 * schema change shows up as a compile error here.
 */
import type { components } from '@octokit/openapi-webhooks-types';

type Schemas = components['schemas'];
/** The four `workflow_job` payloads, exactly as GitHub's schema describes them. */
export type WorkflowJobQueuedPayload = Schemas['webhook-workflow-job-queued'];
export type WorkflowJobWaitingPayload = Schemas['webhook-workflow-job-waiting'];
export type WorkflowJobInProgressPayload = Schemas['webhook-workflow-job-in-progress'];
export type WorkflowJobCompletedPayload = Schemas['webhook-workflow-job-completed'];
export type WorkflowJobPayload =
  | WorkflowJobQueuedPayload
  | WorkflowJobWaitingPayload
  | WorkflowJobInProgressPayload
  | WorkflowJobCompletedPayload;
type WorkflowJob = WorkflowJobQueuedPayload['workflow_job'];

/** The `action` of a workflow_job delivery; also the status it reports. */
export type JobAction = WorkflowJobPayload['action'];
export type JobStatus = JobAction;
export const JOB_ACTIONS = ['waiting', 'queued', 'in_progress', 'completed'] as const satisfies readonly JobAction[];

/** A finished job's conclusion, as GitHub's schema names them. */
export type JobConclusion = NonNullable<WorkflowJobCompletedPayload['workflow_job']['conclusion']>;

/** What every workflow_job delivery says about its job. */
export interface JobFacts {
  readonly id: WorkflowJob['id'];
  readonly runId: WorkflowJob['run_id'];
  readonly runAttempt: WorkflowJob['run_attempt'];
  readonly name: WorkflowJob['name'];
  readonly workflowName: WorkflowJob['workflow_name'];
  readonly headBranch: WorkflowJob['head_branch'];
  /** `runs-on` labels as GitHub sent them (case preserved). */
  readonly labels: readonly string[];
  /** "owner/repo". */
  readonly repository: WorkflowJobQueuedPayload['repository']['full_name'];
  /** Null when the delivery had none (GitHub Enterprise Server before `created_at` was added). */
  readonly createdAt: WorkflowJob['created_at'] | null;
}

/** The runner GitHub handed the job to; Flint knows its runners by name, the id is kept when sent. */
export interface RunnerRef {
  readonly id: WorkflowJob['runner_id'];
  readonly name: NonNullable<WorkflowJob['runner_name']>;
}

/** A workflow_job delivery, parsed: one variant per action. */
export type JobCommand =
  | { readonly action: 'waiting'; readonly job: JobFacts }
  | { readonly action: 'queued'; readonly job: JobFacts }
  | { readonly action: 'in_progress'; readonly job: JobFacts; readonly runner: RunnerRef | null }
  /**
   * `conclusion` is null when GitHub sent none or one its schema does not
   * name yet: the job is completed either way, and that is what releases
   * its demand.
   */
  | { readonly action: 'completed'; readonly job: JobFacts; readonly runner: RunnerRef | null; readonly conclusion: JobConclusion | null };

/**
 * What a command does to the job on record:
 *   advance  the job moves to the command's status (or is first recorded)
 *   repeat   the job already has this status (a second delivery of the same news)
 *   stale    the job is already further along; the command is older news and changes nothing
 */
export type JobTransition = 'advance' | 'repeat' | 'stale';

/** `absent` is "no record of this job yet". */
export type JobRecordState = JobStatus | 'absent';

/**
 * The job state machine as data: row = status on record, column = action of
 * the arriving command. The normal life is waiting → queued → in_progress →
 * completed; `waiting` is optional (only jobs behind an environment's
 * protection rules wait), and any step may be skipped because a delivery
 * was lost.
 */
export const JOB_TRANSITIONS: Readonly<Record<JobRecordState, Readonly<Record<JobAction, JobTransition>>>> = {
  // First news of a job, whatever it is, is recorded. A first `completed`
  // still creates the record: that is what stops a late `queued` from
  // resurrecting the job.
  absent: { waiting: 'advance', queued: 'advance', in_progress: 'advance', completed: 'advance' },
  waiting: { waiting: 'repeat', queued: 'advance', in_progress: 'advance', completed: 'advance' },
  // queued → waiting is stale, not a step back: GitHub sends `waiting`
  // before the job is queued (approval pending), never after.
  queued: { waiting: 'stale', queued: 'repeat', in_progress: 'advance', completed: 'advance' },
  in_progress: { waiting: 'stale', queued: 'stale', in_progress: 'repeat', completed: 'advance' },
  // completed is terminal: a re-run gets a new job id from GitHub.
  completed: { waiting: 'stale', queued: 'stale', in_progress: 'stale', completed: 'repeat' },
};

export function decideJobTransition(onRecord: JobRecordState, action: JobAction): JobTransition {
  return JOB_TRANSITIONS[onRecord][action];
}

/**
 * What became of one delivery; recorded with it.
 *   accepted   the job advanced (or was first recorded)
 *   repeat     same status as on record; nothing changed
 *   stale      older than what is on record; nothing changed
 *   ignored    no runner definition can serve the job's labels; no job recorded
 *   duplicate  this delivery id was seen before; nothing stored (never recorded itself)
 */
export type DeliveryOutcome = 'accepted' | 'repeat' | 'stale' | 'ignored' | 'duplicate';

export function outcomeOf(transition: JobTransition): Exclude<DeliveryOutcome, 'ignored' | 'duplicate'> {
  return transition === 'advance' ? 'accepted' : transition;
}
