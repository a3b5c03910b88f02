/**
 * The fleet's heartbeats and leases in Flint's SQLite file (see db.ts):
 * tables `fleet_hosts` and `fleet_leases`. A SQLite file serves one host,
 * which then always holds its leases; the rows are the same as on
 * PostgreSQL so that the same contract holds and `flint status` reads one
 * shape.
 */
import type { Db } from './db.ts';
import type { FleetHostRecord, FleetStore } from '../../daemon/ports/fleet.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fleet_hosts (
  id                TEXT PRIMARY KEY,
  vcpus             INTEGER NOT NULL,
  memory_mib        INTEGER NOT NULL,
  vms               INTEGER NOT NULL,
  address           TEXT,
  first_seen_at     INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`;

export interface HostRow {
  id: string; vcpus: number; memory_mib: number; vms: number; address: string | null; first_seen_at: number; last_heartbeat_at: number;
}

export function hostFromRow(r: HostRow): FleetHostRecord {
  return {
    id: r.id, capacity: { vcpus: r.vcpus, memoryMib: r.memory_mib }, vms: r.vms, ...(r.address === null ? {} : { address: r.address }),
    firstSeenAt: r.first_seen_at, lastHeartbeatAt: r.last_heartbeat_at,
  };
}

export function createSqliteFleet(db: Db): FleetStore {
  db.exec(SCHEMA);
  const beat = db.prepare(
    `INSERT INTO fleet_hosts (id, vcpus, memory_mib, vms, address, first_seen_at, last_heartbeat_at)
     VALUES (@id, @vcpus, @memoryMib, @vms, @address, @now, @now)
     ON CONFLICT (id) DO UPDATE SET vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, vms = excluded.vms,
       address = excluded.address, last_heartbeat_at = excluded.last_heartbeat_at`,
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
  // Async to match the port; SQLite answers synchronously.
  return {
    async heartbeat(host, now) {
      beat.run({ id: host.id, vcpus: host.capacity.vcpus, memoryMib: host.capacity.memoryMib, vms: host.vms, address: host.address ?? null, now });
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
  };
}
