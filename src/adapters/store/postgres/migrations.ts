/**
 * The PostgreSQL store's schema, as numbered migrations applied in order.
 *
 * Every host of a fleet runs `migrate` at start. It takes one session-level
 * advisory lock (MIGRATION_LOCK) for the whole run, so two hosts starting
 * together apply each migration once: the second waits, then finds the
 * versions recorded in `schema_migrations` and applies nothing. Each
 * migration commits in its own transaction with its version row, so a
 * crash between two leaves a schema that the next start continues from.
 *
 * A migration, once released, never changes: a later change is a new
 * migration. A database whose schema is newer than this Flint knows is
 * refused (FLINT_ERR_STORE_SCHEMA_NEWER): an older host must not write to
 * tables whose meaning moved on.
 *
 * Column conventions: times are BIGINT epoch milliseconds (the ports'
 * convention); GitHub ids BIGINT; JSON as JSONB.
 */
import type pg from 'pg';
import { FlintError } from '../../../core/errors/index.ts';

export interface Migration {
  readonly version: number;
  /** A few words for `schema_migrations.name` and for logs. */
  readonly name: string;
  readonly sql: string;
}

/**
 * The key of the advisory lock migrations run under ("flint" in ASCII).
 * Other fleet-wide locks use the two-key form, a separate key space.
 */
export const MIGRATION_LOCK = 0x666c696e74;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'intake, job truth, job records, VMs and runners',
    sql: `
-- The intake (IntakeStore): deliveries, the jobs they describe, and the
-- signed deliveries Flint could not parse.
CREATE TABLE deliveries (
  id          TEXT PRIMARY KEY,      -- X-GitHub-Delivery
  event       TEXT NOT NULL,
  action      TEXT NOT NULL,
  job_id      BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('accepted', 'repeat', 'stale', 'ignored'))
);
CREATE INDEX deliveries_received_at ON deliveries (received_at);
CREATE TABLE jobs (
  id            BIGINT PRIMARY KEY,  -- GitHub's workflow job id
  run_id        BIGINT NOT NULL,
  run_attempt   INTEGER NOT NULL,
  repository    TEXT NOT NULL,
  name          TEXT NOT NULL,
  workflow_name TEXT,
  labels        JSONB NOT NULL,      -- array of strings
  definition    TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed')),
  conclusion    TEXT,
  runner_name   TEXT,
  first_seen_at BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL,
  queued_at     BIGINT,              -- when the first delivery of each status came
  started_at    BIGINT,
  completed_at  BIGINT
);
CREATE INDEX jobs_status ON jobs (status, first_seen_at);
CREATE INDEX jobs_status_definition ON jobs (status, definition);
CREATE TABLE unparsable_deliveries (
  id             TEXT PRIMARY KEY,   -- X-GitHub-Delivery
  event          TEXT NOT NULL,
  received_at    BIGINT NOT NULL,
  headers        JSONB NOT NULL,     -- lower-case names
  body           BYTEA NOT NULL,     -- the raw bytes the signature covers
  error_code     TEXT NOT NULL,
  error_message  TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('unparsable', 'replayed')),
  replayed_at    BIGINT,
  replay_outcome TEXT
);
CREATE INDEX unparsable_deliveries_state ON unparsable_deliveries (state, received_at);

-- The job-truth and redeliver loops (TruthStore).
CREATE TABLE job_checks (
  job_id     BIGINT PRIMARY KEY,
  checked_at BIGINT NOT NULL
);
CREATE TABLE loop_marks (
  name  TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
CREATE TABLE redeliveries (
  guid        TEXT PRIMARY KEY,
  delivery_id BIGINT NOT NULL,
  attempts    INTEGER NOT NULL,
  last_at     BIGINT NOT NULL
);

-- Runner registrations (JobRecordStore).
CREATE TABLE runner_requests (
  runner_name      TEXT PRIMARY KEY, -- flint-<vm id>
  vm_id            TEXT NOT NULL,
  requested_at     BIGINT NOT NULL,
  github_runner_id BIGINT NOT NULL
);
CREATE INDEX runner_requests_requested_at ON runner_requests (requested_at);

-- The VM supervisor's records (VmStore). Every row carries the instance
-- that made it: each host's instance id differs, and sweeps touch only their own.
CREATE TABLE vm_sequences (
  instance_id TEXT PRIMARY KEY,
  next        BIGINT NOT NULL
);
CREATE TABLE vms (
  id                TEXT PRIMARY KEY,
  instance_id       TEXT NOT NULL,
  runner            TEXT NOT NULL,
  hypervisor        TEXT NOT NULL,
  state             TEXT NOT NULL,
  reason            TEXT,
  work_dir          TEXT NOT NULL,
  owner             TEXT,
  pid               INTEGER,
  vmm_start_time    TEXT,
  control_socket    TEXT,
  console_file      TEXT,
  created_at        BIGINT NOT NULL,
  prepare_ms        BIGINT,
  started_at        BIGINT,
  booted_at         BIGINT,
  runner_started_at BIGINT,
  ended_at          BIGINT,
  runner_exit_code  INTEGER,
  vmm_exit_code     INTEGER,
  vmm_signal        TEXT
);
CREATE INDEX vms_instance_state ON vms (instance_id, state);
CREATE INDEX vms_instance_created ON vms (instance_id, created_at);

-- The scheduler's runners (RunnerStateStore).
CREATE TABLE runner_states (
  vm_id            TEXT PRIMARY KEY,
  instance_id      TEXT NOT NULL,
  definition       TEXT NOT NULL,
  phase            TEXT NOT NULL,
  github_runner_id BIGINT,
  idle_since       BIGINT,
  started_at       BIGINT NOT NULL
);
CREATE INDEX runner_states_instance ON runner_states (instance_id, started_at);
`,
  },
  {
    version: 2,
    name: 'fleet heartbeats and leases',
    sql: `
-- One row per host of the fleet (FleetStore.heartbeat): what it holds and when it last spoke.
CREATE TABLE fleet_hosts (
  id                TEXT PRIMARY KEY,  -- the host's instance id
  vcpus             INTEGER NOT NULL,
  memory_mib        BIGINT NOT NULL,
  vms               INTEGER NOT NULL,
  address           TEXT,
  first_seen_at     BIGINT NOT NULL,
  last_heartbeat_at BIGINT NOT NULL
);
-- Named leases with an expiry (FleetStore.acquireLeadership): the holder runs the loops that run once per fleet.
CREATE TABLE fleet_leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
`,
  },
  {
    version: 3,
    name: 'scale-set listener state',
    sql: `
-- Per scale set, the listener's message session and last committed message (ScaleSetStateStore).
CREATE TABLE scaleset_state (
  runner_group    TEXT NOT NULL,
  name            TEXT NOT NULL,
  scale_set_id    BIGINT NOT NULL,
  session_id      TEXT,
  last_message_id BIGINT NOT NULL,
  owner           TEXT NOT NULL,
  updated_at      BIGINT NOT NULL,
  PRIMARY KEY (runner_group, name)
);
`,
  },
  {
    version: 4,
    name: 'claims on queued jobs',
    sql: `
-- WorkClaims: which host provides a runner for a queued job, until when.
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN claim_expires_at BIGINT;
CREATE INDEX jobs_queued_claims ON jobs (definition, first_seen_at, id) WHERE status = 'queued';
CREATE INDEX jobs_claimed_by ON jobs (claimed_by) WHERE claimed_by IS NOT NULL;
`,
  },
  {
    version: 5,
    name: 'hosts marked lost',
    sql: `
-- FleetStore.markLost: when the leader marked the host lost (its heartbeat stopped); its next heartbeat clears it.
ALTER TABLE fleet_hosts ADD COLUMN lost_at BIGINT;
`,
  },
  {
    version: 6,
    name: 'room each host publishes per runner definition',
    sql: `
-- FleetHost.canHold: {definition: runners the host can hold now}, written with each heartbeat; NULL from a Flint that publishes none.
ALTER TABLE fleet_hosts ADD COLUMN can_hold JSONB;
`,
  },
];

export interface MigrationResult {
  /** Versions this call applied (empty when the schema was already current). */
  readonly applied: readonly number[];
  /** The schema's version afterwards. */
  readonly version: number;
}

/**
 * Brings the database's schema up to the newest of `migrations`, under the
 * advisory lock; safe to run from any number of hosts at once.
 */
export async function migrate(pool: pg.Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  const client = await pool.connect();
  let released = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`);
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const known = Math.max(0, ...migrations.map((m) => m.version));
      const newest = Math.max(0, ...done);
      if (newest > known) {
        throw new FlintError('FLINT_ERR_STORE_SCHEMA_NEWER',
          `the PostgreSQL store's schema is at version ${newest}, newer than this Flint knows (${known})`, { details: { version: newest, known } });
      }
      const applied: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        try {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new FlintError('FLINT_ERR_STORE_SCHEMA', `could not apply migration ${m.version} (${m.name}) to the PostgreSQL store: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
        }
        applied.push(m.version);
      }
      return { applied, version: Math.max(newest, ...applied) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } catch (err) {
    // A connection that failed mid-way is dropped, not reused (its session lock goes with it).
    client.release(err instanceof Error ? err : new Error(String(err)));
    released = true;
    throw err;
  } finally {
    if (!released) client.release();
  }
}
