/**
 * Job truth, the pure half: which jobs Flint holds as waiting for news are
 * overdue for a look at GitHub, and what GitHub's answer means as a job
 * command. The command then goes through the same job state machine as a
 * webhook delivery (jobs.ts), so an answer can never move a job backwards.
 *
 * Why: a lost `in_progress` or `completed` delivery would otherwise leave
 * the job `queued` (phantom demand: the scheduler keeps a VM up for it) or
 * `in_progress` forever; a job cancelled while queued must release its
 * demand even when its `completed` delivery never came.
 */
import type { JobCommand, JobConclusion, JobFacts, JobStatus } from './jobs.ts';

export interface JobTruthThresholds {
  /** A queued job with no news (delivery or confirmation) for this long is confirmed. */
  readonly queuedAfterMs: number;
  /** An in-progress job with no news for this long is confirmed. */
  readonly inProgressAfterMs: number;
  /** Most jobs confirmed in one pass (each costs one GitHub request). */
  readonly maxPerPass: number;
}

/** What the decision needs of a job on record. */
export interface HeldJob {
  readonly id: number;
  readonly status: JobStatus;
  /** Last status change on record (ms). */
  readonly updatedAt: number;
}

/**
 * The jobs to confirm now: queued or in progress, silent for longer than
 * their status's threshold since their last news (the later of the last
 * status change and the last confirmation), longest silent first, at most
 * `maxPerPass`. The rest wait for a later pass, so a long list costs a
 * bounded number of requests per pass.
 */
export function overdueJobs<J extends HeldJob>(jobs: readonly J[], checkedAt: ReadonlyMap<number, number>, now: number, t: JobTruthThresholds): J[] {
  const silence = (j: J): number => now - Math.max(j.updatedAt, checkedAt.get(j.id) ?? Number.NEGATIVE_INFINITY);
  return jobs
    .filter((j) => (j.status === 'queued' && silence(j) >= t.queuedAfterMs) || (j.status === 'in_progress' && silence(j) >= t.inProgressAfterMs))
    .sort((a, b) => silence(b) - silence(a) || a.id - b.id)
    .slice(0, Math.max(0, t.maxPerPass));
}

/** GitHub's REST answer for one job, as much of it as the decision uses. */
export interface GitHubJobAnswer {
  /** REST job statuses: queued, in_progress, completed, waiting, requested, pending. */
  readonly status: string;
  readonly conclusion: string | null;
  readonly runnerId: number | null;
  readonly runnerName: string | null;
}

const CONCLUSIONS: ReadonlySet<string> = new Set(['success', 'failure', 'skipped', 'cancelled', 'action_required', 'neutral', 'timed_out'] satisfies JobConclusion[]);

/**
 * The command GitHub's answer amounts to. `undefined` (the job or its
 * repository is gone: 404) is a completed job with no conclusion: nothing
 * will ever run it, so its demand goes. `requested` and `pending` are jobs
 * not yet handed to a runner: queued.
 */
export function commandFromAnswer(job: JobFacts, answer: GitHubJobAnswer | undefined): JobCommand {
  if (answer === undefined) return { action: 'completed', job, runner: null, conclusion: null };
  const runner = answer.runnerName === null ? null : { id: answer.runnerId, name: answer.runnerName };
  switch (answer.status) {
    case 'completed':
      // Checked against CONCLUSIONS, which holds only JobConclusion values; an unknown one still completes the job.
      return { action: 'completed', job, runner, conclusion: answer.conclusion !== null && CONCLUSIONS.has(answer.conclusion) ? (answer.conclusion as JobConclusion) : null };
    case 'in_progress':
      return { action: 'in_progress', job, runner };
    case 'waiting':
      return { action: 'waiting', job };
    default:
      return { action: 'queued', job };
  }
}
