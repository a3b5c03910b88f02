/**
 * Flint's stores on PostgreSQL, all on one pool: what the composition root
 * builds when the configuration has `store: {postgres: …}` (docs/fleet.md).
 * The schema is brought up to date (migrations.ts) before any store is
 * handed out. Address leases are not here: they belong to one host's
 * bridges and stay in its SQLite file.
 */
import type pg from 'pg';
import { FlintError } from '../../../core/errors/index.ts';
import type { JobRecordStore, RunnerStateStore, TruthStore } from '../../../daemon/ports/store.ts';
import type { VmStore } from '../../../daemon/vm/vm-store.ts';
import type { FleetStore } from '../../../daemon/ports/fleet.ts';
import { createPostgresFleet } from './fleet.ts';
import type { WorkClaims } from '../../../daemon/ports/work-claims.ts';
import { createPostgresWorkClaims } from './work-claims.ts';
import type { ScaleSetStateStore } from '../../../daemon/ports/scaleset-store.ts';
import { createPostgresScaleSetState } from './scaleset-state.ts';
import { createPostgresIntakeStore } from './intake-store.ts';
import type { PostgresIntakeStore } from './intake-store.ts';
import { createPostgresJobRecords } from './job-records.ts';
import { migrate } from './migrations.ts';
import type { MigrationResult } from './migrations.ts';
import { openConnections, openPostgresPool, redactUrl } from './pool.ts';
import type { PostgresSettings } from './pool.ts';
import { createPostgresRunnerStates } from './runner-states.ts';
import { createPostgresTruthStore } from './truth-store.ts';
import { PostgresVmStore } from './vms.ts';

export type { PostgresSettings } from './pool.ts';

export interface PostgresStores {
  readonly intake: PostgresIntakeStore;
  readonly truth: TruthStore;
  readonly records: JobRecordStore;
  readonly runnerStates: RunnerStateStore;
  readonly vms: VmStore;
  /** The fleet's heartbeats and leases (docs/fleet.md). */
  readonly fleet: FleetStore;
  /** Claims on queued jobs: how the fleet's hosts share work (docs/fleet.md). */
  readonly claims: WorkClaims;
  /** The scale-set listeners' sessions and last committed messages. */
  readonly scaleSetState: ScaleSetStateStore;
  /** What the start's migration did. */
  readonly migration: MigrationResult;
  /**
   * For /healthz and the `store` check of /readyz, which answer
   * synchronously: the outcome of the latest round trip to the server
   * (at first, the start's migration), and each call starts the next one
   * (one at a time), so a failing server shows from the next request on.
   */
  health(): { readonly ok: boolean; readonly [k: string]: unknown };
  /** Ends the pool: every connection closed once its query is done. Idempotent. */
  close(): Promise<void>;
}

/** Builds every store on a pool of its own, after the schema is current; the pool ends if that fails. */
export async function openPostgresStores(settings: PostgresSettings): Promise<PostgresStores> {
  const pool = openPostgresPool(settings);
  let migration: MigrationResult;
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end();
    throw new FlintError('FLINT_ERR_STORE_UNREACHABLE', `cannot reach the PostgreSQL store at ${redactUrl(settings.url)}: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
  try {
    migration = await migrate(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  await openConnections(pool);
  return postgresStoresOn(pool, migration);
}

/** The stores on a pool whose schema is current; closing them ends the pool. */
export function postgresStoresOn(pool: pg.Pool, migration: MigrationResult): PostgresStores {
  let ended: Promise<void> | undefined;
  let last: { readonly ok: boolean; readonly [k: string]: unknown } = { ok: true, database: 'open', store: 'postgres', schema: migration.version };
  let probing = false;
  const probe = (): void => {
    probing = true;
    pool.query('SELECT 1').then(
      () => { last = { ok: true, database: 'open', store: 'postgres', schema: migration.version }; },
      (err: unknown) => { last = { ok: false, database: 'failing', store: 'postgres', error: err instanceof Error ? err.message : String(err) }; },
    ).finally(() => { probing = false; });
  };
  return {
    intake: createPostgresIntakeStore(pool),
    truth: createPostgresTruthStore(pool),
    records: createPostgresJobRecords(pool),
    runnerStates: createPostgresRunnerStates(pool),
    vms: new PostgresVmStore(pool),
    fleet: createPostgresFleet(pool),
    claims: createPostgresWorkClaims(pool),
    scaleSetState: createPostgresScaleSetState(pool),
    migration,
    health() {
      if (ended !== undefined) return { ok: false, database: 'closed', store: 'postgres' };
      if (!probing) probe();
      return last;
    },
    close() {
      // After the probe in flight, if any: pool.end() waits for checked-out clients.
      ended ??= pool.end();
      return ended;
    },
  };
}
