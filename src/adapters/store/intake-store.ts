/**
 * The intake store on SQLite: the `deliveries`, `jobs` and
 * `unparsable_deliveries` tables in Flint's
 * one state database (db.ts).
 *
 * Durability: `ingest` commits one transaction per batch before it returns,
 * so a delivery is on disk before its 2xx leaves (db.ts durableWrite: under
 * FULL, the WAL's fsync runs off the event loop and is awaited). How far
 * "on disk" goes is the connection's `synchronous` setting (see docs/webhooks.md: FULL
 * survives power loss, NORMAL in WAL mode survives a crash of Flint but not
 * of the machine).
 */
import { durableWrite } from './db.ts';
import type { Db } from './db.ts';
import type Database from 'better-sqlite3';
import type { DeliveryOutcome, JobAction, JobConclusion, JobStatus } from '../../core/jobs.ts';
import { decideJobTransition, outcomeOf } from '../../core/jobs.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import type { IntakeStore, JobDelivery, RecordedOutcome, StoredDelivery, StoredJob, StoredUnparsable, UnparsableDelivery, UnparsableState } from '../../daemon/ports/store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS deliveries (
  id          TEXT PRIMARY KEY,      -- X-GitHub-Delivery
  event       TEXT NOT NULL,
  action      TEXT NOT NULL,
  job_id      INTEGER NOT NULL,
  received_at INTEGER NOT NULL,      -- ms since the epoch
  outcome     TEXT NOT NULL CHECK (outcome IN ('accepted', 'repeat', 'stale', 'ignored'))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_received_at ON deliveries (received_at);
CREATE TABLE IF NOT EXISTS jobs (
  id            INTEGER PRIMARY KEY, -- GitHub's workflow job id
  run_id        INTEGER NOT NULL,
  run_attempt   INTEGER NOT NULL,
  repository    TEXT NOT NULL,
  name          TEXT NOT NULL,
  workflow_name TEXT,
  labels        TEXT NOT NULL,       -- JSON array of strings
  definition    TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed')),
  conclusion    TEXT,
  runner_name   TEXT,
  first_seen_at INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, first_seen_at);
-- Covers the scheduler's per-tick count of queued jobs per definition.
CREATE INDEX IF NOT EXISTS jobs_status_definition ON jobs (status, definition);
-- Signed deliveries Flint could not parse, kept whole for inspection and replay.
CREATE TABLE IF NOT EXISTS unparsable_deliveries (
  id             TEXT PRIMARY KEY,   -- X-GitHub-Delivery
  event          TEXT NOT NULL,
  received_at    INTEGER NOT NULL,   -- ms since the epoch
  headers        TEXT NOT NULL,      -- JSON object, lower-case names
  body           BLOB NOT NULL,      -- the raw bytes the signature covers
  error_code     TEXT NOT NULL,
  error_message  TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('unparsable', 'replayed')),
  replayed_at    INTEGER,
  replay_outcome TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS unparsable_deliveries_state ON unparsable_deliveries (state, received_at);
`;

interface JobRow {
  id: number; run_id: number; run_attempt: number; repository: string; name: string; workflow_name: string | null;
  labels: string; definition: string; status: string; conclusion: string | null; runner_name: string | null;
  first_seen_at: number; updated_at: number;
}
interface DeliveryRow { id: string; event: string; action: string; job_id: number; received_at: number; outcome: string }
interface UnparsableRow {
  id: string; event: string; received_at: number; headers: string; body: Buffer; error_code: string; error_message: string;
  state: string; replayed_at: number | null; replay_outcome: string | null;
}

/**
 * Columns added after the first release of the `jobs` table: when Flint
 * received the delivery that moved the job to each status (ms since the
 * epoch; NULL when that news never came). Added to an older file on open.
 */
const JOB_TIME_COLUMNS = { queued: 'queued_at', in_progress: 'started_at', completed: 'completed_at' } as const;

/** Creates (or brings up to date) the intake's tables; idempotent. Other modules that query `jobs` call it first. */
export function ensureIntakeSchema(db: Db): void {
  try {
    db.exec(SCHEMA);
    const have = new Set((db.prepare('PRAGMA table_info(jobs)').all() as Array<{ name: string }>).map((c) => c.name)); // PRAGMA table_info rows carry `name`
    for (const column of Object.values(JOB_TIME_COLUMNS)) {
      if (!have.has(column)) db.exec(`ALTER TABLE jobs ADD COLUMN ${column} INTEGER`);
    }
  } catch (err) {
    throw new FlintError('FLINT_ERR_STORE_SCHEMA', `could not create the intake tables in ${db.name}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
}

export function createSqliteIntakeStore(db: Db): IntakeStore {
  ensureIntakeSchema(db);
  const insertDelivery = db.prepare<[string, string, string, number, number, string]>(
    'INSERT INTO deliveries (id, event, action, job_id, received_at, outcome) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING');
  const statusOf = db.prepare<[number], { status: JobStatus }>('SELECT status FROM jobs WHERE id = ?');
  // The first delivery of each status sets its time column (JOB_TIME_COLUMNS)
  // in the same statement that records the status; nothing moves it later.
  const insertJob = db.prepare<[number, number, number, string, string, string | null, string, string, string, string | null, string | null, number, number,
    number | null, number | null, number | null]>(
    `INSERT INTO jobs (id, run_id, run_attempt, repository, name, workflow_name, labels, definition, status, conclusion, runner_name, first_seen_at, updated_at,
       queued_at, started_at, completed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  // COALESCE: an `in_progress` names the runner; a later `completed` that
  // lost it (GitHub sends null for jobs cancelled before they started) keeps it.
  const advance = 'UPDATE jobs SET status = @status, conclusion = @conclusion, runner_name = COALESCE(@runnerName, runner_name), updated_at = @at';
  type Advance = { status: string; conclusion: string | null; runnerName: string | null; at: number; id: number };
  const stamped = (column: string) => db.prepare<[Advance]>(`${advance}, ${column} = COALESCE(${column}, @at) WHERE id = @id`);
  const advanceJob: Record<JobAction, Database.Statement<[Advance]>> = {
    waiting: db.prepare<[Advance]>(`${advance} WHERE id = @id`),
    queued: stamped(JOB_TIME_COLUMNS.queued), in_progress: stamped(JOB_TIME_COLUMNS.in_progress), completed: stamped(JOB_TIME_COLUMNS.completed),
  };
  const selectJob = db.prepare<[number], JobRow>('SELECT * FROM jobs WHERE id = ?');
  const selectJobs = db.prepare<[], JobRow>('SELECT * FROM jobs ORDER BY first_seen_at, id');
  const selectJobsByStatus = db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE status = ? ORDER BY first_seen_at, id');
  const selectBusyNames = db.prepare<[], string>("SELECT DISTINCT runner_name FROM jobs WHERE status = 'in_progress' AND runner_name IS NOT NULL").pluck();
  const countByDefinition = db.prepare<[string], { definition: string; n: number }>(
    'SELECT definition, count(*) AS n FROM jobs WHERE status = ? GROUP BY definition');
  const selectDelivery = db.prepare<[string], DeliveryRow>('SELECT * FROM deliveries WHERE id = ?');
  const countDeliveries = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM deliveries');
  const pruneDeliveries = db.prepare<[number]>('DELETE FROM deliveries WHERE received_at < ?');
  const pruneJobs = db.prepare<[number]>("DELETE FROM jobs WHERE status = 'completed' AND updated_at < ?");
  const insertUnparsable = db.prepare<[string, string, number, string, Uint8Array, string, string]>(
    `INSERT INTO unparsable_deliveries (id, event, received_at, headers, body, error_code, error_message, state)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'unparsable') ON CONFLICT (id) DO NOTHING`);
  const selectUnparsable = db.prepare<[], UnparsableRow>('SELECT * FROM unparsable_deliveries ORDER BY received_at, id');
  const selectUnparsableByState = db.prepare<[string], UnparsableRow>('SELECT * FROM unparsable_deliveries WHERE state = ? ORDER BY received_at, id');
  const markReplayed = db.prepare<[number, string, string]>("UPDATE unparsable_deliveries SET state = 'replayed', replayed_at = ?, replay_outcome = ? WHERE id = ?");
  const markStillUnparsable = db.prepare<[number, string, string, string]>(
    "UPDATE unparsable_deliveries SET state = 'unparsable', replayed_at = ?, replay_outcome = NULL, error_code = ?, error_message = ? WHERE id = ?");
  const pruneUnparsable = db.prepare<[number]>('DELETE FROM unparsable_deliveries WHERE received_at < ?');
  const keepBatch = (batch: readonly UnparsableDelivery[]): Promise<Array<'kept' | 'duplicate'>> => durableWrite(db, () => batch.map((u): 'kept' | 'duplicate' =>
    insertUnparsable.run(u.deliveryId, u.event, u.receivedAt, JSON.stringify(u.headers), u.body, u.error.code, u.error.message).changes === 0 ? 'duplicate' : 'kept'));

  const ingestOne = (d: JobDelivery): DeliveryOutcome => {
    const { command: c } = d;
    if (d.definition === undefined) {
      const r = insertDelivery.run(d.deliveryId, 'workflow_job', c.action, c.job.id, d.receivedAt, 'ignored');
      return r.changes === 0 ? 'duplicate' : 'ignored';
    }
    const onRecord = statusOf.get(c.job.id)?.status ?? 'absent';
    const transition = decideJobTransition(onRecord, c.action);
    const outcome = outcomeOf(transition);
    // The delivery row goes first: its primary key is the dedupe, and a
    // duplicate must change nothing, not even the job.
    if (insertDelivery.run(d.deliveryId, 'workflow_job', c.action, c.job.id, d.receivedAt, outcome).changes === 0) return 'duplicate';
    if (transition !== 'advance') return outcome;
    const conclusion = c.action === 'completed' ? c.conclusion : null;
    const runnerName = c.action === 'in_progress' || c.action === 'completed' ? (c.runner?.name ?? null) : null;
    if (onRecord === 'absent') {
      const j = c.job;
      const at = (action: JobAction): number | null => (c.action === action ? d.receivedAt : null);
      insertJob.run(j.id, j.runId, j.runAttempt, j.repository, j.name, j.workflowName, JSON.stringify(j.labels), d.definition,
        c.action, conclusion, runnerName, d.receivedAt, d.receivedAt, at('queued'), at('in_progress'), at('completed'));
    } else {
      advanceJob[c.action].run({ status: c.action, conclusion, runnerName, at: d.receivedAt, id: c.job.id });
    }
    return outcome;
  };
  const ingestBatch = (batch: readonly JobDelivery[], committed?: () => void): Promise<DeliveryOutcome[]> =>
    durableWrite(db, () => batch.map(ingestOne), undefined, committed);

  return {
    async ingest(batch, committed) {
      if (batch.length === 0) return [];
      try {
        return await ingestBatch(batch, committed);
      } catch (err) {
        throw new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `could not record ${batch.length} webhook deliveries: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
      }
    },
    async getJob(id) {
      const row = selectJob.get(id);
      return row === undefined ? undefined : toJob(row);
    },
    async listJobs(filter = {}) {
      const rows = filter.status === undefined ? selectJobs.all() : selectJobsByStatus.all(filter.status);
      return rows.map(toJob);
    },
    async countJobsByDefinition(status) {
      return new Map(countByDefinition.all(status).map((r) => [r.definition, r.n]));
    },
    async busyRunnerNames() {
      return new Set(selectBusyNames.all());
    },
    async getDelivery(id) {
      const row = selectDelivery.get(id);
      return row === undefined ? undefined : toDelivery(row);
    },
    async countDeliveries() {
      return countDeliveries.get()?.n ?? 0;
    },
    async keepUnparsable(batch) {
      if (batch.length === 0) return [];
      try {
        return await keepBatch(batch);
      } catch (err) {
        throw new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `could not keep ${batch.length} unparsable webhook deliveries: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
      }
    },
    async listUnparsable(filter = {}) {
      const rows = filter.state === undefined ? selectUnparsable.all() : selectUnparsableByState.all(filter.state);
      return rows.map(toUnparsable);
    },
    async updateUnparsable(id, u) {
      if (u.state === 'replayed') markReplayed.run(u.at, u.outcome, id);
      else markStillUnparsable.run(u.at, u.error.code, u.error.message, id);
    },
    async prune(before) {
      return db.transaction(() => ({
        deliveries: pruneDeliveries.run(before).changes, jobs: pruneJobs.run(before).changes, unparsable: pruneUnparsable.run(before).changes,
      }))();
    },
  };
}

// The CHECK constraints above guarantee these columns hold only the values
// the casts below name.
function toJob(r: JobRow): StoredJob {
  return {
    id: r.id, runId: r.run_id, runAttempt: r.run_attempt, repository: r.repository, name: r.name,
    workflowName: r.workflow_name, labels: JSON.parse(r.labels) as string[], definition: r.definition,
    status: r.status as JobStatus, conclusion: r.conclusion as JobConclusion | null, runnerName: r.runner_name,
    firstSeenAt: r.first_seen_at, updatedAt: r.updated_at,
  };
}

// error_code was a catalogue code when written, and state is held to its
// two values by the CHECK constraint.
function toUnparsable(r: UnparsableRow): StoredUnparsable {
  return {
    deliveryId: r.id, event: r.event, receivedAt: r.received_at, headers: JSON.parse(r.headers) as Record<string, string>,
    body: new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength),
    error: { code: r.error_code as ErrorCode, message: r.error_message },
    state: r.state as UnparsableState, replayedAt: r.replayed_at, replayOutcome: r.replay_outcome,
  };
}

function toDelivery(r: DeliveryRow): StoredDelivery {
  return { id: r.id, event: r.event, action: r.action, jobId: r.job_id, receivedAt: r.received_at, outcome: r.outcome as RecordedOutcome };
}
