/**
 * The `network-policy` loop: every pass re-asserts the nftables tables
 * Flint owns for its networks (a table someone flushed, `nft flush ruleset`
 * included, comes back with every live VM's entries) and re-resolves the host
 * names of the egress allow-lists, rewriting their sets atomically. The
 * tables' fingerprints make a pass over an untouched host a few `nft list`
 * calls. It also deletes this instance's tables of networks that left the
 * configuration, once no VM of this instance is on them.
 */
import type { NetworkConfig } from '../config/types.ts';
import { startLoop } from './loop.ts';
import type { Loop, LoopLogger, LoopTimers } from './loop.ts';

/** What the loop needs of host networking (the Linux adapter implements it). */
export interface NetworkPolicyPort {
  reassert(nets: readonly NetworkConfig[]): Promise<void>;
}

export const NETWORK_POLICY_INTERVAL_MS = 30_000;

export function startNetworkPolicy(opts: {
  readonly network: NetworkPolicyPort;
  readonly networks: readonly NetworkConfig[];
  readonly logger: LoopLogger;
  readonly now: () => number;
  readonly intervalMs?: number;
  readonly timers?: LoopTimers;
  /** Default true; tests that want to time the first pass themselves say false. */
  readonly runAtStart?: boolean;
}): Loop {
  return startLoop({
    name: 'network-policy',
    intervalMs: opts.intervalMs ?? NETWORK_POLICY_INTERVAL_MS,
    // At start: tables of an older Flint (another fingerprint) are replaced before the first new VM needs them.
    runAtStart: opts.runAtStart ?? true,
    run: () => opts.network.reassert(opts.networks),
    logger: opts.logger,
    now: opts.now,
    ...(opts.timers === undefined ? {} : { timers: opts.timers }),
  });
}
