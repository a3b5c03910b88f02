/**
 * The fleet's heartbeats and leases in memory: one process, the same port
 * and contract tests as fleet.ts. markLost acts on the VM records and
 * runner states it is given (the memory stores of the same process); the
 * decision — heartbeat still old, not yet lost — is taken and recorded
 * before its first await, so a heartbeat arriving during the rest is one
 * that came after the mark, as on PostgreSQL where it waits for the commit.
 */
import { isTerminal } from '../../core/vm-state.ts';
import type { FleetHostRecord, FleetLease, FleetStore, LostRunner } from '../../daemon/ports/fleet.ts';
import { lostHostReason } from '../../daemon/ports/fleet.ts';
import type { RunnerStateStore } from '../../daemon/ports/store.ts';
import type { VmStore } from '../../daemon/vm/vm-store.ts';

export interface MemoryFleetRecords {
  readonly vms: VmStore;
  readonly runnerStates: RunnerStateStore;
}

export function createMemoryFleet(records?: MemoryFleetRecords): FleetStore {
  const hosts = new Map<string, FleetHostRecord>();
  const leases = new Map<string, FleetLease>();
  const copy = (h: FleetHostRecord): FleetHostRecord => ({ ...h, capacity: { ...h.capacity }, ...(h.canHold === undefined ? {} : { canHold: { ...h.canHold } }) });
  return {
    async heartbeat(host, now) {
      const prev = hosts.get(host.id);
      // A heartbeat clears the lost mark: the host came back.
      hosts.set(host.id, copy({ ...host, firstSeenAt: prev?.firstSeenAt ?? now, lastHeartbeatAt: now }));
    },
    async hosts() {
      return [...hosts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(copy);
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
    async markLost(hostId, heartbeatBefore, now) {
      const h = hosts.get(hostId);
      if (h === undefined || h.lostAt !== undefined || h.lastHeartbeatAt >= heartbeatBefore) return undefined;
      hosts.set(hostId, { ...h, lostAt: now });
      const failedVms: string[] = [];
      const runners: LostRunner[] = [];
      if (records !== undefined) {
        for (const rec of await records.vms.listUnfinished(hostId)) {
          if (isTerminal(rec.state)) continue;
          if (await records.vms.update(rec.id, rec.state, { state: 'failed', reason: lostHostReason(hostId), endedAt: now })) failedVms.push(rec.id);
        }
        for (const r of await records.runnerStates.list(hostId)) {
          await records.runnerStates.remove(r.vmId);
          runners.push({ vmId: r.vmId, definition: r.definition, githubRunnerId: r.githubRunnerId });
        }
      }
      return { hostId, lastHeartbeatAt: h.lastHeartbeatAt, failedVms, runners };
    },
  };
}
