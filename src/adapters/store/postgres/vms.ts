/**
 * The VmStore port on PostgreSQL: tables `vms` and `vm_sequences`
 * (migrations.ts), as in the SQLite adapter (../vms.ts). `update` is a
 * compare-and-set on the stored state, one statement, so it holds between
 * processes and hosts alike.
 */
import type pg from 'pg';
import type { VmState } from '../../../core/vm-state.ts';
import type { VmRecord, VmRecordPatch, VmStore } from '../../../daemon/vm/vm-store.ts';
import { writeFailed } from './pool.ts';
import { COLUMNS, fromRow } from '../vms.ts';
import type { VmRow } from '../vms.ts';

/** Record field → column, for the fields a patch may change. */
const PATCH_COLUMNS = COLUMNS;

const INSERT_COLUMNS = {
  id: 'id', instanceId: 'instance_id', runner: 'runner', hypervisor: 'hypervisor', workDir: 'work_dir', createdAt: 'created_at', ...PATCH_COLUMNS,
} as const satisfies Record<keyof VmRecord, string>;

const INSERT_KEYS = Object.keys(INSERT_COLUMNS) as Array<keyof VmRecord>; // the keys of a literal typed by `satisfies` above
const INSERT_SQL = `INSERT INTO vms (${INSERT_KEYS.map((k) => INSERT_COLUMNS[k]).join(', ')}) VALUES (${INSERT_KEYS.map((_, i) => `$${i + 1}`).join(', ')})`;

export class PostgresVmStore implements VmStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async nextSequence(instanceId: string): Promise<number> {
    // One statement: atomic between hosts too.
    const { rows } = await this.pool.query<{ n: number }>(
      `INSERT INTO vm_sequences (instance_id, next) VALUES ($1, 1)
       ON CONFLICT (instance_id) DO UPDATE SET next = vm_sequences.next + 1
       RETURNING next - 1 AS n`, [instanceId]);
    const row = rows[0];
    if (row === undefined) throw new Error('vm_sequences: the upsert returned no row');
    return row.n;
  }

  async insert(rec: VmRecord): Promise<void> {
    try {
      await this.pool.query(INSERT_SQL, INSERT_KEYS.map((k) => rec[k]));
    } catch (err) {
      throw writeFailed(`VM ${rec.id}`, err);
    }
  }

  async update(id: string, expected: VmState, patch: VmRecordPatch): Promise<boolean> {
    const values: unknown[] = [id, expected];
    const sets: string[] = [];
    for (const [key, column] of Object.entries(PATCH_COLUMNS)) {
      if (!(key in patch)) continue;
      values.push(patch[key as keyof VmRecordPatch]); // key comes from PATCH_COLUMNS, whose keys are exactly VmRecordPatch's
      sets.push(`${column} = $${values.length}`);
    }
    if (sets.length === 0) return (await this.get(id))?.state === expected;
    try {
      const r = await this.pool.query(`UPDATE vms SET ${sets.join(', ')} WHERE id = $1 AND state = $2`, values);
      return r.rowCount === 1;
    } catch (err) {
      throw writeFailed(`a change of VM ${id}`, err);
    }
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const { rows } = await this.pool.query<VmRow>('SELECT * FROM vms WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async listUnfinished(instanceId: string): Promise<VmRecord[]> {
    const { rows } = await this.pool.query<VmRow>(
      "SELECT * FROM vms WHERE instance_id = $1 AND state NOT IN ('stopped', 'failed') ORDER BY created_at, id", [instanceId]);
    return rows.map(fromRow);
  }

  async listRecent(instanceId: string, limit: number): Promise<VmRecord[]> {
    const { rows } = await this.pool.query<VmRow>('SELECT * FROM vms WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2', [instanceId, limit]);
    return rows.map(fromRow);
  }
}
