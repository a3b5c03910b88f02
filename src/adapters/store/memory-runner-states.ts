/** The scheduler's runners in memory: the same port and contract tests as runner-states.ts. */
import type { RunnerState, RunnerStateStore } from '../../daemon/ports/store.ts';

export function createMemoryRunnerStates(): RunnerStateStore {
  const rows = new Map<string, RunnerState>();
  return {
    async put(state) {
      rows.set(state.vmId, { ...state });
    },
    async remove(vmId) {
      rows.delete(vmId);
    },
    async list(instanceId) {
      return [...rows.values()]
        .filter((r) => r.instanceId === instanceId)
        .sort((a, b) => a.startedAt - b.startedAt || (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0))
        .map((r) => ({ ...r }));
    },
  };
}
