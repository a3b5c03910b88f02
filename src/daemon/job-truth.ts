/**
 * The "job-truth" loop: webhooks are hints, GitHub is the truth — in the
 * direction the missed-webhooks loop does not cover.
 *
 * Every interval it picks the jobs Flint holds as `queued` or `in_progress`
 * whose news is overdue (core/job-truth.ts: thresholds per status, a cap
 * per pass), asks GitHub for each one (GET …/actions/jobs/{id}), and
 * records the answer as if the delivery had come: through `ingest`, so the
 * job state machine decides, under a synthetic delivery id
 * (`job-truth:<job id>:<action>`) that keeps a second pass from counting
 * twice. Persist, then act: the store is written first, the scheduler is
 * poked afterwards, and its next tick sees the demand released.
 *
 * A GitHub failure ends the pass (the loop logs it with its code and the
 * next pass tries again), so an outage or a rate limit costs one failed
 * request per pass, not one per job.
 */
import { startLoop } from './loop.ts';
import type { Loop } from './loop.ts';
import { commandFromAnswer, overdueJobs } from '../core/job-truth.ts';
import type { JobTruthThresholds } from '../core/job-truth.ts';
import type { JobFacts } from '../core/jobs.ts';
import type { GitHubPort } from './ports/github.ts';
import type { IntakeStore, StoredJob, TruthStore } from './ports/store.ts';
import type { Logger } from './vm/supervisor.ts';

export const JOB_TRUTH_DEFAULTS: JobTruthThresholds & { readonly intervalMs: number } = {
  intervalMs: 60_000,
  // Long enough for a VM to boot and the runner to take the job (its
  // in_progress then arrives); short enough that a cancelled job's VM is
  // not kept for long.
  queuedAfterMs: 5 * 60_000,
  // Jobs run for minutes to hours; a lost `completed` is noticed within
  // this, at one request per running job per this interval.
  inProgressAfterMs: 15 * 60_000,
  // With the 60 s interval: at most 600 requests an hour, an eighth of an
  // installation's 5,000.
  maxPerPass: 10,
};

export interface JobTruthDeps {
  readonly github: Pick<GitHubPort, 'getJob'>;
  readonly store: Pick<IntakeStore, 'ingest' | 'listJobs'>;
  readonly truth: Pick<TruthStore, 'jobChecks' | 'markJobChecked'>;
  readonly thresholds: JobTruthThresholds;
  readonly clock: { now(): number };
  readonly logger: Logger;
  /** Passes run only while this answers true (the fleet's leader; loop.ts `gate`). */
  readonly gate?: () => boolean;
  /** Called when a job's status changed (the scheduler's poke). */
  readonly onChanged?: () => void;
}

export interface JobTruthChange {
  readonly jobId: number;
  readonly from: StoredJob['status'];
  readonly to: StoredJob['status'];
}

function factsOf(j: StoredJob): JobFacts {
  return {
    id: j.id, runId: j.runId, runAttempt: j.runAttempt, name: j.name, workflowName: j.workflowName,
    headBranch: null, labels: j.labels, repository: j.repository, createdAt: null,
  };
}

/** One pass; returns the jobs whose status GitHub's answer changed. */
export async function confirmOverdueJobs(deps: JobTruthDeps): Promise<JobTruthChange[]> {
  const now = deps.clock.now();
  const held = [...(await deps.store.listJobs({ status: 'queued' })), ...(await deps.store.listJobs({ status: 'in_progress' }))];
  if (held.length === 0) return [];
  const due = overdueJobs(held, await deps.truth.jobChecks(), now, deps.thresholds);
  const changes: JobTruthChange[] = [];
  for (const job of due) {
    const slash = job.repository.indexOf('/');
    const owner = job.repository.slice(0, slash);
    const repo = job.repository.slice(slash + 1);
    const answer = await deps.github.getJob(owner, repo, job.id);
    const command = commandFromAnswer(factsOf(job), answer);
    if (command.action !== job.status) {
      const deliveryId = `job-truth:${job.id}:${answer === undefined ? 'gone' : command.action}`;
      const [outcome] = await deps.store.ingest([{ deliveryId, receivedAt: now, command, definition: job.definition }]);
      if (outcome === 'accepted') {
        changes.push({ jobId: job.id, from: job.status, to: command.action });
        deps.logger.warn({ jobId: job.id, repository: job.repository, from: job.status, to: command.action, ...(answer === undefined ? { gone: true } : {}) },
          answer === undefined
            ? 'job-truth: GitHub no longer has this job (or its repository); recorded it as completed'
            : `job-truth: GitHub says this job is ${command.action}; its delivery never came, recorded it`);
      }
    }
    await deps.truth.markJobChecked(job.id, now);
  }
  if (changes.length > 0) deps.onChanged?.();
  return changes;
}

/** The job-truth loop: `confirmOverdueJobs` every `intervalMs`, never two passes at once. */
export function startJobTruth(deps: JobTruthDeps, intervalMs: number): Loop {
  return startLoop({ name: 'job-truth', intervalMs, runAtStart: false, run: () => confirmOverdueJobs(deps), logger: deps.logger, now: () => deps.clock.now(),
    ...(deps.gate === undefined ? {} : { gate: deps.gate }) });
}
