/**
 * In-memory VmStore: the same behaviour as the SQLite adapter (the contract
 * suite in test/contracts/vm-store.contract.ts runs against both), for
 * supervisor tests that need no file.
 */
import type { VmState } from '../../src/core/vm-state.ts';
import { isTerminal } from '../../src/core/vm-state.ts';
import type { VmRecord, VmRecordPatch, VmStore } from '../../src/daemon/vm/vm-store.ts';

export class MemoryVmStore implements VmStore {
  private readonly records = new Map<string, VmRecord>();
  private readonly sequences = new Map<string, number>();

  async nextSequence(instanceId: string): Promise<number> {
    const n = this.sequences.get(instanceId) ?? 0;
    this.sequences.set(instanceId, n + 1);
    return n;
  }

  async insert(record: VmRecord): Promise<void> {
    if (this.records.has(record.id)) throw new Error(`duplicate VM id ${record.id}`);
    this.records.set(record.id, { ...record });
  }

  async update(id: string, expected: VmState, patch: VmRecordPatch): Promise<boolean> {
    const rec = this.records.get(id);
    if (rec === undefined || rec.state !== expected) return false;
    this.records.set(id, { ...rec, ...patch });
    return true;
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const rec = this.records.get(id);
    return rec === undefined ? undefined : { ...rec };
  }

  async listUnfinished(instanceId: string): Promise<VmRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.instanceId === instanceId && !isTerminal(r.state))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async listRecent(instanceId: string, limit: number): Promise<VmRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.instanceId === instanceId)
      .sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id))
      .slice(0, limit);
  }
}
