/**
 * VM records in Flint's SQLite file (see db.ts). Implements the VmStore port
 * of the supervisor. Tables: `vms` (one row per VM ever made by any instance
 * using this file) and `vm_sequences` (the persisted per-instance counter
 * behind VM ids, so an id is never reused, even after a restart).
 *
 * Writes commit with synchronous=NORMAL (db.ts relaxedWrite; the ids
 * taken, rows inserted and state changes of all VMs in one turn of the
 * event loop in one commit, relaxedBatch): a crash of
 * Flint loses none of them; a power loss may lose the last few, together
 * with the VMs they describe (docs/webhooks.md, "Durability").
 */
import type Database from 'better-sqlite3';
import { sharedRelaxedBatch } from './db.ts';
import type { Db } from './db.ts';
import type { HypervisorKind } from '../../config/types.ts';
import { isVmState } from '../../core/vm-state.ts';
import type { VmState } from '../../core/vm-state.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { VmRecord, VmRecordPatch, VmStore } from '../../daemon/vm/vm-store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS vm_sequences (
  instance_id TEXT PRIMARY KEY,
  next INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vms (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  runner TEXT NOT NULL,
  hypervisor TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  work_dir TEXT NOT NULL,
  owner TEXT,
  pid INTEGER,
  vmm_start_time TEXT,
  control_socket TEXT,
  console_file TEXT,
  created_at INTEGER NOT NULL,
  prepare_ms INTEGER,
  started_at INTEGER,
  booted_at INTEGER,
  runner_started_at INTEGER,
  ended_at INTEGER,
  runner_exit_code INTEGER,
  vmm_exit_code INTEGER,
  vmm_signal TEXT
);
CREATE INDEX IF NOT EXISTS vms_instance_state ON vms (instance_id, state);
`;

/** Record field → column. The one place the two spellings meet (the PostgreSQL adapter uses it too). */
export const COLUMNS = {
  state: 'state', reason: 'reason', owner: 'owner', pid: 'pid', vmmStartTime: 'vmm_start_time', controlSocket: 'control_socket', consoleFile: 'console_file', prepareMs: 'prepare_ms', startedAt: 'started_at', bootedAt: 'booted_at',
  runnerStartedAt: 'runner_started_at', endedAt: 'ended_at', runnerExitCode: 'runner_exit_code', vmmExitCode: 'vmm_exit_code',
  vmmSignal: 'vmm_signal',
} as const satisfies Record<keyof VmRecordPatch, string>;

export interface VmRow {
  id: string; instance_id: string; runner: string; hypervisor: string; state: string; reason: string | null; work_dir: string; owner: string | null;
  pid: number | null; vmm_start_time: string | null; control_socket: string | null; console_file: string | null; created_at: number; prepare_ms: number | null; started_at: number | null; booted_at: number | null;
  runner_started_at: number | null; ended_at: number | null; runner_exit_code: number | null; vmm_exit_code: number | null;
  vmm_signal: string | null;
}

export function fromRow(r: VmRow): VmRecord {
  if (!isVmState(r.state)) {
    throw new FlintError('FLINT_ERR_VM_STATE_CONFLICT', `VM ${r.id} has an unknown stored state "${r.state}"`, { details: { vmId: r.id } });
  }
  const hypervisor: HypervisorKind = r.hypervisor === 'qemu' ? 'qemu' : 'firecracker';
  return {
    id: r.id, instanceId: r.instance_id, runner: r.runner, hypervisor, state: r.state, reason: r.reason, workDir: r.work_dir,
    owner: r.owner, pid: r.pid, vmmStartTime: r.vmm_start_time, controlSocket: r.control_socket, consoleFile: r.console_file, createdAt: r.created_at, prepareMs: r.prepare_ms, startedAt: r.started_at, bootedAt: r.booted_at,
    runnerStartedAt: r.runner_started_at, endedAt: r.ended_at, runnerExitCode: r.runner_exit_code, vmmExitCode: r.vmm_exit_code,
    vmmSignal: r.vmm_signal,
  };
}

/** Creates (or brings up to date) the VM tables; idempotent. Other modules that query `vms` call it first. */
export function ensureVmSchema(db: Db): void {
  db.exec(SCHEMA);
  // Files made before the owner column existed get it (NULL = unknown owner, swept as before).
  const columns = db.prepare('PRAGMA table_info(vms)').all() as Array<{ name: string }>; // PRAGMA table_info rows carry `name`
  if (!columns.some((c) => c.name === 'owner')) db.exec('ALTER TABLE vms ADD COLUMN owner TEXT');
  // Files made before VMs could be adopted after a restart get the VMM's handle (NULL = not adoptable, swept).
  for (const [column, type] of [['vmm_start_time', 'TEXT'], ['control_socket', 'TEXT'], ['console_file', 'TEXT']] as const) {
    if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE vms ADD COLUMN ${column} ${type}`);
  }
}

export class SqliteVmStore implements VmStore {
  private readonly db: Db;
  private readonly sequence: Database.Statement<[string], { n: number }>;
  private readonly insertRow: Database.Statement<[Record<string, unknown>]>;
  private readonly selectOne: Database.Statement<[string], VmRow>;
  private readonly selectUnfinished: Database.Statement<[string], VmRow>;
  private readonly selectRecent: Database.Statement<[string, number], VmRow>;
  /** UPDATE statements by the patch's columns (a handful of shapes, one per transition). */
  private readonly updates = new Map<string, Database.Statement<[Record<string, unknown>]>>();
  /** State changes of all VMs in one turn share a commit (with the connection's other batched writes). */
  private readonly batched: <T>(write: () => T) => Promise<T>;

  constructor(db: Db) {
    this.db = db;
    this.batched = sharedRelaxedBatch(db);
    ensureVmSchema(db);
    // One statement, atomic even with a second process on the same file.
    this.sequence = db.prepare(
      `INSERT INTO vm_sequences (instance_id, next) VALUES (?, 1)
       ON CONFLICT (instance_id) DO UPDATE SET next = next + 1
       RETURNING next - 1 AS n`,
    );
    this.insertRow = db.prepare(
      `INSERT INTO vms (id, instance_id, runner, hypervisor, state, reason, work_dir, owner, pid, vmm_start_time, control_socket, console_file,
         created_at, prepare_ms, started_at, booted_at, runner_started_at, ended_at, runner_exit_code, vmm_exit_code, vmm_signal)
       VALUES (@id, @instanceId, @runner, @hypervisor, @state, @reason, @workDir, @owner, @pid, @vmmStartTime, @controlSocket, @consoleFile,
         @createdAt, @prepareMs, @startedAt, @bootedAt, @runnerStartedAt, @endedAt, @runnerExitCode, @vmmExitCode, @vmmSignal)`,
    );
    this.selectOne = db.prepare('SELECT * FROM vms WHERE id = ?');
    this.selectUnfinished = db.prepare(`SELECT * FROM vms WHERE instance_id = ? AND state NOT IN ('stopped', 'failed') ORDER BY created_at, id`);
    this.selectRecent = db.prepare('SELECT * FROM vms WHERE instance_id = ? ORDER BY created_at DESC, id DESC LIMIT ?');
  }

  // Methods are async to match the port (a networked store comes later);
  // SQLite itself answers synchronously.
  async nextSequence(instanceId: string): Promise<number> {
    // RETURNING always yields exactly one row here. In the turn's batch: a
    // burst of launches shares commits with the VMs' state changes.
    const row = await this.batched(() => this.sequence.get(instanceId));
    if (row === undefined) throw new Error('vm_sequences: the upsert returned no row');
    return row.n;
  }

  async insert(rec: VmRecord): Promise<void> {
    await this.batched(() => this.insertRow.run({ ...rec }));
  }

  async update(id: string, expected: VmState, patch: VmRecordPatch): Promise<boolean> {
    const sets: string[] = [];
    const values: Record<string, unknown> = { id, expected };
    for (const [key, column] of Object.entries(COLUMNS)) {
      if (!(key in patch)) continue;
      sets.push(`${column} = @${key}`);
      values[key] = patch[key as keyof VmRecordPatch]; // key comes from COLUMNS, whose keys are exactly VmRecordPatch's
    }
    if (sets.length === 0) return (await this.get(id))?.state === expected;
    const shape = sets.join(', ');
    let statement = this.updates.get(shape);
    if (statement === undefined) {
      statement = this.db.prepare(`UPDATE vms SET ${shape} WHERE id = @id AND state = @expected`);
      this.updates.set(shape, statement);
    }
    const run = statement;
    return (await this.batched(() => run.run(values))).changes === 1;
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const row = this.selectOne.get(id);
    return row === undefined ? undefined : fromRow(row);
  }

  async listUnfinished(instanceId: string): Promise<VmRecord[]> {
    return this.selectUnfinished.all(instanceId).map(fromRow);
  }

  async listRecent(instanceId: string, limit: number): Promise<VmRecord[]> {
    return this.selectRecent.all(instanceId, limit).map(fromRow);
  }
}
