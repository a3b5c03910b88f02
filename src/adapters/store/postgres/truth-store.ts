/**
 * The TruthStore port on PostgreSQL: tables `job_checks`, `loop_marks` and
 * `redeliveries` (migrations.ts), as in the SQLite adapter (../truth-store.ts).
 */
import type pg from 'pg';
import type { RedeliveryRecord, TruthStore } from '../../../daemon/ports/store.ts';
import { inTransaction, writeFailed } from './pool.ts';

interface RedeliveryRow { guid: string; delivery_id: number; attempts: number; last_at: number }

export function createPostgresTruthStore(pool: pg.Pool): TruthStore {
  const write = async (what: string, sql: string, values: unknown[]): Promise<void> => {
    try {
      await pool.query(sql, values);
    } catch (err) {
      throw writeFailed(what, err);
    }
  };
  return {
    async jobChecks() {
      const { rows } = await pool.query<{ job_id: number; checked_at: number }>('SELECT job_id, checked_at FROM job_checks');
      return new Map(rows.map((r) => [r.job_id, r.checked_at]));
    },
    async markJobChecked(jobId, at) {
      await write(`the confirmation of job ${jobId}`,
        'INSERT INTO job_checks (job_id, checked_at) VALUES ($1, $2) ON CONFLICT (job_id) DO UPDATE SET checked_at = excluded.checked_at', [jobId, at]);
    },
    async getMark(name) {
      const { rows } = await pool.query<{ value: number }>('SELECT value FROM loop_marks WHERE name = $1', [name]);
      return rows[0]?.value;
    },
    async setMark(name, value) {
      await write(`the mark of loop ${name}`,
        'INSERT INTO loop_marks (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [name, value]);
    },
    async getRedelivery(guid) {
      const { rows } = await pool.query<RedeliveryRow>('SELECT guid, delivery_id, attempts, last_at FROM redeliveries WHERE guid = $1', [guid]);
      return rows[0] === undefined ? undefined : toRedelivery(rows[0]);
    },
    async putRedelivery(r) {
      await write(`the redelivery of ${r.guid}`,
        `INSERT INTO redeliveries (guid, delivery_id, attempts, last_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (guid) DO UPDATE SET delivery_id = excluded.delivery_id, attempts = excluded.attempts, last_at = excluded.last_at`,
        [r.guid, r.deliveryId, r.attempts, r.lastAt]);
    },
    async pruneTruth(before) {
      try {
        return await inTransaction(pool, async (client) => ({
          jobChecks: (await client.query('DELETE FROM job_checks WHERE checked_at < $1', [before])).rowCount ?? 0,
          redeliveries: (await client.query('DELETE FROM redeliveries WHERE last_at < $1', [before])).rowCount ?? 0,
        }));
      } catch (err) {
        throw writeFailed('a prune of job checks and redeliveries', err);
      }
    },
  };
}

function toRedelivery(r: RedeliveryRow): RedeliveryRecord {
  return { guid: r.guid, deliveryId: r.delivery_id, attempts: r.attempts, lastAt: r.last_at };
}
