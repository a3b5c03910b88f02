/**
 * The fleet: many hosts on one PostgreSQL store (docs/fleet.md). Each host
 * records a heartbeat (what it is, what it holds, when it last spoke), and
 * the loops that must run once per fleet run on the holder of a named lease
 * — a row with an expiry, taken when free, expired or already ours, and
 * renewed by its holder well before it expires. A holder that dies stops
 * renewing; after the lease's ttl another host takes it. No clock of the
 * database is read: every time is the caller's injected clock, so hosts'
 * clocks must agree to well within a ttl (NTP does).
 *
 * A host that stops heartbeating is marked lost (markLost) by the leader:
 * its unfinished VM records become failed and its runners' rows are handed
 * back, in one transaction that re-checks the heartbeat, so a host that
 * came back in between is left alone. Its next heartbeat clears the mark.
 *
 * Adapters: memory, SQLite (one file: one host in practice, but the same
 * lease rows), PostgreSQL; all run test/contracts/fleet.contract.ts.
 */

/** What a host reports on each heartbeat. */
export interface FleetHost {
  /** The host's instance id (unique per host of a fleet). */
  readonly id: string;
  /** What the host may hand to VMs. */
  readonly capacity: { readonly vcpus: number; readonly memoryMib: number };
  /** Its live VMs now. */
  readonly vms: number;
  /** Where an operator reaches it (its webhook URL), when known. */
  readonly address?: string;
  /**
   * Per runner definition (by name), how many runners of it the host can
   * hold now: those it runs plus as many more as fit in its free vCPUs and
   * memory, at most the definition's `maxRunners` (core/capacity.ts
   * runnersHostCanHold); 0 while it drains or the definition is paused.
   * The leader's scale-set listeners offer the sum over live hosts
   * (fleetRunnersCanHold). Absent when the host publishes none (a Flint
   * from before it did): such a host adds nothing to that sum.
   */
  readonly canHold?: Readonly<Record<string, number>>;
}

export interface FleetHostRecord extends FleetHost {
  /** Epoch ms of its first heartbeat on record. */
  readonly firstSeenAt: number;
  /** Epoch ms of its latest heartbeat. */
  readonly lastHeartbeatAt: number;
  /** Epoch ms it was marked lost (markLost), absent while it heartbeats; its next heartbeat clears it. */
  readonly lostAt?: number;
}

/** A runner of a lost host whose row markLost removed: its registration, if any, is the caller's to delete. */
export interface LostRunner {
  readonly vmId: string;
  /** The runner definition it was started for. */
  readonly definition: string;
  /** GitHub's id of its registration; null when it was never registered. */
  readonly githubRunnerId: number | null;
}

/** What markLost changed. */
export interface LostHost {
  readonly hostId: string;
  /** Its last heartbeat (older than the cut-off). */
  readonly lastHeartbeatAt: number;
  /** Its VM records that were unfinished and are now failed. */
  readonly failedVms: readonly string[];
  /** Its runners' rows, removed. */
  readonly runners: readonly LostRunner[];
}

/** The reason written on the VM records of a lost host. */
export function lostHostReason(hostId: string): string {
  return `host ${hostId} lost: it stopped heartbeating`;
}

export interface FleetLease {
  readonly name: string;
  readonly holder: string;
  /** Epoch ms it lapses unless renewed. */
  readonly expiresAt: number;
}

export interface FleetStore {
  /** Records (or refreshes) `host`'s row with `now` as its heartbeat. */
  heartbeat(host: FleetHost, now: number): Promise<void>;
  /** Every host on record, by id, with its latest heartbeat (a dead host's last one stays). */
  hosts(): Promise<FleetHostRecord[]>;
  /**
   * Takes the lease `name` for `hostId` until `now + ttlMs` when it is
   * free, expired (`expiresAt <= now`) or already held by `hostId` (a
   * renewal); true when `hostId` holds it afterwards. Atomic: of hosts
   * contending at once, exactly one gets true.
   */
  acquireLeadership(name: string, hostId: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives up the lease when `hostId` holds it (another host may take it at once); otherwise nothing. */
  releaseLeadership(name: string, hostId: string): Promise<void>;
  /** The lease `name` as recorded (possibly expired), for status surfaces. */
  lease(name: string): Promise<FleetLease | undefined>;
  /**
   * Marks `hostId` lost at `now` — only when its last heartbeat is older
   * than `heartbeatBefore` and it is not marked already, checked in the
   * same transaction that changes anything, so a heartbeat that lands
   * first leaves the host untouched. Marking fails its unfinished VM
   * records (`instanceId` = the host; preparing, booting, running,
   * stopping) with lostHostReason and `endedAt = now`, and removes and
   * returns its runner states. Undefined when nothing was marked (unknown,
   * fresh or already lost host); a second call is therefore a no-op.
   */
  markLost(hostId: string, heartbeatBefore: number, now: number): Promise<LostHost | undefined>;
}
