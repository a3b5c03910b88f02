/**
 * The RunnerStateStore port on PostgreSQL: table `runner_states`, one row
 * per runner VM still alive, as in the SQLite adapter (../runner-states.ts).
 */
import type pg from 'pg';
import type { RunnerPhase, RunnerState, RunnerStateStore } from '../../../daemon/ports/store.ts';
import { writeFailed } from './pool.ts';

interface Row {
  vm_id: string; instance_id: string; definition: string; phase: string; github_runner_id: number | null; idle_since: number | null; started_at: number;
}

const PHASES: readonly RunnerPhase[] = ['starting', 'idle', 'busy', 'ending'];

function fromRow(r: Row): RunnerState {
  // An unknown phase (a newer Flint wrote it) is read as busy: the safest, it is never reaped as idle.
  const phase = PHASES.find((p) => p === r.phase) ?? 'busy';
  return {
    vmId: r.vm_id, instanceId: r.instance_id, definition: r.definition, phase, githubRunnerId: r.github_runner_id,
    idleSince: r.idle_since, startedAt: r.started_at,
  };
}

export function createPostgresRunnerStates(pool: pg.Pool): RunnerStateStore {
  return {
    async put(s) {
      try {
        await pool.query(
          `INSERT INTO runner_states (vm_id, instance_id, definition, phase, github_runner_id, idle_since, started_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (vm_id) DO UPDATE SET definition = excluded.definition, phase = excluded.phase,
             github_runner_id = excluded.github_runner_id, idle_since = excluded.idle_since, started_at = excluded.started_at`,
          [s.vmId, s.instanceId, s.definition, s.phase, s.githubRunnerId, s.idleSince, s.startedAt]);
      } catch (err) {
        throw writeFailed(`the state of runner ${s.vmId}`, err);
      }
    },
    async remove(vmId) {
      await pool.query('DELETE FROM runner_states WHERE vm_id = $1', [vmId]);
    },
    async list(instanceId) {
      const { rows } = await pool.query<Row>('SELECT * FROM runner_states WHERE instance_id = $1 ORDER BY started_at, vm_id', [instanceId]);
      return rows.map(fromRow);
    },
  };
}
