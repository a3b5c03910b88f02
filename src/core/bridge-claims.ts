/**
 * Host-wide claims of bridges, pure: which Flints may share one bridge.
 *
 * Each Flint instance keeps its address leases in the SQLite file of its own
 * state directory, so two instances with different state directories on one
 * bridge know nothing of each other's leases. Before it uses a bridge, an
 * instance records a claim (adapter: src/adapters/network/bridge-claims.ts)
 * and checks it against the claims of every other live Flint on that bridge.
 * Two claims are compatible when
 *   - they share the lease store (the same state directory): the leases
 *     table's primary key keeps their addresses apart, as for one instance; or
 *   - the addresses they hand out cannot meet: their IPv4 spans are disjoint,
 *     and so are their IPv6 spans when both hand out IPv6.
 * A span is the network's `range` when one is configured, else the whole
 * pool of the subnet (so two different subnets on one bridge are compatible
 * too).
 *
 * A claim whose owner process is gone (killed, crashed, host rebooted) is
 * stale: it is removed by the next claimant instead of blocking it, so a
 * crash never wedges a host.
 */
import type { AddressSpan } from './ipam.ts';
import { formatSpan, spansOverlap } from './ipam.ts';

export interface BridgeClaim {
  /** Bridge name (bridges are per network namespace; the adapter keys claims by namespace too). */
  readonly bridge: string;
  readonly instanceId: string;
  /** Absolute state directory: claims with the same one share the lease store. */
  readonly stateDir: string;
  /**
   * The owner process, as the adapter's liveness check understands it
   * (`<pid>:<start time>`). One process may hold claims of several
   * instances (tests do): a claim is identified by owner, instance and
   * state directory together.
   */
  readonly owner: string;
  readonly v4: AddressSpan;
  readonly v6?: AddressSpan;
  /** Milliseconds since the epoch, from the caller's clock (for operators reading the claims). */
  readonly claimedAt: number;
}

export type ClaimDecision =
  | { readonly ok: true; readonly stale: readonly BridgeClaim[] }
  | { readonly ok: false; readonly conflict: BridgeClaim; readonly why: string; readonly stale: readonly BridgeClaim[] };

export function sameClaimant(a: BridgeClaim, b: BridgeClaim): boolean {
  return a.owner === b.owner && a.instanceId === b.instanceId && a.stateDir === b.stateDir;
}

/** Why `a` and `b` must not share a bridge, or undefined when they may. */
export function claimConflict(a: BridgeClaim, b: BridgeClaim): string | undefined {
  if (a.stateDir === b.stateDir) return undefined;
  if (spansOverlap(a.v4, b.v4)) {
    return `both hand out IPv4 addresses from ${formatSpan(a.v4)} and ${formatSpan(b.v4)}, which overlap`;
  }
  if (a.v6 !== undefined && b.v6 !== undefined && spansOverlap(a.v6, b.v6)) {
    return `both hand out IPv6 addresses from ${formatSpan(a.v6)} and ${formatSpan(b.v6)}, which overlap`;
  }
  return undefined;
}

/**
 * Decides whether `mine` may join the claims `existing` on its bridge.
 * Claims of dead owners are reported as stale (to delete) and ignored; the
 * claimant's own earlier claim (same owner, instance and state directory)
 * is replaced, not compared.
 */
export function decideClaim(mine: BridgeClaim, existing: readonly BridgeClaim[], isOwnerAlive: (owner: string) => boolean): ClaimDecision {
  const stale: BridgeClaim[] = [];
  let conflict: { claim: BridgeClaim; why: string } | undefined;
  for (const other of existing) {
    if (other.bridge !== mine.bridge || sameClaimant(other, mine)) continue;
    if (!isOwnerAlive(other.owner)) {
      stale.push(other);
      continue;
    }
    const why = claimConflict(mine, other);
    if (why !== undefined && conflict === undefined) conflict = { claim: other, why };
  }
  return conflict === undefined ? { ok: true, stale } : { ok: false, conflict: conflict.claim, why: conflict.why, stale };
}
