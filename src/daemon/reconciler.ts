/**
 * The "missed-webhooks" loop: webhooks are hints, GitHub is the truth.
 *
 * Every interval it asks GitHub for the jobs that are queued across the
 * installation's repositories and records, as if a `queued` delivery had
 * come, each one Flint has no record of and some runner definition can
 * serve. The store's state machine makes this safe to repeat: a job already
 * on record (queued, running or done) is left as it is. The synthetic
 * delivery id (`reconcile:<job id>`) keeps a second pass from counting twice.
 */
import { startLoop } from './loop.ts';
import type { Loop } from './loop.ts';
import { mostSpecificServing } from '../core/labels.ts';
import type { JobCommand } from '../core/jobs.ts';
import type { GitHubPort, WorkflowJob } from './ports/github.ts';
import type { IntakeStore } from './ports/store.ts';
import type { Logger } from './vm/supervisor.ts';

export interface ReconcilerDeps {
  readonly github: Pick<GitHubPort, 'listQueuedJobs'>;
  readonly store: Pick<IntakeStore, 'ingest' | 'getJob'>;
  readonly runners: readonly { readonly name: string; readonly labels: readonly string[] }[];
  readonly clock: { now(): number };
  readonly logger: Logger;
  /** Called when a missed job was recorded (the scheduler's poke). */
  readonly onRecovered?: () => void;
}

export function queuedCommand(job: WorkflowJob): JobCommand {
  return {
    action: 'queued',
    job: {
      id: job.id,
      runId: job.runId,
      runAttempt: 1,
      name: job.name,
      workflowName: null,
      headBranch: null,
      labels: job.labels,
      repository: `${job.owner}/${job.repo}`,
      createdAt: job.createdAt,
    },
  };
}

/** One pass; returns the ids of the jobs it recovered. */
export async function reconcileQueuedJobs(deps: ReconcilerDeps): Promise<number[]> {
  const queued = await deps.github.listQueuedJobs();
  const recovered: number[] = [];
  for (const job of queued) {
    const definition = mostSpecificServing(deps.runners, job.labels)?.name;
    if (definition === undefined) continue;
    if ((await deps.store.getJob(job.id)) !== undefined) continue;
    const [outcome] = await deps.store.ingest([{ deliveryId: `reconcile:${job.id}`, receivedAt: deps.clock.now(), command: queuedCommand(job), definition }]);
    if (outcome === 'accepted') recovered.push(job.id);
  }
  if (recovered.length > 0) {
    deps.logger.warn({ jobs: recovered }, 'missed-webhooks: recorded queued jobs whose webhook never arrived');
    deps.onRecovered?.();
  }
  return recovered;
}

/** The missed-webhooks loop: `reconcileQueuedJobs` every `intervalMs`, never two passes at once. */
export function startReconciler(deps: ReconcilerDeps, intervalMs: number): Loop {
  return startLoop({ name: 'missed-webhooks', intervalMs, runAtStart: false, run: () => reconcileQueuedJobs(deps), logger: deps.logger, now: () => deps.clock.now() });
}
