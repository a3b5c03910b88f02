/**
 * This host's membership of the fleet (docs/fleet.md): two loops on the
 * FleetStore port.
 *
 *   fleet-heartbeat   at start and every heartbeatMs: this host's row
 *                     (capacity, live VMs, address) with the time
 *   fleet-leadership  at start and every ttl/3: takes or renews the lease
 *                     `leaseName`; the holder runs the loops that must run
 *                     once per fleet
 *
 * `leader()` is true only while the lease this host last took is, by the
 * host's own clock, unexpired: a host whose renewals fail (the store is
 * unreachable) stops counting itself leader when its lease lapses — the
 * moment another host may take it — not at the first failure, and not
 * later. The expiry is measured from the clock read BEFORE the store was
 * asked, so it is never later than the one recorded.
 */
import type { FleetHost, FleetStore } from './ports/fleet.ts';
import { startLoop } from './loop.ts';
import type { Loop, LoopTimers } from './loop.ts';

export const FLEET_DEFAULTS = {
  heartbeatMs: 10_000,
  /** Lease lifetime: a dead leader's loops resume on another host within this. */
  leaseTtlMs: 20_000,
  leaseName: 'singletons',
  /** Lifetime of a claim on a queued job (renewed every scale tick): a dead host's jobs go to others within this. */
  claimTtlMs: 30_000,
  /** A host silent this long (90 s, several lease ttls) is marked lost by the leader's fleet-reaper. */
  hostLostMs: 90_000,
} as const;

export interface FleetLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FleetMembershipDeps {
  readonly fleet: FleetStore;
  /** What this host reports now (its id is its instance id). */
  readonly host: () => FleetHost;
  readonly clock: { now(): number };
  readonly logger: FleetLogger;
  readonly heartbeatMs?: number;
  readonly leaseTtlMs?: number;
  readonly leaseName?: string;
  /** Told when this host becomes leader (true) or stops being it (false). */
  readonly onLeadership?: (leader: boolean) => void;
  readonly timers?: LoopTimers;
}

export interface FleetMembership {
  /** True while this host holds the lease (by its own clock). */
  leader(): boolean;
  readonly loops: readonly Loop[];
  /** Stops both loops and gives the lease up, so another host takes over at once. */
  stop(): Promise<void>;
}

export function startFleetMembership(d: FleetMembershipDeps): FleetMembership {
  const ttlMs = d.leaseTtlMs ?? FLEET_DEFAULTS.leaseTtlMs;
  const leaseName = d.leaseName ?? FLEET_DEFAULTS.leaseName;
  let heldUntil = 0;
  let was = false;
  let stopped = false;
  const leader = (): boolean => !stopped && heldUntil > d.clock.now();
  /** Tells of a change in either direction, noticed at each renewal and at each call of leader(). */
  const notice = (): void => {
    const now = leader();
    if (now === was) return;
    was = now;
    d.logger.info({ lease: leaseName, host: d.host().id, leader: now }, now ? 'fleet: this host leads' : 'fleet: this host no longer leads');
    d.onLeadership?.(now);
  };
  const timers = d.timers === undefined ? {} : { timers: d.timers };
  const heartbeat = startLoop({
    name: 'fleet-heartbeat', intervalMs: d.heartbeatMs ?? FLEET_DEFAULTS.heartbeatMs, runAtStart: true, logger: d.logger, now: () => d.clock.now(), ...timers,
    run: () => d.fleet.heartbeat(d.host(), d.clock.now()),
  });
  const leadership = startLoop({
    name: 'fleet-leadership', intervalMs: Math.max(1, Math.floor(ttlMs / 3)), runAtStart: true, logger: d.logger, now: () => d.clock.now(), ...timers,
    run: async () => {
      const asked = d.clock.now();
      try {
        const got = await d.fleet.acquireLeadership(leaseName, d.host().id, asked, ttlMs);
        // Lost (another host holds it) means lost now, whatever this host thought it held.
        heldUntil = got ? asked + ttlMs : 0;
      } finally {
        // A failed renewal keeps what was held until it lapses.
        notice();
      }
    },
  });
  return {
    leader: () => {
      // Told after the caller's turn: the caller may be a gated loop's pass that the news pokes.
      queueMicrotask(notice);
      return leader();
    },
    loops: [heartbeat, leadership],
    async stop() {
      await leadership.stop();
      await heartbeat.stop();
      const held = leader();
      stopped = true;
      notice();
      if (held) await d.fleet.releaseLeadership(leaseName, d.host().id).catch((err: unknown) => {
        d.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'fleet: could not give the lease up; another host takes it when it expires');
      });
    },
  };
}
