/**
 * The query behind per-job records and how its rows become JobRecords,
 * shared by the SQLite (job-records.ts) and PostgreSQL
 * (postgres/job-records.ts) adapters: the same tables and the same SQL on both.
 */
import type { JobConclusion, JobStatus } from '../../core/jobs.ts';
import type { JobRecord } from '../../daemon/ports/store.ts';

// 'flint-' is 6 characters: substr(runner_name, 7) is the VM id (core/ids.ts runnerName).
export const SELECT = `
SELECT j.id AS job_id, j.repository, j.name, j.definition, j.status, j.conclusion, j.runner_name,
       j.queued_at, j.started_at AS job_started_at, j.completed_at,
       v.id AS vm_id, v.started_at AS vm_started_at, v.booted_at, v.runner_started_at,
       r.requested_at, r.github_runner_id
FROM jobs j
LEFT JOIN runner_requests r ON r.runner_name = j.runner_name
LEFT JOIN vms v ON j.runner_name LIKE 'flint-%' AND v.id = substr(j.runner_name, 7)
`;

export interface Row {
  job_id: number; repository: string; name: string; definition: string; status: string; conclusion: string | null;
  runner_name: string | null; queued_at: number | null; job_started_at: number | null; completed_at: number | null;
  vm_id: string | null; vm_started_at: number | null; booted_at: number | null; runner_started_at: number | null;
  requested_at: number | null; github_runner_id: number | null;
}

// The intake's CHECK constraint holds `status` to the JobStatus values, and
// `conclusion` was a JobConclusion when the intake wrote it.
export function toRecord(r: Row): JobRecord {
  return {
    jobId: r.job_id, repository: r.repository, name: r.name, definition: r.definition,
    status: r.status as JobStatus, conclusion: r.conclusion as JobConclusion | null,
    runnerName: r.runner_name, vmId: r.vm_id, githubRunnerId: r.github_runner_id,
    at: {
      queued: r.queued_at, runnerRequested: r.requested_at, vmStarted: r.vm_started_at, booted: r.booted_at,
      runnerOnline: r.runner_started_at, jobStarted: r.job_started_at, finished: r.completed_at,
    },
  };
}
