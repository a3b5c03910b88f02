/**
 * Host-wide bridge claims: which live Flints use which bridge, in one small
 * SQLite file every Flint on the host shares, `<runDir>/claims.db` (runDir
 * defaults to /run/flint, a tmpfs: claims vanish with a reboot). The rules
 * are pure (src/core/bridge-claims.ts); this file stores claims and judges
 * whether their owners live.
 *
 * Why SQLite and not lock files: the check "read every claim of the bridge,
 * drop the stale ones, compare, insert mine" must run as one step for all
 * processes, and SQLite's write lock (`BEGIN IMMEDIATE`) is an fcntl lock
 * the kernel drops when its holder dies — a Flint killed in the middle of a
 * claim cannot leave a lock behind. A claim itself is a row, not a lock: it
 * names its owner process by pid AND start time (a reused pid is a
 * different process), the boot it belongs to, and the pid namespace in
 * which that pid means something. A claim whose owner is gone is stale and
 * is deleted by the next claimant, so `kill -9` never wedges a host.
 * A claim from another pid namespace cannot be judged and counts as alive
 * (the error names it; delete the row by hand when that Flint is gone).
 *
 * Claims are keyed by network namespace and bridge: a bridge name means a
 * different bridge in another network namespace.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { BridgeClaim } from '../../core/bridge-claims.ts';
import { decideClaim } from '../../core/bridge-claims.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { formatAddress, parseAddress } from '../../core/ipam.ts';
import type { AddressSpan, IpFamily } from '../../core/ipam.ts';
import { ProcHostProcesses } from '../host/proc-host-processes.ts';

export const CLAIMS_FILE = 'claims.db';

/** What the claims need to know about this host and process. */
export interface ClaimHost {
  /** Identity of this process's network namespace (e.g. "net:[4026531840]"). */
  readonly netns: string;
  /** Identity of this process's pid namespace. */
  readonly pidns: string;
  /** The kernel's boot id: a claim from an earlier boot is stale whatever its pid. */
  readonly bootId: string;
  /** This process as `<pid>:<start time>`. */
  self(): string;
  /** True while the process `owner` (from `self()` of some process in this pid namespace) lives. */
  isOwnerAlive(owner: string): boolean;
}

export function procClaimHost(proc = '/proc'): ClaimHost {
  const processes = new ProcHostProcesses(proc);
  const link = (p: string): string => {
    try {
      return readlinkSync(p);
    } catch {
      return 'unknown';
    }
  };
  let bootId = 'unknown';
  try {
    bootId = readFileSync(`${proc}/sys/kernel/random/boot_id`, 'utf8').trim();
  } catch {
    // No boot id (unusual /proc): claims then rely on pid and start time alone.
  }
  return {
    netns: link(`${proc}/self/ns/net`),
    pidns: link(`${proc}/self/ns/pid`),
    bootId,
    self: () => processes.self(),
    isOwnerAlive: (owner) => processes.isOwnerAlive(owner),
  };
}

export interface ClaimRequest {
  readonly bridge: string;
  /** The IPv4 addresses this instance hands out on the bridge (its `range`, or the whole pool). */
  readonly v4: AddressSpan;
  readonly v6?: AddressSpan;
  /** Milliseconds since the epoch. */
  readonly now: number;
}

export interface BridgeClaims {
  /**
   * Claims the bridge for this instance and process, or throws
   * FLINT_ERR_NET_BRIDGE_CLAIMED naming the live Flint it would clash with.
   * Idempotent (a repeated claim updates the row). Removes stale claims of
   * the bridge on the way and returns them.
   */
  claim(req: ClaimRequest): BridgeClaim[];
  /** Drops this instance's claim of the bridge (this process's only). */
  release(bridge: string): void;
  /** Every claim recorded in this network namespace (stale ones included), for operators and tests. */
  list(): BridgeClaim[];
  /** Releases every claim this object made and closes the file. Idempotent. */
  close(): void;
}

export interface BridgeClaimsOptions {
  /** Directory of claims.db (the `runDir` setting). */
  readonly dir: string;
  readonly instanceId: string;
  /** This instance's state directory (absolute): claims with the same one share the lease store. */
  readonly stateDir: string;
  readonly host?: ClaimHost;
}

interface Row {
  netns: string;
  bridge: string;
  owner: string;
  boot_id: string;
  pidns: string;
  instance_id: string;
  state_dir: string;
  v4_first: string;
  v4_last: string;
  v6_first: string | null;
  v6_last: string | null;
  claimed_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS bridge_claims (
  netns       TEXT    NOT NULL,
  bridge      TEXT    NOT NULL,
  owner       TEXT    NOT NULL,  -- <pid>:<start time> of the claiming process
  boot_id     TEXT    NOT NULL,
  pidns       TEXT    NOT NULL,
  instance_id TEXT    NOT NULL,
  state_dir   TEXT    NOT NULL,
  v4_first    TEXT    NOT NULL,
  v4_last     TEXT    NOT NULL,
  v6_first    TEXT,
  v6_last     TEXT,
  claimed_at  INTEGER NOT NULL,
  PRIMARY KEY (netns, bridge, owner, instance_id, state_dir)
);
`;

function span(family: IpFamily, first: string, last: string): AddressSpan {
  return { family, first: parseAddress(first)?.value ?? 0n, last: parseAddress(last)?.value ?? 0n };
}

function toClaim(r: Row): BridgeClaim {
  return {
    bridge: r.bridge, instanceId: r.instance_id, stateDir: r.state_dir, owner: r.owner, claimedAt: r.claimed_at,
    v4: span(4, r.v4_first, r.v4_last),
    ...(r.v6_first !== null && r.v6_last !== null ? { v6: span(6, r.v6_first, r.v6_last) } : {}),
  };
}

function unusable(path: string, err: unknown): FlintError {
  if (isFlintError(err)) return err;
  return new FlintError('FLINT_ERR_NET_CLAIMS_UNUSABLE', `bridge claims in ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { path } });
}

export function openBridgeClaims(opts: BridgeClaimsOptions): BridgeClaims {
  const host = opts.host ?? procClaimHost();
  const path = join(opts.dir, CLAIMS_FILE);
  let db: Database.Database;
  try {
    // Readable by all (it names pids and state directories, no secrets), writable by its owner (root).
    mkdirSync(opts.dir, { recursive: true, mode: 0o755 });
    db = new Database(path);
    // Every Flint on the host opens this file; a claimant waits for another's few-millisecond transaction.
    db.pragma('busy_timeout = 10000');
    db.exec(SCHEMA);
  } catch (err) {
    throw unusable(path, err);
  }
  const rowsOf = db.prepare<[string, string], Row>('SELECT * FROM bridge_claims WHERE netns = ? AND bridge = ?');
  const all = db.prepare<[string], Row>('SELECT * FROM bridge_claims WHERE netns = ? ORDER BY bridge, claimed_at');
  const remove = db.prepare<[string, string, string, string, string]>('DELETE FROM bridge_claims WHERE netns = ? AND bridge = ? AND owner = ? AND instance_id = ? AND state_dir = ?');
  const upsert = db.prepare(`INSERT INTO bridge_claims (netns, bridge, owner, boot_id, pidns, instance_id, state_dir, v4_first, v4_last, v6_first, v6_last, claimed_at)
    VALUES (@netns, @bridge, @owner, @boot_id, @pidns, @instance_id, @state_dir, @v4_first, @v4_last, @v6_first, @v6_last, @claimed_at)
    ON CONFLICT (netns, bridge, owner, instance_id, state_dir) DO UPDATE SET
      v4_first = excluded.v4_first, v4_last = excluded.v4_last, v6_first = excluded.v6_first, v6_last = excluded.v6_last`);
  const claimed = new Set<string>();
  let closed = false;

  const claimTx = db.transaction((req: ClaimRequest): BridgeClaim[] => {
    const self = host.self();
    const rows = rowsOf.all(host.netns, req.bridge);
    const byOwner = new Map(rows.map((r) => [r.owner, r]));
    const alive = (owner: string): boolean => {
      const r = byOwner.get(owner);
      if (r === undefined) return false;
      if (r.boot_id !== host.bootId) return false; // an earlier boot: every process of it is gone
      if (r.pidns !== host.pidns) return true; // its pid means nothing here: cannot be judged, so it counts
      return host.isOwnerAlive(owner);
    };
    const mine: BridgeClaim = {
      bridge: req.bridge, instanceId: opts.instanceId, stateDir: opts.stateDir, owner: self, claimedAt: req.now,
      v4: req.v4, ...(req.v6 === undefined ? {} : { v6: req.v6 }),
    };
    const decision = decideClaim(mine, rows.map(toClaim), alive);
    for (const s of decision.stale) remove.run(host.netns, s.bridge, s.owner, s.instanceId, s.stateDir);
    if (!decision.ok) {
      const other = decision.conflict;
      const pid = other.owner.split(':')[0] ?? other.owner;
      const sameId = other.instanceId === opts.instanceId ? ' (the same instance id, with another state directory: their taps would collide too)' : '';
      throw new FlintError('FLINT_ERR_NET_BRIDGE_CLAIMED',
        `bridge ${req.bridge} is already used by Flint instance "${other.instanceId}"${sameId} (pid ${pid}, state directory ${other.stateDir}, since ${new Date(other.claimedAt).toISOString()}): ${decision.why}`,
        { details: { bridge: req.bridge, otherInstance: other.instanceId, otherPid: pid, otherStateDir: other.stateDir, claims: path } });
    }
    upsert.run({
      netns: host.netns, bridge: req.bridge, owner: self, boot_id: host.bootId, pidns: host.pidns,
      instance_id: opts.instanceId, state_dir: opts.stateDir,
      v4_first: formatAddress(4, req.v4.first), v4_last: formatAddress(4, req.v4.last),
      v6_first: req.v6 === undefined ? null : formatAddress(6, req.v6.first), v6_last: req.v6 === undefined ? null : formatAddress(6, req.v6.last),
      claimed_at: req.now,
    });
    return [...decision.stale];
  });

  const release = (bridge: string): void => {
    remove.run(host.netns, bridge, host.self(), opts.instanceId, opts.stateDir);
    claimed.delete(bridge);
  };

  return {
    claim(req) {
      if (closed) throw new FlintError('FLINT_ERR_INTERNAL', 'bridge claims used after close');
      try {
        const stale = claimTx.immediate(req);
        claimed.add(req.bridge);
        return stale;
      } catch (err) {
        throw unusable(path, err);
      }
    },
    release(bridge) {
      if (closed) return;
      try {
        release(bridge);
      } catch (err) {
        throw unusable(path, err);
      }
    },
    list() {
      return all.all(host.netns).map(toClaim);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        for (const bridge of [...claimed]) release(bridge);
      } finally {
        db.close();
      }
    },
  };
}
