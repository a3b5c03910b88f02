/**
 * Per-job records on SQLite (the JobRecordStore port): the
 * `runner_requests` table, and one query that joins a job (`jobs`, the
 * intake's table) through the runner GitHub says took it to that runner's
 * registration and VM (`vms`, the supervisor's table). All three live in
 * Flint's one state database (db.ts), so the join is one statement.
 *
 * The join key is the runner name: a Flint runner is named `flint-<vm id>`
 * (core/ids.ts), so `vms.id` is the name without its prefix. A job taken by
 * a runner that is not Flint's keeps its job times and has no VM.
 */
import { relaxedWrite } from './db.ts';
import type { Db } from './db.ts';
import { ensureIntakeSchema } from './intake-store.ts';
import { ensureVmSchema } from './vms.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { JobConclusion, JobStatus } from '../../core/jobs.ts';
import type { JobRecord, JobRecordStore } from '../../daemon/ports/store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runner_requests (
  runner_name      TEXT PRIMARY KEY,  -- flint-<vm id>
  vm_id            TEXT NOT NULL,
  requested_at     INTEGER NOT NULL,  -- ms since the epoch
  github_runner_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runner_requests_requested_at ON runner_requests (requested_at);
`;

// 'flint-' is 6 characters: substr(runner_name, 7) is the VM id (core/ids.ts runnerName).
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

export function createSqliteJobRecords(db: Db): JobRecordStore {
  try {
    ensureIntakeSchema(db);
    ensureVmSchema(db);
    db.exec(SCHEMA);
  } catch (err) {
    throw new FlintError('FLINT_ERR_STORE_SCHEMA', `could not create the job record tables in ${db.name}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
  const insert = db.prepare<[string, string, number, number]>(
    'INSERT INTO runner_requests (runner_name, vm_id, requested_at, github_runner_id) VALUES (?, ?, ?, ?) ON CONFLICT (runner_name) DO NOTHING');
  const one = db.prepare<[number], Row>(`${SELECT} WHERE j.id = ?`);
  const all = db.prepare<[], Row>(`${SELECT} ORDER BY j.first_seen_at, j.id`);
  const byStatus = db.prepare<[string], Row>(`${SELECT} WHERE j.status = ? ORDER BY j.first_seen_at, j.id`);
  const prune = db.prepare<[number]>('DELETE FROM runner_requests WHERE requested_at < ?');

  return {
    async recordRunnerRequest(r) {
      try {
        // NORMAL: the registration lives on GitHub, and a power loss that
        // drops this row leaves it to the stale-runners loop (db.ts relaxedWrite).
        relaxedWrite(db, () => insert.run(r.runnerName, r.vmId, r.requestedAt, r.githubRunnerId));
      } catch (err) {
        throw new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `could not record the runner registration ${r.runnerName}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
      }
    },
    async getJobRecord(jobId) {
      const row = one.get(jobId);
      return row === undefined ? undefined : toRecord(row);
    },
    async listJobRecords(filter = {}) {
      const rows = (filter.status === undefined ? all.all() : byStatus.all(filter.status)).map(toRecord);
      return filter.limit === undefined ? rows : rows.slice(Math.max(0, rows.length - filter.limit));
    },
    async prune(before) {
      return { runnerRequests: prune.run(before).changes };
    },
  };
}
