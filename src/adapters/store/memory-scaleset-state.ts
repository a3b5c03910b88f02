/** Scale-set listener state in memory: the same port and contract tests as scaleset-state.ts. */
import type { ScaleSetKey, ScaleSetListenerState, ScaleSetStateStore } from '../../daemon/ports/scaleset-store.ts';

export function createMemoryScaleSetState(): ScaleSetStateStore {
  const rows = new Map<string, ScaleSetListenerState>();
  const k = (key: ScaleSetKey): string => JSON.stringify([key.runnerGroup, key.name]);
  return {
    async get(key) {
      const r = rows.get(k(key));
      return r === undefined ? undefined : { ...r };
    },
    async put(state) {
      rows.set(k(state), { ...state });
    },
    async advance(key, o) {
      const r = rows.get(k(key));
      if (r === undefined || r.owner !== o.owner || r.sessionId !== o.sessionId) return false;
      rows.set(k(key), { ...r, scaleSetId: o.scaleSetId, lastMessageId: o.lastMessageId, updatedAt: o.at });
      return true;
    },
    async clearSession(key, owner, at) {
      const r = rows.get(k(key));
      if (r !== undefined && r.owner === owner) rows.set(k(key), { ...r, sessionId: null, updatedAt: at });
    },
  };
}
