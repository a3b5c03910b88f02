/**
 * Every store contract suite against a real PostgreSQL server (a throw-away
 * cluster, test/helpers/postgres.ts), each case in a fresh schema; then
 * what only a shared, networked store has to show: migrations applied once
 * by hosts starting together, batches all-or-none, and two hosts ingesting
 * news of the same job at once.
 */
import { after, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { intakeStoreContract, delivery } from '../intake-store.contract.ts';
import { truthStoreContract } from '../truth-store.contract.ts';
import { vmStoreContract } from '../../../../test/contracts/vm-store.contract.ts';
import { runnerStatesContract } from '../../../../test/contracts/runner-states.contract.ts';
import { jobRecordContract } from '../../../../test/contracts/job-records.contract.ts';
import { fleetContract } from '../../../../test/contracts/fleet.contract.ts';
import { workClaimsContract } from '../../../../test/contracts/work-claims.contract.ts';
import { scaleSetStateContract } from '../../../../test/contracts/scaleset-state.contract.ts';
import { postgresPrereqs, startPostgres } from '../../../../test/helpers/postgres.ts';
import type { PostgresCluster } from '../../../../test/helpers/postgres.ts';
import { requirePrereqs } from '../../../../test/helpers/prereq.ts';
import type { JobAction } from '../../../core/jobs.ts';
import { openPostgresStores } from './index.ts';
import { JOB_LOCK_SPACE } from './intake-store.ts';
import type { PostgresStores } from './index.ts';
import { migrate, MIGRATIONS } from './migrations.ts';
import type { Migration } from './migrations.ts';
import { openPostgresPool } from './pool.ts';
import { newVmRecord } from '../../../daemon/vm/vm-store.ts';
import { fleetStaleView, removeStaleRunners } from '../../../daemon/stale-runners.ts';

if (postgresPrereqs().some((p) => !p.ok())) {
  // Skipped with what to install, or (CI=true) failed: CI installs PostgreSQL.
  test('PostgreSQL stores: the contract suites and the migrations', (t) => {
    requirePrereqs(t, ...postgresPrereqs());
  });
} else {
  suites();
}

function suites(): void {
  let started: Promise<PostgresCluster> | undefined;
  const cluster = (): Promise<PostgresCluster> => (started ??= startPostgres());
  after(async () => {
    const c = await started?.catch(() => undefined);
    await c?.stop();
  });

  /** The stores on a fresh schema; `reopen` builds more on the same schema (another host, or a restart). */
  const fresh = async () => {
    const c = await cluster();
    const url = await c.createSchema();
    const opened: PostgresStores[] = [];
    const open = async (): Promise<PostgresStores> => {
      const s = await openPostgresStores({ url });
      opened.push(s);
      return s;
    };
    const stores = await open();
    return {
      url, stores, reopen: open,
      dispose: async () => {
        for (const s of opened) await s.close();
        await c.dropSchema(url);
      },
    };
  };

  intakeStoreContract('postgres', async () => {
    const f = await fresh();
    return { store: f.stores.intake, dispose: f.dispose };
  });
  truthStoreContract('postgres', async () => {
    const f = await fresh();
    return { store: f.stores.truth, dispose: f.dispose };
  });
  vmStoreContract('PostgreSQL VM store', async () => {
    const f = await fresh();
    return { store: f.stores.vms, close: f.dispose };
  });
  runnerStatesContract('postgres', async () => {
    const f = await fresh();
    return { store: f.stores.runnerStates, reopen: async () => (await f.reopen()).runnerStates, dispose: f.dispose };
  });
  jobRecordContract('postgres', async () => {
    const f = await fresh();
    return { intake: f.stores.intake, vms: f.stores.vms, records: f.stores.records, dispose: f.dispose };
  });

  fleetContract('postgres', async () => {
    const f = await fresh();
    return { store: f.stores.fleet, records: { vms: f.stores.vms, runnerStates: f.stores.runnerStates }, other: async () => (await f.reopen()).fleet, dispose: f.dispose };
  });

  workClaimsContract('postgres', async () => {
    const f = await fresh();
    return { intake: f.stores.intake, claims: f.stores.claims, other: async () => (await f.reopen()).claims, dispose: f.dispose };
  });

  test('postgres: a claimed job taken by another host\'s runner passes that host\'s newest claim to the first, so no runner is left over', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const { intake, claims } = f.stores;
    for (const id of [1, 2, 3]) await intake.ingest([delivery(id, 'queued', { at: 1000 + id })]);
    // a1 holds job 1 (its runner flint-a1-…1 starts for it), b2 holds jobs 2 and 3.
    assert.deepEqual([...await claims.claim('aaaa', new Map([['default', 1]]), 10_000, 30_000)], [['default', 1]]);
    assert.deepEqual([...await claims.claim('bbbb', new Map([['default', 2]]), 10_000, 30_000)], [['default', 2]]);
    // GitHub gives job 1 (a1's) to b2's runner: b2's newest claim (job 3) passes to a1, whose runner is still free.
    await intake.ingest([delivery(1, 'in_progress', { runner: 'flint-bbbb-00001' })]);
    assert.deepEqual(Object.fromEntries(await claims.claimsByHost(10_001)), { aaaa: 1, bbbb: 1 });
    const held = await f.stores.intake.listJobs({ status: 'queued' });
    assert.deepEqual(held.map((j) => j.id), [2, 3]);
    const reader = openPostgresPool({ url: f.url });
    t.after(() => reader.end());
    const owner = async (id: number) => (await reader.query<{ claimed_by: string | null }>('SELECT claimed_by FROM jobs WHERE id = $1', [id])).rows[0]?.claimed_by;
    assert.equal(await owner(3), 'aaaa');
    assert.equal(await owner(2), 'bbbb');
    assert.equal(await owner(1), null, 'a job that left queued holds no claim');
    // A job taken by its own claimant's runner, or by a runner Flint did not name, passes nothing.
    await intake.ingest([delivery(2, 'in_progress', { runner: 'flint-bbbb-00002' })]);
    await intake.ingest([delivery(3, 'in_progress', { runner: 'laptop' })]);
    assert.deepEqual(Object.fromEntries(await claims.claimsByHost(10_002)), {});
    assert.deepEqual(intake.claimHandOvers(), { passed: 1, owed: 0, settled: 0, cleared: 0, dropped: 0 });
  });

  /**
   * Host aaaa claimed job 1, host bbbb job 2; bbbb's runner takes job 1 while another batch holds job 2's row
   * (`holder`, an open transaction: a webhook batch moving job 2 at that instant). Resolves to the ingest, still
   * running, once the hand-over waits on job 2's row (or once it settled without waiting).
   */
  const takenWhileLocked = async (t: TestContext) => {
    const f = await fresh();
    const holder = new pg.Client({ connectionString: f.url });
    // Watches from outside any transaction: within one, PostgreSQL shows the activity as it was at its first look.
    const watcher = openPostgresPool({ url: f.url });
    await holder.connect();
    // The holder first: its open transaction would keep the schema from being dropped.
    t.after(async () => { await holder.end(); await watcher.end(); await f.dispose(); });
    const { intake, claims } = f.stores;
    for (const id of [1, 2]) await intake.ingest([delivery(id, 'queued', { at: 1000 + id })]);
    assert.deepEqual([...await claims.claim('aaaa', new Map([['default', 1]]), 10_000, 30_000)], [['default', 1]]);
    assert.deepEqual([...await claims.claim('bbbb', new Map([['default', 1]]), 10_000, 30_000)], [['default', 1]]);
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM jobs WHERE id = 2 FOR UPDATE');
    let settled = false;
    const ingest = intake.ingest([delivery(1, 'in_progress', { runner: 'flint-bbbb-00001' })]).finally(() => { settled = true; });
    for (let i = 0; !settled; i++) {
      const { rows } = await watcher.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH k AS%'");
      if ((rows[0]?.n ?? 0) === 1) break;
      assert.ok(i < 200, 'the hand-over neither waits on job 2\'s row nor settles');
      await new Promise((r) => setTimeout(r, 10));
    }
    const owner = async (id: number) => (await holder.query<{ claimed_by: string | null }>('SELECT claimed_by FROM jobs WHERE id = $1', [id])).rows[0]?.claimed_by;
    return { stores: f.stores, holder, ingest, owner, isSettled: () => settled };
  };

  test('postgres: a claim hand-over whose row another batch holds is owed, and made once that batch commits', async (t) => {
    const { stores, holder, ingest, owner, isSettled } = await takenWhileLocked(t);
    assert.equal(isSettled(), false, 'the ingest waits, after its commit, for the row it owes');
    // The batch itself committed without waiting: job 1 moved while job 2's row was still held.
    assert.equal((await holder.query<{ status: string }>('SELECT status FROM jobs WHERE id = 1')).rows[0]?.status, 'in_progress');
    await holder.query('COMMIT');
    assert.deepEqual(await ingest, ['accepted']);
    // bbbb's runner took aaaa's job: bbbb's claim on job 2 went to aaaa, whose runner is still free for it.
    assert.equal(await owner(2), 'aaaa');
    assert.equal(await owner(1), null);
    assert.deepEqual(Object.fromEntries(await stores.claims.claimsByHost(10_001)), { aaaa: 1 });
    assert.deepEqual(stores.intake.claimHandOvers(), { passed: 0, owed: 1, settled: 1, cleared: 0, dropped: 0 });
  });

  test('postgres: an owed hand-over whose claim left queued meanwhile owes nothing', async (t) => {
    const { stores, holder, ingest, owner } = await takenWhileLocked(t);
    // The other batch moved job 2 itself (a runner took it): bbbb holds no claim any more.
    await holder.query("UPDATE jobs SET status = 'in_progress', claimed_by = NULL, claim_expires_at = NULL WHERE id = 2");
    await holder.query('COMMIT');
    assert.deepEqual(await ingest, ['accepted']);
    assert.equal(await owner(2), null);
    assert.deepEqual(Object.fromEntries(await stores.claims.claimsByHost(10_001)), {});
    assert.deepEqual(stores.intake.claimHandOvers(), { passed: 0, owed: 1, settled: 0, cleared: 1, dropped: 0 });
  });

  test('postgres: an owed hand-over whose row stays held gives up after its bounded waits; the batch stands', async (t) => {
    const { stores, holder, ingest, owner } = await takenWhileLocked(t);
    assert.deepEqual(await ingest, ['accepted'], 'resolved while job 2\'s row is still held');
    await holder.query('ROLLBACK');
    assert.equal(await owner(2), 'bbbb');
    assert.equal((await stores.intake.getJob(1))?.status, 'in_progress');
    assert.deepEqual(stores.intake.claimHandOvers(), { passed: 0, owed: 1, settled: 0, cleared: 0, dropped: 1 });
  });

  test('postgres: two runners taking each other\'s host\'s claimed jobs at once: the two batches do not deadlock', async (t) => {
    const f = await fresh();
    const other = new pg.Client({ connectionString: f.url });
    const watcher = openPostgresPool({ url: f.url });
    await other.connect();
    t.after(async () => { await other.end(); await watcher.end(); await f.dispose(); });
    const { intake, claims } = f.stores;
    for (const id of [1, 2]) await intake.ingest([delivery(id, 'queued', { at: 1000 + id })]);
    assert.deepEqual([...await claims.claim('aaaa', new Map([['default', 1]]), 10_000, 30_000)], [['default', 1]]);
    assert.deepEqual([...await claims.claim('bbbb', new Map([['default', 1]]), 10_000, 30_000)], [['default', 1]]);
    // `other` plays the batch for job 2, taken by aaaa's runner, up to its hand-over: job 2's lock, then
    // aaaa's claim (job 1) passed to bbbb, which locks job 1's row. Job 2's row it has not touched yet.
    const otherPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock($1, hashint8($2::bigint))', [JOB_LOCK_SPACE, 2]);
    await other.query("UPDATE jobs SET claimed_by = 'bbbb' WHERE id = 1");
    // The batch for job 1, taken by bbbb's runner: it must not take job 2 (its job lock is held), so it only
    // waits for job 1's row.
    const ingest = intake.ingest([delivery(1, 'in_progress', { runner: 'flint-bbbb-00001' })]);
    for (let i = 0; ; i++) {
      const { rows } = await watcher.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1", [otherPid]);
      if ((rows[0]?.n ?? 0) >= 1) break;
      assert.ok(i < 300, 'the batch for job 1 never waits for job 1\'s row');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Now `other` moves its own job 2. Had the batch taken job 2's row for its hand-over, each would wait
    // for the other: PostgreSQL would end one with "deadlock detected".
    await other.query("UPDATE jobs SET status = 'in_progress', claimed_by = NULL, claim_expires_at = NULL WHERE id = 2");
    await other.query('COMMIT');
    assert.deepEqual(await ingest, ['accepted']);
    const status = async (id: number) => (await watcher.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [id])).rows[0]?.status;
    assert.equal(await status(1), 'in_progress');
    assert.equal(await status(2), 'in_progress');
    assert.deepEqual(Object.fromEntries(await claims.claimsByHost(10_001)), {}, 'no claim is left on a job that left queued');
  });

  test('postgres: a heartbeat in flight when the leader marks its host lost wins: the mark waits for it and then finds the host fresh', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const cap = { vcpus: 4, memoryMib: 4096 };
    await f.stores.fleet.heartbeat({ id: 'h1', capacity: cap, vms: 1 }, 1000);
    await f.stores.runnerStates.put({ vmId: 'h1-0', instanceId: 'h1', definition: 'small', phase: 'idle', githubRunnerId: 5, idleSince: 1000, startedAt: 1000 });
    // The host's heartbeat, as its own statement would run it, held open in a transaction of its own.
    const beat = new pg.Client({ connectionString: f.url });
    await beat.connect();
    t.after(() => beat.end());
    await beat.query('BEGIN');
    await beat.query('UPDATE fleet_hosts SET last_heartbeat_at = 95000, lost_at = NULL WHERE id = $1', ['h1']);
    let settled = false;
    const mark = f.stores.fleet.markLost('h1', 5000, 96_000).finally(() => { settled = true; });
    // Until the server shows the mark's statement waiting on a lock (the host's row).
    for (let i = 0; ; i++) {
      const { rows } = await beat.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE fleet_hosts SET lost_at%'");
      if ((rows[0]?.n ?? 0) === 1) break;
      assert.ok(i < 200 && !settled, 'the mark waits on the host\'s row');
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(settled, false);
    await beat.query('COMMIT');
    assert.equal(await mark, undefined);
    assert.equal((await f.stores.runnerStates.list('h1')).length, 1);
    assert.equal((await f.stores.fleet.hosts())[0]?.lostAt, undefined);
  });

  scaleSetStateContract('postgres', async () => {
    const f = await fresh();
    return { store: f.stores.scaleSetState, reopen: async () => (await f.reopen()).scaleSetState, dispose: f.dispose };
  });

  test('postgres: two hosts starting together both migrate, and each migration is applied once', async (t) => {
    const c = await cluster();
    const url = await c.createSchema();
    const a = openPostgresPool({ url });
    const b = openPostgresPool({ url });
    t.after(async () => { await a.end(); await b.end(); await c.dropSchema(url); });
    // The sleep holds the first migrator inside its migration: without the lock the second would run it too and fail on the existing table.
    const slow: Migration[] = [
      { version: 1, name: 'first', sql: 'CREATE TABLE first (x integer); SELECT pg_sleep(0.3)' },
      { version: 2, name: 'second', sql: 'CREATE TABLE second (y integer)' },
    ];
    const results = await Promise.all([migrate(a, slow), migrate(b, slow)]);
    assert.deepEqual(results.map((r) => r.applied).sort((x, y) => y.length - x.length), [[1, 2], []]);
    assert.deepEqual(results.map((r) => r.version), [2, 2]);
    const { rows } = await a.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows.map((r) => r.version), [1, 2]);
  });

  test('postgres: a restart applies nothing, and a later migration is applied on the next start', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    assert.deepEqual(f.stores.migration.applied, MIGRATIONS.map((m) => m.version));
    assert.deepEqual((await f.reopen()).migration.applied, []);
    const pool = openPostgresPool({ url: f.url });
    t.after(() => pool.end());
    const next = { version: MIGRATIONS.length + 1, name: 'a later one', sql: 'ALTER TABLE jobs ADD COLUMN later_column TEXT' };
    assert.deepEqual(await migrate(pool, [...MIGRATIONS, next]), { applied: [next.version], version: next.version });
    // The stores keep working on the wider table.
    assert.deepEqual(await f.stores.intake.ingest([delivery(1, 'queued')]), ['accepted']);
  });

  test('postgres: a store whose schema is newer than this Flint is refused', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const pool = openPostgresPool({ url: f.url });
    t.after(() => pool.end());
    await pool.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')");
    await assert.rejects(openPostgresStores({ url: f.url }), { code: 'FLINT_ERR_STORE_SCHEMA_NEWER' });
  });

  test('postgres: a migration that fails leaves nothing of itself and is retried on the next start', async (t) => {
    const c = await cluster();
    const url = await c.createSchema();
    const pool = openPostgresPool({ url });
    t.after(async () => { await pool.end(); await c.dropSchema(url); });
    const broken: Migration[] = [
      { version: 1, name: 'fine', sql: 'CREATE TABLE fine (x integer)' },
      { version: 2, name: 'broken', sql: 'CREATE TABLE half (x integer); SELECT no_such_function()' },
    ];
    await assert.rejects(migrate(pool, broken), { code: 'FLINT_ERR_STORE_SCHEMA' });
    const tables = await pool.query<{ t: string | null }>("SELECT to_regclass('half')::text AS t");
    assert.equal(tables.rows[0]?.t, null, 'the failed migration left no table');
    assert.deepEqual((await pool.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version), [1]);
    const fixed = [broken[0] as Migration, { version: 2, name: 'fixed', sql: 'CREATE TABLE half (x integer)' }];
    assert.deepEqual(await migrate(pool, fixed), { applied: [2], version: 2 });
  });

  test('postgres: a batch that fails is not half-applied', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const pool = openPostgresPool({ url: f.url });
    t.after(() => pool.end());
    await pool.query(`CREATE FUNCTION fail_job_99() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.id = 99 THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$`);
    await pool.query('CREATE TRIGGER fail_job_99 BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION fail_job_99()');
    await assert.rejects(f.stores.intake.ingest([delivery(1, 'queued', { id: 'ok' }), delivery(99, 'queued', { id: 'bad' })]), { code: 'FLINT_ERR_STORE_WRITE_FAILED' });
    assert.equal(await f.stores.intake.countDeliveries(), 0);
    assert.equal(await f.stores.intake.getJob(1), undefined);
    // The pool's connection is usable again after the rollback.
    assert.deepEqual(await f.stores.intake.ingest([delivery(1, 'queued', { id: 'ok' })]), ['accepted']);
  });

  test('postgres: two hosts ingesting news of the same jobs at once end in the same state as one would', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const other = await f.reopen();
    const actions: JobAction[] = ['queued', 'in_progress', 'completed'];
    // Per job, every delivery twice (GitHub's redelivery landing on the other host), all at once.
    const jobs = [41, 42, 43, 44, 45, 46];
    const work = jobs.flatMap((job) => actions.flatMap((action, i) => {
      const d = delivery(job, action, { id: `${job}-${action}`, at: 100 + i, runner: 'flint-ab1-00001' });
      return [f.stores.intake.ingest([d]), other.intake.ingest([d])];
    }));
    const outcomes = (await Promise.all(work)).flat();
    assert.equal(outcomes.filter((o) => o === 'duplicate').length, jobs.length * actions.length, 'each delivery recorded once, its twin a duplicate');
    for (const job of jobs) {
      const stored = await other.intake.getJob(job);
      assert.equal(stored?.status, 'completed', `job ${job}`);
      assert.equal(stored?.runnerName, 'flint-ab1-00001');
    }
    assert.equal(await f.stores.intake.countDeliveries(), jobs.length * actions.length);
  });

  test('postgres: GitHub ids and times beyond 32 bits round-trip as numbers', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const jobId = 52_000_000_123;
    const at = 1_790_000_000_000;
    await f.stores.intake.ingest([delivery(jobId, 'queued', { id: 'big', at })]);
    const job = await f.stores.intake.getJob(jobId);
    assert.equal(job?.id, jobId);
    assert.equal(job?.firstSeenAt, at);
    assert.equal(typeof job?.runId, 'number');
    assert.deepEqual(await f.stores.intake.countJobsByDefinition('queued'), new Map([['default', 1]]));
    await f.stores.truth.putRedelivery({ guid: 'g', deliveryId: 9_000_000_000_001, attempts: 1, lastAt: at });
    assert.deepEqual(await f.stores.truth.getRedelivery('g'), { guid: 'g', deliveryId: 9_000_000_000_001, attempts: 1, lastAt: at });
  });

  test('postgres: the VM sequence is shared by every host of an instance id and never repeats', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const other = await f.reopen();
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? f.stores : other).vms.nextSequence('ab1')));
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  });

  test('postgres: the leader\'s stale-runners pass sees both hosts\' VM records and removes only registrations without one', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    const [leader, other] = [f.stores, await f.reopen()];
    for (const [s, id] of [[leader, 'pa'], [other, 'pb']] as const) await s.fleet.heartbeat({ id, capacity: { vcpus: 2, memoryMib: 4096 }, vms: 1 }, 1_000);
    const record = (id: string) => newVmRecord({ id, instanceId: id.slice(0, 2), runner: 'small', hypervisor: 'qemu', workDir: `/w/${id}`, createdAt: 5 });
    // Each host writes its own VMs' records; pb's second VM has ended.
    await leader.vms.insert(record('pa-00001'));
    await other.vms.insert(record('pb-00001'));
    await other.vms.insert(record('pb-00002'));
    assert.equal(await other.vms.update('pb-00002', 'preparing', { state: 'failed', reason: 'boot failed', endedAt: 9 }), true);
    const runner = (id: number, name: string) => ({ id, name, os: 'linux', status: 'offline', busy: false, ephemeral: true, runnerGroupId: 1, labels: [] });
    const deleted: number[] = [];
    const removed = await removeStaleRunners({
      github: {
        listRunners: async () => [runner(1, 'flint-pa-00001'), runner(2, 'flint-pb-00001'), runner(3, 'flint-pb-00002'), runner(4, 'flint-pb-00003'), runner(5, 'flint-pc-00001')],
        deleteRunner: async (_s, id) => { deleted.push(id); },
      },
      // The leader's supervisor holds nothing in memory here: its own VM counts through its record.
      instanceId: 'pa', liveVmIds: () => new Set(), fleet: fleetStaleView(leader.fleet, leader.vms),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    assert.deepEqual(removed, ['flint-pb-00002', 'flint-pb-00003'], 'pc is no host of this fleet');
    assert.deepEqual(deleted, [3, 4]);
  });

  test('postgres: the stores open their pool\'s connections at start, each with its backend running', async (t) => {
    const c = await cluster();
    const url = await c.createSchema();
    const watcher = openPostgresPool({ url, maxConnections: 1 });
    t.after(async () => { await watcher.end(); await c.dropSchema(url); });
    const since = (await watcher.query<{ t: Date }>('SELECT now() AS t')).rows[0]?.t;
    const stores = await openPostgresStores({ url, maxConnections: 4 });
    try {
      // Before any work: the first burst waits for no backend to start.
      const { rows } = await watcher.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'flint' AND backend_start >= $1 AND pid <> pg_backend_pid()", [since]);
      assert.equal(rows[0]?.n, 4);
    } finally {
      await stores.close();
    }
  });

  test('postgres: health reports the latest round trip and says closed after close', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    assert.deepEqual(f.stores.health(), { ok: true, database: 'open', store: 'postgres', schema: MIGRATIONS.length });
    await f.stores.close();
    assert.deepEqual(f.stores.health(), { ok: false, database: 'closed', store: 'postgres' });
  });

  test('postgres: health turns failing when the server refuses the pool, and recovers with it', async (t) => {
    const f = await fresh();
    t.after(f.dispose);
    // On another database of the cluster: a session cannot shut its own database.
    const admin = openPostgresPool({ url: f.url.replace('/flint_test?', '/postgres?'), maxConnections: 1 });
    t.after(() => admin.end());
    await admin.query('SELECT 1');
    const until = async (ok: boolean): Promise<void> => {
      for (let i = 0; i < 500 && f.stores.health().ok !== ok; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(f.stores.health().ok, ok);
    };
    // The stores' sessions are ended and no new one is let in.
    await admin.query('ALTER DATABASE flint_test ALLOW_CONNECTIONS false');
    try {
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'flint_test' AND application_name = 'flint'");
      await until(false);
      assert.equal(f.stores.health().database, 'failing');
    } finally {
      await admin.query('ALTER DATABASE flint_test ALLOW_CONNECTIONS true');
    }
    await until(true);
  });

  test('postgres: an unreachable server is a catalogue error that names the URL without its password', async () => {
    const c = await cluster();
    const url = `postgresql://flint:hunter2@localhost/flint_test?host=${encodeURIComponent(`${c.socketDir}/nowhere`)}`;
    await assert.rejects(openPostgresStores({ url }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FLINT_ERR_STORE_UNREACHABLE');
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });
}
