/**
 * The JobRecordStore port on PostgreSQL: the `runner_requests` table and
 * the query that joins a job (`jobs`) through the runner GitHub says took
 * it to that runner's registration and VM (`vms`), as the SQLite adapter
 * does (../job-records.ts). A Flint runner is named `flint-<vm id>`
 * (core/ids.ts), so the VM id is the name without its 6-character prefix.
 */
import type pg from 'pg';
import type { JobRecordStore } from '../../../daemon/ports/store.ts';
import { SELECT, toRecord } from '../job-record-rows.ts';
import type { Row } from '../job-record-rows.ts';
import { writeFailed } from './pool.ts';

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
