/**
 * Scale-set listener state in Flint's SQLite file (see db.ts): table
 * `scaleset_state`, one row per scale set (runner group, name).
 */
import type { Db } from './db.ts';
import type { ScaleSetListenerState, ScaleSetStateStore } from '../../daemon/ports/scaleset-store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS scaleset_state (
  runner_group TEXT NOT NULL,
  name TEXT NOT NULL,
  scale_set_id INTEGER NOT NULL,
  session_id TEXT,
  last_message_id INTEGER NOT NULL,
  owner TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (runner_group, name)
);
`;

export interface ScaleSetStateRow {
  runner_group: string; name: string; scale_set_id: number; session_id: string | null; last_message_id: number; owner: string; updated_at: number;
}

export function fromRow(r: ScaleSetStateRow): ScaleSetListenerState {
  return {
    runnerGroup: r.runner_group, name: r.name, scaleSetId: r.scale_set_id, sessionId: r.session_id,
    lastMessageId: r.last_message_id, owner: r.owner, updatedAt: r.updated_at,
  };
}

export function createSqliteScaleSetState(db: Db): ScaleSetStateStore {
  db.exec(SCHEMA);
  const get = db.prepare('SELECT * FROM scaleset_state WHERE runner_group = ? AND name = ?');
  const put = db.prepare(
    `INSERT INTO scaleset_state (runner_group, name, scale_set_id, session_id, last_message_id, owner, updated_at)
     VALUES (@runnerGroup, @name, @scaleSetId, @sessionId, @lastMessageId, @owner, @updatedAt)
     ON CONFLICT (runner_group, name) DO UPDATE SET scale_set_id = excluded.scale_set_id, session_id = excluded.session_id,
       last_message_id = excluded.last_message_id, owner = excluded.owner, updated_at = excluded.updated_at`,
  );
  const advance = db.prepare(
    `UPDATE scaleset_state SET scale_set_id = @scaleSetId, last_message_id = @lastMessageId, updated_at = @at
     WHERE runner_group = @runnerGroup AND name = @name AND owner = @owner AND session_id = @sessionId`,
  );
  const clear = db.prepare('UPDATE scaleset_state SET session_id = NULL, updated_at = ? WHERE runner_group = ? AND name = ? AND owner = ?');
  // Async to match the port; SQLite answers synchronously.
  return {
    async get(key) {
      const row = get.get(key.runnerGroup, key.name) as ScaleSetStateRow | undefined; // the table's columns are ScaleSetStateRow
      return row === undefined ? undefined : fromRow(row);
    },
    async put(state) {
      put.run({ ...state });
    },
    async advance(key, o) {
      return advance.run({ runnerGroup: key.runnerGroup, name: key.name, ...o }).changes === 1;
    },
    async clearSession(key, owner, at) {
      clear.run(at, key.runnerGroup, key.name, owner);
    },
  };
}
