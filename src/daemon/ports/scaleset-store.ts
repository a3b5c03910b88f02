/**
 * Where a scale-set listener keeps what must outlive its process
 * (docs/scale-sets.md, "In the daemon"): per scale set, the message
 * session it opened, the last message whose effects are committed, and
 * which listener owns it. A restarted Flint reads it back to resume after
 * that message and to delete its own stale session (the client deletes
 * only a session id it can prove it recorded). The SQLite adapter, the
 * memory one and the PostgreSQL one run test/contracts/scaleset-state.contract.ts.
 */

/** Names a scale set across the fleet: its name within its runner group (its id changes when the service recreates it). */
export interface ScaleSetKey {
  readonly runnerGroup: string;
  readonly name: string;
}

export interface ScaleSetListenerState extends ScaleSetKey {
  /** The service's id of the scale set, as last seen. */
  readonly scaleSetId: number;
  /** The message session the owner opened and has not deleted; null once deleted (a clean shutdown). */
  readonly sessionId: string | null;
  /** The last message whose effects are committed to the store (0: none yet on this scale set id). */
  readonly lastMessageId: number;
  /** The listener's owner name (`flint-<instance id>`), sent to the service as the session's ownerName. */
  readonly owner: string;
  /** Epoch ms of the last write (injected clock). */
  readonly updatedAt: number;
}

export interface ScaleSetStateStore {
  get(key: ScaleSetKey): Promise<ScaleSetListenerState | undefined>;
  /** Inserts or replaces the state of `state`'s scale set. */
  put(state: ScaleSetListenerState): Promise<void>;
  /**
   * Records that message `lastMessageId` of `scaleSetId` is committed, for
   * the session `sessionId` of `owner` only; false (and nothing written)
   * when the row now names another owner or session: a second listener
   * took the scale set, and this one must stop acknowledging.
   */
  advance(key: ScaleSetKey, o: { readonly owner: string; readonly sessionId: string; readonly scaleSetId: number; readonly lastMessageId: number; readonly at: number }): Promise<boolean>;
  /** Forgets the session of `owner` (deleted at the service on shutdown); another owner's row is left alone. */
  clearSession(key: ScaleSetKey, owner: string, at: number): Promise<void>;
}
