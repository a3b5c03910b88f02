/**
 * The ScaleSetStateStore port on PostgreSQL: table `scaleset_state`
 * (migration 3), one row per scale set (runner group, name), as in the
 * SQLite adapter (../scaleset-state.ts). `advance` and `clearSession` are
 * single conditional updates, so a listener that lost its scale set to
 * another owner (another host) cannot write over that owner's row.
 */
import type pg from 'pg';
import type { ScaleSetStateStore } from '../../../daemon/ports/scaleset-store.ts';
import { fromRow } from '../scaleset-state.ts';
import type { ScaleSetStateRow } from '../scaleset-state.ts';
import { writeFailed } from './pool.ts';

export function createPostgresScaleSetState(pool: pg.Pool): ScaleSetStateStore {
  return {
    async get(key) {
      const { rows } = await pool.query<ScaleSetStateRow>('SELECT * FROM scaleset_state WHERE runner_group = $1 AND name = $2', [key.runnerGroup, key.name]);
      const r = rows[0];
      return r === undefined ? undefined : fromRow(r);
    },
    async put(s) {
      try {
        await pool.query(
          `INSERT INTO scaleset_state (runner_group, name, scale_set_id, session_id, last_message_id, owner, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (runner_group, name) DO UPDATE SET scale_set_id = excluded.scale_set_id, session_id = excluded.session_id,
             last_message_id = excluded.last_message_id, owner = excluded.owner, updated_at = excluded.updated_at`,
          [s.runnerGroup, s.name, s.scaleSetId, s.sessionId, s.lastMessageId, s.owner, s.updatedAt]);
      } catch (err) {
        throw writeFailed(`the listener state of scale set ${s.name}`, err);
      }
    },
    async advance(key, o) {
      try {
        const r = await pool.query(
          `UPDATE scaleset_state SET scale_set_id = $1, last_message_id = $2, updated_at = $3
           WHERE runner_group = $4 AND name = $5 AND owner = $6 AND session_id = $7`,
          [o.scaleSetId, o.lastMessageId, o.at, key.runnerGroup, key.name, o.owner, o.sessionId]);
        return r.rowCount === 1;
      } catch (err) {
        throw writeFailed(`the last message of scale set ${key.name}`, err);
      }
    },
    async clearSession(key, owner, at) {
      await pool.query('UPDATE scaleset_state SET session_id = NULL, updated_at = $1 WHERE runner_group = $2 AND name = $3 AND owner = $4',
        [at, key.runnerGroup, key.name, owner]);
    },
  };
}
