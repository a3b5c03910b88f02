/**
 * The IntakeStore port on PostgreSQL: tables `deliveries`, `jobs` and
 * `unparsable_deliveries` (migrations.ts), with the SQLite adapter's
 * semantics (../intake-store.ts) and contract suite.
 *
 * Several hosts may ingest at once (each behind its own webhook endpoint,
 * GitHub delivering to one of them). Two things keep them consistent:
 * - a delivery id is deduplicated by the primary key of `deliveries`
 *   (a concurrent insert of the same id waits for the first to commit,
 *   then does nothing: a `duplicate`);
 * - a batch first takes a transaction-level advisory lock per job it
 *   touches, in one sorted order (no deadlock between two batches), so the
 *   job's status read and its move happen with no other host between them.
 * No statement of a batch waits for a row lock another batch may hold
 * (`SKIP LOCKED`): a claim hand-over it cannot make that way is owed, and
 * made after the batch commits (settleOwed).
 */
import type pg from 'pg';
import type { DeliveryOutcome, JobConclusion, JobStatus } from '../../../core/jobs.ts';
import { decideJobTransition, outcomeOf } from '../../../core/jobs.ts';
import type { ErrorCode } from '../../../core/errors/index.ts';
import type { IntakeStore, JobDelivery, RecordedOutcome, StoredDelivery, StoredJob, StoredUnparsable, UnparsableState } from '../../../daemon/ports/store.ts';
import { parseVmId, vmIdFromRunnerName } from '../../../core/ids.ts';
import { inTransaction, writeFailed } from './pool.ts';
import { WORK_CHANNEL } from './work-claims.ts';

/** First key of the per-job advisory locks (two-key form; the second is the job id's hash). */
export const JOB_LOCK_SPACE = 1;

interface JobRow {
  id: number; run_id: number; run_attempt: number; repository: string; name: string; workflow_name: string | null;
  labels: string[]; definition: string; status: string; conclusion: string | null; runner_name: string | null;
  first_seen_at: number; updated_at: number;
}
interface DeliveryRow { id: string; event: string; action: string; job_id: number; received_at: number; outcome: string }
interface UnparsableRow {
  id: string; event: string; received_at: number; headers: Record<string, string>; body: Buffer; error_code: string; error_message: string;
  state: string; replayed_at: number | null; replay_outcome: string | null;
}

const JOB_COLUMNS = 'id, run_id, run_attempt, repository, name, workflow_name, labels, definition, status, conclusion, runner_name, first_seen_at, updated_at';
/** The column each status stamps with the time of its first delivery. */
const STAMP = { queued: 'queued_at', in_progress: 'started_at', completed: 'completed_at' } as const;

/** The delivery row, as a statement of its own or as the first part of one ($1 – $6). */
const INSERT_DELIVERY = 'INSERT INTO deliveries (id, event, action, job_id, received_at, outcome) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING';

/** A claim of `definition` that host `from` owes host `to`: its runner took a job `to` had claimed (passClaimOn). */
interface OwedClaim { readonly from: string; readonly to: string; readonly definition: string }

/**
 * Claim hand-overs since the store opened (passClaimOn, settleOwed): made
 * inside their webhook batch (`passed`), owed by it (`owed`), and of those
 * owed, made after its commit (`settled`), found owed no more (`cleared`:
 * the debtor held no claim of the definition any more) or given up after
 * every try (`dropped`: one runner may stand idle until its grace ends).
 */
export interface ClaimHandOvers {
  readonly passed: number;
  readonly owed: number;
  readonly settled: number;
  readonly cleared: number;
  readonly dropped: number;
}

/** The PostgreSQL intake, with its count of claim hand-overs (for /metrics). */
export interface PostgresIntakeStore extends IntakeStore {
  claimHandOvers(): ClaimHandOvers;
}

/** A batch's hand-overs: counted once it has committed. */
interface BatchHandOvers { passed: number; readonly owed: OwedClaim[] }

/** How long an owed hand-over waits for its row, per attempt, and how many attempts it makes. */
const OWED_LOCK_TIMEOUT_MS = 500;
const OWED_ATTEMPTS = 3;
/** SQLSTATE lock_not_available: `lock_timeout` expired. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Moves one job for one delivery: the delivery row (its primary key is the
 * dedupe: a duplicate changes nothing, not even the job) and the job's
 * status with that status's stamp, in one statement whose job part runs
 * only when the delivery row went in. `statuses` holds the batch's jobs as
 * they stand, read once under the batch's locks and kept current here. A
 * job leaving `queued` takes three statements: its claim may pass on
 * (passClaimOn), which must read the job's claim before the move clears it
 * and only once the delivery is known to be new. A hand-over it could not
 * make goes to `owed`.
 */
async function ingestOne(client: pg.PoolClient, d: JobDelivery, statuses: Map<number, JobStatus>, handOvers: BatchHandOvers): Promise<DeliveryOutcome> {
  const { command: c } = d;
  const delivery = (outcome: RecordedOutcome): unknown[] => [d.deliveryId, 'workflow_job', c.action, c.job.id, d.receivedAt, outcome];
  const insertDelivery = async (outcome: RecordedOutcome): Promise<boolean> => ((await client.query(INSERT_DELIVERY, delivery(outcome))).rowCount ?? 0) > 0;
  if (d.definition === undefined) return (await insertDelivery('ignored')) ? 'ignored' : 'duplicate';
  const onRecord = statuses.get(c.job.id) ?? 'absent';
  const transition = decideJobTransition(onRecord, c.action);
  const outcome = outcomeOf(transition);
  if (transition !== 'advance') return (await insertDelivery(outcome)) ? outcome : 'duplicate';
  const conclusion = c.action === 'completed' ? c.conclusion : null;
  const runnerName = c.action === 'in_progress' || c.action === 'completed' ? (c.runner?.name ?? null) : null;
  // The column stamped with the time of this status's first delivery (none for `waiting`).
  const stamp = c.action === 'waiting' ? undefined : STAMP[c.action];
  let moved: boolean;
  if (onRecord === 'absent') {
    const j = c.job;
    // Typed: the values are selected, not inserted as VALUES, so nothing else gives them their column's type.
    const r = await client.query(`WITH d AS (${INSERT_DELIVERY} RETURNING 1)
      INSERT INTO jobs (${JOB_COLUMNS}${stamp === undefined ? '' : `, ${stamp}`})
      SELECT $4::bigint, $7::bigint, $8::integer, $9::text, $10::text, $11::text, $12::jsonb, $13::text, $3::text, $14::text, $15::text,
        $5::bigint, $5::bigint${stamp === undefined ? '' : ', $5::bigint'} FROM d`,
    [...delivery(outcome), j.runId, j.runAttempt, j.repository, j.name, j.workflowName, JSON.stringify(j.labels), d.definition, conclusion, runnerName]);
    moved = (r.rowCount ?? 0) > 0;
  } else {
    // Parameter numbers: status, time, conclusion, runner's name.
    const set = (st: string, at: string, conc: string, runner: string): string => `status = ${st}, conclusion = ${conc},
      runner_name = COALESCE(${runner}, runner_name), updated_at = ${at},
      claimed_by = CASE WHEN ${st} = 'queued' THEN claimed_by END, claim_expires_at = CASE WHEN ${st} = 'queued' THEN claim_expires_at END
      ${stamp === undefined ? '' : `, ${stamp} = COALESCE(${stamp}, ${at})`}`;
    // COALESCE: a `completed` that lost the runner's name (a job cancelled before it started) keeps the one in_progress named.
    // A job that leaves `queued` is nobody's claim any more (work-claims.ts).
    if (onRecord === 'queued' && c.action !== 'queued') {
      if (!(await insertDelivery(outcome))) return 'duplicate';
      const handOver = await passClaimOn(client, c.job.id, runnerName);
      if (handOver === 'passed') handOvers.passed++;
      else if (handOver !== undefined) handOvers.owed.push(handOver);
      await client.query(`UPDATE jobs SET ${set('$1', '$3', '$4', '$5')} WHERE id = $2`, [c.action, c.job.id, d.receivedAt, conclusion, runnerName]);
      moved = true;
    } else {
      // The delivery's own parameters are $1 – $6 ($3 its action, $4 its job, $5 its time).
      const r = await client.query(`WITH d AS (${INSERT_DELIVERY} RETURNING 1) UPDATE jobs SET ${set('$3', '$5', '$7', '$8')} WHERE id = $4 AND EXISTS (SELECT 1 FROM d)`,
        [...delivery(outcome), conclusion, runnerName]);
      moved = (r.rowCount ?? 0) > 0;
    }
  }
  if (!moved) return 'duplicate';
  statuses.set(c.job.id, c.action);
  return outcome;
}

/**
 * Keeps claims matched to runners when GitHub gives a claimed job to
 * another host's runner (runners are not bound to jobs). Host A claimed
 * job J and started runner a for it; host B's runner b, started for B's
 * claim on job K, took J. Left alone, A's runner a would stand idle while
 * B, its runner gone, started another for K: one VM beyond demand. So B's
 * newest claim of J's definition passes to A, whose runner a is the one
 * left for it. The runner's host is the instance id in its name
 * (`flint-<instance>-<n>`); a runner Flint did not name passes nothing.
 *
 * B's claim is taken only if this batch can take that job's lock too, at
 * once (`pg_try_advisory_xact_lock`), and its row is not locked: the batch
 * holds its own jobs' locks, and waiting for a job another batch holds
 * could deadlock with it. The job lock matters as much as the row's: a
 * batch that took B's claim K by its row alone, while another batch held
 * K's job lock and had not yet touched K's row, would make that batch wait
 * for K; and if that batch had just handed over, the same way, the job this
 * one is moving, each would wait for the other (two runners taking each
 * other's host's claimed jobs at once). When every claim B holds of that
 * definition is locked at this instant (another batch is moving it), the
 * hand-over is returned as owed rather than lost (lost, B would start a VM
 * for its claim while A's runner stood idle), and settleOwed makes it once
 * this batch has committed.
 */
async function passClaimOn(client: pg.PoolClient, jobId: number, runnerName: string | null): Promise<'passed' | OwedClaim | undefined> {
  const vmId = runnerName === null ? undefined : vmIdFromRunnerName(runnerName);
  const runnerHost = vmId === undefined ? undefined : parseVmId(vmId)?.instanceId;
  if (runnerHost === undefined) return undefined;
  // `held`: B holds a claim of the definition, locked or not (a plain read waits for no lock).
  const { rows } = await client.query<{ claimant: string; definition: string; passed: boolean; held: boolean }>(
    `WITH j AS (SELECT claimed_by, definition FROM jobs WHERE id = $1 AND claimed_by IS NOT NULL AND claimed_by <> $2),
     k AS (
       -- Newest first, the first whose job lock is free now; rows are pulled one at a time, so
       -- the locks tried are those up to the one taken. Then its row, if no one holds it.
       SELECT id FROM jobs WHERE id = (
         SELECT c.id FROM (
           SELECT q.id, q.first_seen_at FROM jobs AS q, j
           WHERE q.status = 'queued' AND q.claimed_by = $2 AND q.definition = j.definition AND q.id <> $1
           ORDER BY q.first_seen_at DESC, q.id DESC) AS c
         WHERE pg_try_advisory_xact_lock($3, hashint8(c.id)) LIMIT 1)
       AND status = 'queued' AND claimed_by = $2
       FOR UPDATE SKIP LOCKED),
     passed AS (
       UPDATE jobs SET claimed_by = j.claimed_by FROM j, k WHERE jobs.id = k.id
       RETURNING jobs.id)
     SELECT j.claimed_by AS claimant, j.definition, EXISTS (SELECT 1 FROM passed) AS passed,
       EXISTS (SELECT 1 FROM jobs WHERE status = 'queued' AND claimed_by = $2 AND definition = j.definition AND id <> $1) AS held
     FROM j`, [jobId, runnerHost, JOB_LOCK_SPACE]);
  const r = rows[0];
  if (r === undefined || !(r.passed || r.held)) return undefined;
  return r.passed ? 'passed' : { from: runnerHost, to: r.claimant, definition: r.definition };
}

/**
 * Makes the hand-overs a committed batch owed, each in a short transaction
 * of its own that may wait for its row: it holds no other lock while it
 * waits, so it cannot deadlock, and `lock_timeout` bounds the wait. The row
 * is read without a lock, then updated only if it is still a queued job
 * claimed by the debtor (re-checked on the row once locked); when it moved
 * meanwhile the hand-over is tried again on the debtor's newest claim then.
 * A debtor with no claim of the definition left owes nothing (its claims
 * left `queued` or went elsewhere, and so no VM of its is beyond demand).
 * Best effort: the batch is committed either way, and a hand-over still not
 * made after OWED_ATTEMPTS leaves what an unswapped claim leaves, one idle
 * runner, reaped after its idle grace.
 */
async function settleOwed(pool: pg.Pool, owed: readonly OwedClaim[]): Promise<{ settled: number; cleared: number; dropped: number }> {
  const tally = { settled: 0, cleared: 0, dropped: 0 };
  for (const o of owed) {
    let outcome: 'settled' | 'cleared' | 'dropped' = 'dropped';
    for (let attempt = 1; attempt <= OWED_ATTEMPTS; attempt++) {
      try {
        const done = await inTransaction(pool, async (client): Promise<'settled' | 'cleared' | undefined> => {
          await client.query(`SET LOCAL lock_timeout = ${OWED_LOCK_TIMEOUT_MS}`);
          const { rows } = await client.query<{ held: boolean; passed: boolean }>(
            `WITH k AS (
               SELECT id FROM jobs WHERE status = 'queued' AND claimed_by = $2 AND definition = $3
               ORDER BY first_seen_at DESC, id DESC LIMIT 1),
             passed AS (
               UPDATE jobs SET claimed_by = $1 FROM k
               WHERE jobs.id = k.id AND jobs.status = 'queued' AND jobs.claimed_by = $2 RETURNING jobs.id)
             SELECT EXISTS (SELECT 1 FROM k) AS held, EXISTS (SELECT 1 FROM passed) AS passed`, [o.to, o.from, o.definition]);
          const r = rows[0];
          if (r === undefined || !r.held) return 'cleared';
          return r.passed ? 'settled' : undefined;
        });
        if (done !== undefined) {
          outcome = done;
          break;
        }
      } catch (err) {
        if ((err as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) break;
      }
    }
    tally[outcome]++;
  }
  return tally;
}

/** Takes the batch's job locks, in the order of their keys (volatile calls run after the sort). */
async function lockJobs(client: pg.PoolClient, jobIds: readonly number[]): Promise<void> {
  await client.query(
    'SELECT pg_advisory_xact_lock($1, k) FROM (SELECT DISTINCT hashint8(id) AS k FROM unnest($2::bigint[]) AS id) AS keys ORDER BY k',
    [JOB_LOCK_SPACE, jobIds]);
}

export function createPostgresIntakeStore(pool: pg.Pool): PostgresIntakeStore {
  const handOvers = { passed: 0, owed: 0, settled: 0, cleared: 0, dropped: 0 };
  return {
    claimHandOvers: () => ({ ...handOvers }),
    async ingest(batch, committed) {
      if (batch.length === 0) return [];
      // Filled by the batch, made after its commit (a batch rolled back throws, and owes nothing).
      const batchHandOvers: BatchHandOvers = { passed: 0, owed: [] };
      const { owed } = batchHandOvers;
      let outcomes: DeliveryOutcome[];
      try {
        outcomes = await inTransaction(pool, async (client) => {
          const jobIds = batch.filter((d) => d.definition !== undefined).map((d) => d.command.job.id);
          await lockJobs(client, jobIds);
          // Read after the locks: no other batch moves these jobs until this one commits.
          const statuses = new Map<number, JobStatus>();
          if (jobIds.length > 0) {
            const found = await client.query<{ id: number; status: JobStatus }>('SELECT id, status FROM jobs WHERE id = ANY($1::bigint[])', [jobIds]);
            for (const r of found.rows) statuses.set(r.id, r.status);
          }
          const results: DeliveryOutcome[] = [];
          for (const d of batch) results.push(await ingestOne(client, d, statuses, batchHandOvers));
          // A queued job is work for any host of the fleet: wake their schedulers (delivered at commit).
          if (batch.some((d, i) => d.command.action === 'queued' && results[i] === 'accepted')) await client.query(`SELECT pg_notify('${WORK_CHANNEL}', '')`);
          return results;
        });
      } catch (err) {
        throw writeFailed(`${batch.length} webhook deliveries`, err);
      }
      // A PostgreSQL commit is durable as it returns.
      committed?.();
      handOvers.passed += batchHandOvers.passed;
      handOvers.owed += owed.length;
      if (owed.length > 0) {
        const settled = await settleOwed(pool, owed);
        handOvers.settled += settled.settled;
        handOvers.cleared += settled.cleared;
        handOvers.dropped += settled.dropped;
      }
      return outcomes;
    },
    async getJob(id) {
      const { rows } = await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
      return rows[0] === undefined ? undefined : toJob(rows[0]);
    },
    async listJobs(filter = {}) {
      const { rows } = filter.status === undefined
        ? await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ORDER BY first_seen_at, id`)
        : await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE status = $1 ORDER BY first_seen_at, id`, [filter.status]);
      return rows.map(toJob);
    },
    async countJobsByDefinition(status) {
      const { rows } = await pool.query<{ definition: string; n: number }>(
        'SELECT definition, count(*) AS n FROM jobs WHERE status = $1 GROUP BY definition', [status]);
      return new Map(rows.map((r) => [r.definition, r.n]));
    },
    async busyRunnerNames() {
      const { rows } = await pool.query<{ runner_name: string }>(
        "SELECT DISTINCT runner_name FROM jobs WHERE status = 'in_progress' AND runner_name IS NOT NULL");
      return new Set(rows.map((r) => r.runner_name));
    },
    async getDelivery(id) {
      const { rows } = await pool.query<DeliveryRow>('SELECT * FROM deliveries WHERE id = $1', [id]);
      return rows[0] === undefined ? undefined : toDelivery(rows[0]);
    },
    async countDeliveries() {
      const { rows } = await pool.query<{ n: number }>('SELECT count(*) AS n FROM deliveries');
      return rows[0]?.n ?? 0;
    },
    async keepUnparsable(batch) {
      if (batch.length === 0) return [];
      try {
        return await inTransaction(pool, async (client) => {
          const results: Array<'kept' | 'duplicate'> = [];
          for (const u of batch) {
            const r = await client.query(
              `INSERT INTO unparsable_deliveries (id, event, received_at, headers, body, error_code, error_message, state)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'unparsable') ON CONFLICT (id) DO NOTHING`,
              [u.deliveryId, u.event, u.receivedAt, JSON.stringify(u.headers), Buffer.from(u.body.buffer, u.body.byteOffset, u.body.byteLength), u.error.code, u.error.message]);
            results.push(r.rowCount === 0 ? 'duplicate' : 'kept');
          }
          return results;
        });
      } catch (err) {
        throw writeFailed(`${batch.length} unparsable webhook deliveries`, err);
      }
    },
    async listUnparsable(filter = {}) {
      const { rows } = filter.state === undefined
        ? await pool.query<UnparsableRow>('SELECT * FROM unparsable_deliveries ORDER BY received_at, id')
        : await pool.query<UnparsableRow>('SELECT * FROM unparsable_deliveries WHERE state = $1 ORDER BY received_at, id', [filter.state]);
      return rows.map(toUnparsable);
    },
    async updateUnparsable(id, u) {
      if (u.state === 'replayed') {
        await pool.query("UPDATE unparsable_deliveries SET state = 'replayed', replayed_at = $1, replay_outcome = $2 WHERE id = $3", [u.at, u.outcome, id]);
      } else {
        await pool.query("UPDATE unparsable_deliveries SET state = 'unparsable', replayed_at = $1, replay_outcome = NULL, error_code = $2, error_message = $3 WHERE id = $4",
          [u.at, u.error.code, u.error.message, id]);
      }
    },
    async prune(before) {
      return inTransaction(pool, async (client) => ({
        deliveries: (await client.query('DELETE FROM deliveries WHERE received_at < $1', [before])).rowCount ?? 0,
        jobs: (await client.query("DELETE FROM jobs WHERE status = 'completed' AND updated_at < $1", [before])).rowCount ?? 0,
        unparsable: (await client.query('DELETE FROM unparsable_deliveries WHERE received_at < $1', [before])).rowCount ?? 0,
      }));
    },
  };
}

// The CHECK constraints hold status and state to the values the casts name;
// conclusion was a JobConclusion and error_code a catalogue code when written.
function toJob(r: JobRow): StoredJob {
  return {
    id: r.id, runId: r.run_id, runAttempt: r.run_attempt, repository: r.repository, name: r.name,
    workflowName: r.workflow_name, labels: r.labels, definition: r.definition,
    status: r.status as JobStatus, conclusion: r.conclusion as JobConclusion | null, runnerName: r.runner_name,
    firstSeenAt: r.first_seen_at, updatedAt: r.updated_at,
  };
}

function toUnparsable(r: UnparsableRow): StoredUnparsable {
  return {
    deliveryId: r.id, event: r.event, receivedAt: r.received_at, headers: r.headers,
    body: new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength),
    error: { code: r.error_code as ErrorCode, message: r.error_message },
    state: r.state as UnparsableState, replayedAt: r.replayed_at, replayOutcome: r.replay_outcome,
  };
}

function toDelivery(r: DeliveryRow): StoredDelivery {
  return { id: r.id, event: r.event, action: r.action, jobId: r.job_id, receivedAt: r.received_at, outcome: r.outcome as RecordedOutcome };
}
