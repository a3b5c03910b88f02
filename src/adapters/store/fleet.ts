/**
 * The fleet's heartbeats and leases in Flint's SQLite file (see db.ts):
 * tables `fleet_hosts` (FleetHost.canHold as JSON text in `can_hold`) and
 * `fleet_leases`. A SQLite file serves one host,
 * which then always holds its leases; the rows are the same as on
 * PostgreSQL so that the same contract holds and `flint status` reads one
 * shape.
 */
import type { Db } from './db.ts';
import type { FleetHost, FleetHostRecord, FleetStore, LostHost } from '../../daemon/ports/fleet.ts';
import { lostHostReason } from '../../daemon/ports/fleet.ts';
import { ensureRunnerStateSchema } from './runner-states.ts';
import { ensureVmSchema } from './vms.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fleet_hosts (
  id                TEXT PRIMARY KEY,
  vcpus             INTEGER NOT NULL,
  memory_mib        INTEGER NOT NULL,
  vms               INTEGER NOT NULL,
  address           TEXT,
  first_seen_at     INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL,
  lost_at           INTEGER,
  can_hold          TEXT
);
CREATE TABLE IF NOT EXISTS fleet_leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`;

export interface HostRow {
  id: string; vcpus: number; memory_mib: number; vms: number; address: string | null; first_seen_at: number; last_heartbeat_at: number; lost_at: number | null;
  /** FleetHost.canHold: JSON text (SQLite), an object already parsed (PostgreSQL's JSONB), or null. */
  can_hold: unknown;
}

/** FleetHost.canHold as stored: JSON text, or null when the host publishes none. */
export function canHoldText(canHold: FleetHost['canHold']): string | null {
  return canHold === undefined ? null : JSON.stringify(canHold);
}

/**
 * The stored column back as FleetHost.canHold, read at the edge: only
 * whole numbers ≥ 0 per definition are kept, anything else on record
 * (another writer's mistake) counts as no room rather than failing the
 * listing of the whole fleet.
 */
function canHoldFrom(value: unknown): Record<string, number> | undefined {
  let v: unknown = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(v)) if (Number.isSafeInteger(n) && (n as number) >= 0) out[name] = n as number; // isSafeInteger proved it a number
  return out;
}

/** The VM states markLost fails: every one that is not terminal. */
export const UNFINISHED_VM_STATES = ['preparing', 'booting', 'running', 'stopping'] as const;

export function hostFromRow(r: HostRow): FleetHostRecord {
  const record: FleetHostRecord = {
    id: r.id, capacity: { vcpus: r.vcpus, memoryMib: r.memory_mib }, vms: r.vms, ...(r.address === null ? {} : { address: r.address }),
    firstSeenAt: r.first_seen_at, lastHeartbeatAt: r.last_heartbeat_at, ...(r.lost_at === null ? {} : { lostAt: r.lost_at }),
  };
  const canHold = canHoldFrom(r.can_hold);
  return canHold === undefined ? record : { ...record, canHold };
}

export function createSqliteFleet(db: Db): FleetStore {
  db.exec(SCHEMA);
  // Files made before hosts could be marked lost get the column (NULL = not lost).
  const columns = db.prepare('PRAGMA table_info(fleet_hosts)').all() as Array<{ name: string }>; // PRAGMA table_info rows carry `name`
  if (!columns.some((c) => c.name === 'lost_at')) db.exec('ALTER TABLE fleet_hosts ADD COLUMN lost_at INTEGER');
  if (!columns.some((c) => c.name === 'can_hold')) db.exec('ALTER TABLE fleet_hosts ADD COLUMN can_hold TEXT');
  ensureVmSchema(db);
  ensureRunnerStateSchema(db);
  const beat = db.prepare(
    `INSERT INTO fleet_hosts (id, vcpus, memory_mib, vms, address, first_seen_at, last_heartbeat_at, can_hold)
     VALUES (@id, @vcpus, @memoryMib, @vms, @address, @now, @now, @canHold)
     ON CONFLICT (id) DO UPDATE SET vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, vms = excluded.vms,
       address = excluded.address, last_heartbeat_at = excluded.last_heartbeat_at, lost_at = NULL, can_hold = excluded.can_hold`,
  );
  const list = db.prepare('SELECT * FROM fleet_hosts ORDER BY id');
  // One statement: SQLite runs it alone, so two contenders cannot both win.
  const take = db.prepare(
    `INSERT INTO fleet_leases (name, holder, expires_at) VALUES (@name, @holder, @expiresAt)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE fleet_leases.expires_at <= @now OR fleet_leases.holder = excluded.holder`,
  );
  const release = db.prepare('DELETE FROM fleet_leases WHERE name = ? AND holder = ?');
  const get = db.prepare('SELECT name, holder, expires_at FROM fleet_leases WHERE name = ?');
  const unfinished = UNFINISHED_VM_STATES.map((s) => `'${s}'`).join(', ');
  const mark = db.prepare<[number, string, number], { last_heartbeat_at: number }>(
    'UPDATE fleet_hosts SET lost_at = ? WHERE id = ? AND last_heartbeat_at < ? AND lost_at IS NULL RETURNING last_heartbeat_at');
  const failVms = db.prepare<[string, number, string], { id: string }>(
    `UPDATE vms SET state = 'failed', reason = ?, ended_at = ? WHERE instance_id = ? AND state IN (${unfinished}) RETURNING id`);
  const takeRunners = db.prepare<[string], { vm_id: string; definition: string; github_runner_id: number | null }>(
    'DELETE FROM runner_states WHERE instance_id = ? RETURNING vm_id, definition, github_runner_id');
  // One transaction: the heartbeat check and the changes it allows commit together.
  const markLost = db.transaction((hostId: string, heartbeatBefore: number, now: number): LostHost | undefined => {
    const row = mark.get(now, hostId, heartbeatBefore);
    if (row === undefined) return undefined;
    const failedVms = failVms.all(lostHostReason(hostId), now, hostId).map((r) => r.id).sort();
    const runners = takeRunners.all(hostId).map((r) => ({ vmId: r.vm_id, definition: r.definition, githubRunnerId: r.github_runner_id }))
      .sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0));
    return { hostId, lastHeartbeatAt: row.last_heartbeat_at, failedVms, runners };
  });
  // Async to match the port; SQLite answers synchronously.
  return {
    async heartbeat(host, now) {
      beat.run({ id: host.id, vcpus: host.capacity.vcpus, memoryMib: host.capacity.memoryMib, vms: host.vms, address: host.address ?? null, now, canHold: canHoldText(host.canHold) });
    },
    async hosts() {
      return (list.all() as HostRow[]).map(hostFromRow); // the table's columns are HostRow
    },
    async acquireLeadership(name, hostId, now, ttlMs) {
      return take.run({ name, holder: hostId, expiresAt: now + ttlMs, now }).changes === 1;
    },
    async releaseLeadership(name, hostId) {
      release.run(name, hostId);
    },
    async lease(name) {
      const r = get.get(name) as { name: string; holder: string; expires_at: number } | undefined; // the table's columns
      return r === undefined ? undefined : { name: r.name, holder: r.holder, expiresAt: r.expires_at };
    },
    async markLost(hostId, heartbeatBefore, now) {
      return markLost.immediate(hostId, heartbeatBefore, now);
    },
  };
}
