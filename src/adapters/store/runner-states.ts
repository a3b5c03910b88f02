/**
 * The scheduler's runners in Flint's SQLite file (see db.ts), beside the VM
 * records: table `runner_states`, one row per runner VM still alive. A
 * restarted Flint reads them back for the VMs it adopted.
 */
import { sharedRelaxedBatch } from './db.ts';
import type { Db } from './db.ts';
import type { RunnerPhase, RunnerState, RunnerStateStore } from '../../daemon/ports/store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runner_states (
  vm_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  definition TEXT NOT NULL,
  phase TEXT NOT NULL,
  github_runner_id INTEGER,
  idle_since INTEGER,
  started_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runner_states_instance ON runner_states (instance_id);
`;

export interface RunnerStateRow {
  vm_id: string; instance_id: string; definition: string; phase: string; github_runner_id: number | null; idle_since: number | null; started_at: number;
}

const PHASES: readonly RunnerPhase[] = ['starting', 'idle', 'busy', 'ending'];

export function fromRow(r: RunnerStateRow): RunnerState {
  // An unknown phase (a newer Flint wrote it) is read as busy: the safest, it is never reaped as idle.
  const phase = PHASES.find((p) => p === r.phase) ?? 'busy';
  return {
    vmId: r.vm_id, instanceId: r.instance_id, definition: r.definition, phase, githubRunnerId: r.github_runner_id,
    idleSince: r.idle_since, startedAt: r.started_at,
  };
}

/** Creates the runner_states table when missing; idempotent. Other modules that query it call it first. */
export function ensureRunnerStateSchema(db: Db): void {
  db.exec(SCHEMA);
}

export function createSqliteRunnerStates(db: Db): RunnerStateStore {
  ensureRunnerStateSchema(db);
  const put = db.prepare(
    `INSERT INTO runner_states (vm_id, instance_id, definition, phase, github_runner_id, idle_since, started_at)
     VALUES (@vmId, @instanceId, @definition, @phase, @githubRunnerId, @idleSince, @startedAt)
     ON CONFLICT (vm_id) DO UPDATE SET definition = excluded.definition, phase = excluded.phase,
       github_runner_id = excluded.github_runner_id, idle_since = excluded.idle_since, started_at = excluded.started_at`,
  );
  const remove = db.prepare('DELETE FROM runner_states WHERE vm_id = ?');
  const list = db.prepare('SELECT * FROM runner_states WHERE instance_id = ? ORDER BY started_at, vm_id');
  // Like the VM rows they sit beside, these describe VMs on this host, which
  // a power loss or kernel crash ends with them: they commit with NORMAL
  // (db.ts relaxedWrite), not a fsync each; a crash of Flint alone loses
  // none. Batched per turn with the VM rows (db.ts sharedRelaxedBatch):
  // nothing waits on these writes to act (the scheduler queues them and
  // hands all runners' changes over at once), so a burst of runner changes
  // costs one commit per turn, not one per change.
  const batched = sharedRelaxedBatch(db);
  return {
    async put(state) {
      await batched(() => put.run({ ...state }));
    },
    async remove(vmId) {
      await batched(() => remove.run(vmId));
    },
    async list(instanceId) {
      return (list.all(instanceId) as RunnerStateRow[]).map(fromRow); // the table's columns are RunnerStateRow
    },
  };
}
