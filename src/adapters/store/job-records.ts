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
import { sharedRelaxedBatch } from './db.ts';
import type { Db } from './db.ts';
import { ensureIntakeSchema } from './intake-store.ts';
import { ensureVmSchema } from './vms.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { JobRecordStore } from '../../daemon/ports/store.ts';
import { SELECT, toRecord } from './job-record-rows.ts';
import type { Row } from './job-record-rows.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runner_requests (
  runner_name      TEXT PRIMARY KEY,  -- flint-<vm id>
  vm_id            TEXT NOT NULL,
  requested_at     INTEGER NOT NULL,  -- ms since the epoch
  github_runner_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runner_requests_requested_at ON runner_requests (requested_at);
`;

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

  const batched = sharedRelaxedBatch(db);

  return {
    async recordRunnerRequest(r) {
      try {
        // NORMAL: the registration lives on GitHub, and a power loss that
        // drops this row leaves it to the stale-runners loop (db.ts
        // relaxedWrite); committed with the other relaxed writes of its turn.
        await batched(() => insert.run(r.runnerName, r.vmId, r.requestedAt, r.githubRunnerId));
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
