/**
 * The JobRecordStore port on PostgreSQL: the `runner_requests` table and
 * the query that joins a job (`jobs`) through the runner GitHub says took
 * it to that runner's registration and VM (`vms`), as the SQLite adapter
 * does (../job-records.ts). A Flint runner is named `flint-<vm id>`
 * (core/ids.ts), so the VM id is the name without its 6-character prefix.
 */
import type pg from 'pg';
import type { JobConclusion, JobStatus } from '../../../core/jobs.ts';
import type { JobRecord, JobRecordStore } from '../../../daemon/ports/store.ts';
import { writeFailed } from './pool.ts';

const SELECT = `
SELECT j.id AS job_id, j.repository, j.name, j.definition, j.status, j.conclusion, j.runner_name,
       j.queued_at, j.started_at AS job_started_at, j.completed_at,
       v.id AS vm_id, v.started_at AS vm_started_at, v.booted_at, v.runner_started_at,
       r.requested_at, r.github_runner_id
FROM jobs j
LEFT JOIN runner_requests r ON r.runner_name = j.runner_name
LEFT JOIN vms v ON j.runner_name LIKE 'flint-%' AND v.id = substr(j.runner_name, 7)
`;

interface Row {
  job_id: number; repository: string; name: string; definition: string; status: string; conclusion: string | null;
  runner_name: string | null; queued_at: number | null; job_started_at: number | null; completed_at: number | null;
  vm_id: string | null; vm_started_at: number | null; booted_at: number | null; runner_started_at: number | null;
  requested_at: number | null; github_runner_id: number | null;
}

// The intake's CHECK constraint holds `status` to the JobStatus values, and
// `conclusion` was a JobConclusion when the intake wrote it.
function toRecord(r: Row): JobRecord {
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

export function createPostgresJobRecords(pool: pg.Pool): JobRecordStore {
  return {
    async recordRunnerRequest(r) {
      try {
        await pool.query(
          'INSERT INTO runner_requests (runner_name, vm_id, requested_at, github_runner_id) VALUES ($1, $2, $3, $4) ON CONFLICT (runner_name) DO NOTHING',
          [r.runnerName, r.vmId, r.requestedAt, r.githubRunnerId]);
      } catch (err) {
        throw writeFailed(`the runner registration ${r.runnerName}`, err);
      }
    },
    async getJobRecord(jobId) {
      const { rows } = await pool.query<Row>(`${SELECT} WHERE j.id = $1`, [jobId]);
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async listJobRecords(filter = {}) {
      const values: unknown[] = [];
      const where = filter.status === undefined ? '' : `WHERE j.status = $${values.push(filter.status)}`;
      if (filter.limit === undefined) {
        return (await pool.query<Row>(`${SELECT} ${where} ORDER BY j.first_seen_at, j.id`, values)).rows.map(toRecord);
      }
      // The newest `limit`, returned oldest first like the rest.
      const limit = `LIMIT $${values.push(Math.max(0, filter.limit))}`;
      return (await pool.query<Row>(`${SELECT} ${where} ORDER BY j.first_seen_at DESC, j.id DESC ${limit}`, values)).rows.map(toRecord).reverse();
    },
    async prune(before) {
      const r = await pool.query('DELETE FROM runner_requests WHERE requested_at < $1', [before]);
      return { runnerRequests: r.rowCount ?? 0 };
    },
  };
}
