/**
 * The TruthStore port (daemon/ports/store.ts) on SQLite: three small tables
 * in Flint's one state database (db.ts), beside the intake's. Additive: the
 * intake's tables are not touched.
 */
import type { Db } from './db.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { RedeliveryRecord, TruthStore } from '../../daemon/ports/store.ts';

const SCHEMA = `
-- When the job-truth loop last asked GitHub about a job.
CREATE TABLE IF NOT EXISTS job_checks (
  job_id     INTEGER PRIMARY KEY,
  checked_at INTEGER NOT NULL      -- ms since the epoch
);
-- High-water marks of named loops (the redeliver loop's "listed up to").
CREATE TABLE IF NOT EXISTS loop_marks (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
-- Redeliveries the redeliver loop asked GitHub for, per event.
CREATE TABLE IF NOT EXISTS redeliveries (
  guid        TEXT PRIMARY KEY,    -- X-GitHub-Delivery
  delivery_id INTEGER NOT NULL,    -- the failed attempt redelivered last
  attempts    INTEGER NOT NULL,
  last_at     INTEGER NOT NULL     -- ms since the epoch
) WITHOUT ROWID;
`;

interface RedeliveryRow { guid: string; delivery_id: number; attempts: number; last_at: number }

export function createSqliteTruthStore(db: Db): TruthStore {
  try {
    db.exec(SCHEMA);
  } catch (err) {
    throw new FlintError('FLINT_ERR_STORE_SCHEMA', `could not create the job-truth tables in ${db.name}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
  const selectChecks = db.prepare<[], { job_id: number; checked_at: number }>('SELECT job_id, checked_at FROM job_checks');
  const upsertCheck = db.prepare<[number, number]>(
    'INSERT INTO job_checks (job_id, checked_at) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET checked_at = excluded.checked_at');
  const selectMark = db.prepare<[string], { value: number }>('SELECT value FROM loop_marks WHERE name = ?');
  const upsertMark = db.prepare<[string, number]>('INSERT INTO loop_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
  const selectRedelivery = db.prepare<[string], RedeliveryRow>('SELECT * FROM redeliveries WHERE guid = ?');
  const upsertRedelivery = db.prepare<[string, number, number, number]>(
    `INSERT INTO redeliveries (guid, delivery_id, attempts, last_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (guid) DO UPDATE SET delivery_id = excluded.delivery_id, attempts = excluded.attempts, last_at = excluded.last_at`);
  const pruneChecks = db.prepare<[number]>('DELETE FROM job_checks WHERE checked_at < ?');
  const pruneRedeliveries = db.prepare<[number]>('DELETE FROM redeliveries WHERE last_at < ?');

  const write = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `could not record ${what}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
    }
  };

  return {
    async jobChecks() {
      return new Map(selectChecks.all().map((r) => [r.job_id, r.checked_at]));
    },
    async markJobChecked(jobId, at) {
      write(`the confirmation of job ${jobId}`, () => upsertCheck.run(jobId, at));
    },
    async getMark(name) {
      return selectMark.get(name)?.value;
    },
    async setMark(name, value) {
      write(`the mark of loop ${name}`, () => upsertMark.run(name, value));
    },
    async getRedelivery(guid) {
      const r = selectRedelivery.get(guid);
      return r === undefined ? undefined : toRedelivery(r);
    },
    async putRedelivery(r) {
      write(`the redelivery of ${r.guid}`, () => upsertRedelivery.run(r.guid, r.deliveryId, r.attempts, r.lastAt));
    },
    async pruneTruth(before) {
      return write('a prune of job checks and redeliveries', () => db.transaction(() => ({
        jobChecks: pruneChecks.run(before).changes, redeliveries: pruneRedeliveries.run(before).changes,
      }))());
    },
  };
}

function toRedelivery(r: RedeliveryRow): RedeliveryRecord {
  return { guid: r.guid, deliveryId: r.delivery_id, attempts: r.attempts, lastAt: r.last_at };
}
