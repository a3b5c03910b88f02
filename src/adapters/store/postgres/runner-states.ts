/**
 * The RunnerStateStore port on PostgreSQL: table `runner_states`, one row
 * per runner VM still alive, as in the SQLite adapter (../runner-states.ts).
 */
import type pg from 'pg';
import type { RunnerStateStore } from '../../../daemon/ports/store.ts';
import { fromRow } from '../runner-states.ts';
import type { RunnerStateRow } from '../runner-states.ts';
import { writeFailed } from './pool.ts';

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
      const { rows } = await pool.query<RunnerStateRow>('SELECT * FROM runner_states WHERE instance_id = $1 ORDER BY started_at, vm_id', [instanceId]);
      return rows.map(fromRow);
    },
  };
}
