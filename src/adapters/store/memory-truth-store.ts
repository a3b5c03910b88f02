/**
 * The TruthStore port in memory: held to the same contract tests as the
 * SQLite adapter (truth-store.contract.ts), for tests of the loops above it.
 */
import type { RedeliveryRecord, TruthStore } from '../../daemon/ports/store.ts';

export function createMemoryTruthStore(): TruthStore {
  const checks = new Map<number, number>();
  const marks = new Map<string, number>();
  const redeliveries = new Map<string, RedeliveryRecord>();
  return {
    async jobChecks() {
      return new Map(checks);
    },
    async markJobChecked(jobId, at) {
      checks.set(jobId, at);
    },
    async getMark(name) {
      return marks.get(name);
    },
    async setMark(name, value) {
      marks.set(name, value);
    },
    async getRedelivery(guid) {
      return redeliveries.get(guid);
    },
    async putRedelivery(r) {
      redeliveries.set(r.guid, { ...r });
    },
    async pruneTruth(before) {
      let jobChecks = 0;
      let gone = 0;
      for (const [k, v] of checks) if (v < before) { checks.delete(k); jobChecks++; }
      for (const [k, v] of redeliveries) if (v.lastAt < before) { redeliveries.delete(k); gone++; }
      return { jobChecks, redeliveries: gone };
    },
  };
}
