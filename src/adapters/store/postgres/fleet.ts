/**
 * The FleetStore port on PostgreSQL: tables `fleet_hosts` and
 * `fleet_leases` (migration 2), shared by every host of the fleet.
 *
 * A lease is taken or renewed by one statement: the insert creates the
 * row when there is none; on a conflict the update applies only when the
 * row has expired or is the caller's own, and RETURNING yields a row only
 * when the insert or the update happened. Two hosts contending at once
 * serialize on the row's lock (the second re-checks the WHERE against the
 * first's new row under READ COMMITTED), so exactly one wins.
 *
 * What a host can hold per runner definition (FleetHost.canHold) is the
 * JSONB column `can_hold` (migration 6).
 *
 * markLost (column `lost_at`, migration 5) is one transaction whose first
 * statement sets the mark only while the heartbeat is still old: it locks
 * the host's row, so a heartbeat racing it either committed first (the
 * re-checked WHERE no longer matches and nothing changes) or waits for
 * the commit and then clears the mark.
 */
import type pg from 'pg';
import type { FleetStore } from '../../../daemon/ports/fleet.ts';
import { lostHostReason } from '../../../daemon/ports/fleet.ts';
import { canHoldText, hostFromRow, UNFINISHED_VM_STATES } from '../fleet.ts';
import type { HostRow } from '../fleet.ts';
import { inTransaction, writeFailed } from './pool.ts';

export function createPostgresFleet(pool: pg.Pool): FleetStore {
  return {
    async heartbeat(host, now) {
      try {
        await pool.query(
          `INSERT INTO fleet_hosts (id, vcpus, memory_mib, vms, address, first_seen_at, last_heartbeat_at, can_hold)
           VALUES ($1, $2, $3, $4, $5, $6, $6, $7::jsonb)
           ON CONFLICT (id) DO UPDATE SET vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, vms = excluded.vms,
             address = excluded.address, last_heartbeat_at = excluded.last_heartbeat_at, lost_at = NULL, can_hold = excluded.can_hold`,
          [host.id, host.capacity.vcpus, host.capacity.memoryMib, host.vms, host.address ?? null, now, canHoldText(host.canHold)]);
      } catch (err) {
        throw writeFailed(`the heartbeat of host ${host.id}`, err);
      }
    },
    async hosts() {
      const { rows } = await pool.query<HostRow>('SELECT * FROM fleet_hosts ORDER BY id');
      return rows.map(hostFromRow);
    },
    async acquireLeadership(name, hostId, now, ttlMs) {
      try {
        const { rows } = await pool.query(
          `INSERT INTO fleet_leases AS l (name, holder, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE l.expires_at <= $4 OR l.holder = excluded.holder
           RETURNING holder`,
          [name, hostId, now + ttlMs, now]);
        return rows.length === 1;
      } catch (err) {
        throw writeFailed(`the lease ${name}`, err);
      }
    },
    async releaseLeadership(name, hostId) {
      await pool.query('DELETE FROM fleet_leases WHERE name = $1 AND holder = $2', [name, hostId]);
    },
    async lease(name) {
      const { rows } = await pool.query<{ name: string; holder: string; expires_at: number }>('SELECT name, holder, expires_at FROM fleet_leases WHERE name = $1', [name]);
      const r = rows[0];
      return r === undefined ? undefined : { name: r.name, holder: r.holder, expiresAt: r.expires_at };
    },
    async markLost(hostId, heartbeatBefore, now) {
      try {
        return await inTransaction(pool, async (client) => {
          const marked = await client.query<{ last_heartbeat_at: number }>(
            'UPDATE fleet_hosts SET lost_at = $1 WHERE id = $2 AND last_heartbeat_at < $3 AND lost_at IS NULL RETURNING last_heartbeat_at',
            [now, hostId, heartbeatBefore]);
          const row = marked.rows[0];
          if (row === undefined) return undefined;
          const failed = await client.query<{ id: string }>(
            `UPDATE vms SET state = 'failed', reason = $1, ended_at = $2 WHERE instance_id = $3 AND state = ANY($4::text[]) RETURNING id`,
            [lostHostReason(hostId), now, hostId, UNFINISHED_VM_STATES]);
          const taken = await client.query<{ vm_id: string; definition: string; github_runner_id: number | null }>(
            'DELETE FROM runner_states WHERE instance_id = $1 RETURNING vm_id, definition, github_runner_id', [hostId]);
          return {
            hostId, lastHeartbeatAt: row.last_heartbeat_at,
            failedVms: failed.rows.map((r) => r.id).sort(),
            runners: taken.rows.map((r) => ({ vmId: r.vm_id, definition: r.definition, githubRunnerId: r.github_runner_id }))
              .sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0)),
          };
        });
      } catch (err) {
        throw writeFailed(`host ${hostId} as lost`, err);
      }
    },
  };
}
