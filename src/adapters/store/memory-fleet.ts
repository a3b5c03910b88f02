/** The fleet's heartbeats and leases in memory: one process, the same port and contract tests as fleet.ts. */
import type { FleetHostRecord, FleetLease, FleetStore } from '../../daemon/ports/fleet.ts';

export function createMemoryFleet(): FleetStore {
  const hosts = new Map<string, FleetHostRecord>();
  const leases = new Map<string, FleetLease>();
  return {
    async heartbeat(host, now) {
      const prev = hosts.get(host.id);
      hosts.set(host.id, { ...host, capacity: { ...host.capacity }, firstSeenAt: prev?.firstSeenAt ?? now, lastHeartbeatAt: now });
    },
    async hosts() {
      return [...hosts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((h) => ({ ...h, capacity: { ...h.capacity } }));
    },
    async acquireLeadership(name, hostId, now, ttlMs) {
      const l = leases.get(name);
      if (l !== undefined && l.holder !== hostId && l.expiresAt > now) return false;
      leases.set(name, { name, holder: hostId, expiresAt: now + ttlMs });
      return true;
    },
    async releaseLeadership(name, hostId) {
      if (leases.get(name)?.holder === hostId) leases.delete(name);
    },
    async lease(name) {
      const l = leases.get(name);
      return l === undefined ? undefined : { ...l };
    },
  };
}
