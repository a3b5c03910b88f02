/**
 * Guest address leases in Flint's SQLite file.
 *
 * A lease is written BEFORE the VM's tap exists and removed only AFTER the
 * tap is gone, so an address that a live guest may still use is never in
 * the free pool — also not after Flint crashed and restarted (the start-up
 * sweep releases the leases of VMs that are really gone).
 *
 * Uniqueness, at three levels:
 *   - PRIMARY KEY (network, address): the database refuses a second lease of
 *     one address on one bridge, whatever process tries it;
 *   - allocation runs in a `BEGIN IMMEDIATE` transaction: the write lock is
 *     taken before the leased set is read, so two processes sharing the file
 *     serialize (the second waits up to the connection's busy_timeout);
 *   - inside one process better-sqlite3 is synchronous: a transaction runs to
 *     its end before any other JavaScript, so concurrent `attach` calls can
 *     never interleave between "read leased set" and "insert".
 */
import type { Db } from './db.ts';
import { FlintError } from '../../core/errors/index.ts';
import { formatAddress, inPool, parseAddress, pickAddress } from '../../core/ipam.ts';
import type { AddressPool, IpFamily } from '../../core/ipam.ts';

export interface LeaseRecord {
  /** Bridge name. */
  readonly network: string;
  readonly family: IpFamily;
  /** Canonical text of the address. */
  readonly address: string;
  readonly instanceId: string;
  readonly vmId: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

export interface AcquireAllRequest {
  readonly network: string;
  readonly pools: readonly AddressPool[];
  readonly instanceId: string;
  readonly vmId: string;
  readonly now: number;
  /** Canonical addresses not to hand out although no lease holds them (something else on the bridge answers for them). */
  readonly avoid?: ReadonlySet<string>;
}

export interface LeaseStore {
  /**
   * The VM's lease of `pool`'s family on `network`: the existing one when the
   * VM already holds it (a retried attach), else a new one. Throws
   * FLINT_ERR_NET_POOL_EXHAUSTED when no address is free.
   */
  acquire(req: { network: string; pool: AddressPool; instanceId: string; vmId: string; now: number }): LeaseRecord;
  /** One lease per pool (IPv4 and IPv6 of one network), all in one transaction: all or none. */
  acquireAll(req: AcquireAllRequest): LeaseRecord[];
  forVm(vmId: string): LeaseRecord[];
  /** Removes every lease of the VM; returns what it removed. Idempotent. */
  release(vmId: string): LeaseRecord[];
  ofInstance(instanceId: string): LeaseRecord[];
}

interface Row {
  network: string;
  family: number;
  address: string;
  instance_id: string;
  vm_id: string;
  created_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS net_leases (
  network     TEXT    NOT NULL,
  family      INTEGER NOT NULL CHECK (family IN (4, 6)),
  address     TEXT    NOT NULL,
  instance_id TEXT    NOT NULL,
  vm_id       TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (network, address),
  UNIQUE (vm_id, family)
);
CREATE INDEX IF NOT EXISTS net_leases_instance ON net_leases (instance_id);
-- Round-robin cursor: the last address handed out per network and family.
CREATE TABLE IF NOT EXISTS net_lease_cursor (
  network TEXT    NOT NULL,
  family  INTEGER NOT NULL,
  last    TEXT    NOT NULL,
  PRIMARY KEY (network, family)
);
`;

function toRecord(r: Row): LeaseRecord {
  // The CHECK constraint guarantees 4 or 6.
  return { network: r.network, family: r.family === 6 ? 6 : 4, address: r.address, instanceId: r.instance_id, vmId: r.vm_id, createdAt: r.created_at };
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_CONSTRAINT');
}

export function openLeaseStore(db: Db): LeaseStore {
  db.exec(SCHEMA);
  const byVmFamily = db.prepare<[string, number], Row>('SELECT * FROM net_leases WHERE vm_id = ? AND family = ?');
  const byVm = db.prepare<[string], Row>('SELECT * FROM net_leases WHERE vm_id = ? ORDER BY family');
  const byInstance = db.prepare<[string], Row>('SELECT * FROM net_leases WHERE instance_id = ? ORDER BY vm_id, family');
  const leasedIn = db.prepare<[string, number], { address: string }>('SELECT address FROM net_leases WHERE network = ? AND family = ?');
  const cursorOf = db.prepare<[string, number], { last: string }>('SELECT last FROM net_lease_cursor WHERE network = ? AND family = ?');
  const insert = db.prepare('INSERT INTO net_leases (network, family, address, instance_id, vm_id, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const moveCursor = db.prepare('INSERT INTO net_lease_cursor (network, family, last) VALUES (?, ?, ?) ON CONFLICT (network, family) DO UPDATE SET last = excluded.last');
  const removeVm = db.prepare('DELETE FROM net_leases WHERE vm_id = ?');

  const allocateOne = (req: { network: string; pool: AddressPool; instanceId: string; vmId: string; now: number; avoid?: ReadonlySet<string> }): LeaseRecord => {
    const { network, pool, instanceId, vmId, now } = req;
    const existing = byVmFamily.get(vmId, pool.family);
    if (existing) {
      if (existing.network === network) return toRecord(existing);
      throw new FlintError('FLINT_ERR_INTERNAL', `VM ${vmId} already holds an IPv${pool.family} lease on network ${existing.network}, not ${network}`);
    }
    const leased = new Set<bigint>();
    for (const { address } of leasedIn.all(network, pool.family)) {
      const a = parseAddress(address);
      if (a !== undefined) leased.add(a.value);
    }
    const taken = leased.size;
    let foreign = 0;
    for (const address of req.avoid ?? []) {
      const a = parseAddress(address);
      if (a === undefined || a.family !== pool.family || leased.has(a.value)) continue;
      leased.add(a.value);
      if (inPool(pool, a.value)) foreign++;
    }
    const cursorText = cursorOf.get(network, pool.family)?.last;
    const cursor = cursorText === undefined ? undefined : parseAddress(cursorText)?.value;
    const value = pickAddress(pool, leased, cursor);
    if (value === undefined) {
      throw new FlintError('FLINT_ERR_NET_POOL_EXHAUSTED', foreign === 0
        ? `network ${network}: all ${taken} IPv${pool.family} guest addresses are leased`
        : `network ${network}: every IPv${pool.family} guest address is leased (${taken}) or answered for by a device Flint did not start`, {
        details: { network, family: pool.family, leased: taken, inUseByOthers: foreign },
      });
    }
    const address = formatAddress(pool.family, value);
    insert.run(network, pool.family, address, instanceId, vmId, now);
    moveCursor.run(network, pool.family, address);
    return { network, family: pool.family, address, instanceId, vmId, createdAt: now };
  };
  const allocate = db.transaction(allocateOne);
  const allocateAll = db.transaction((req: AcquireAllRequest): LeaseRecord[] => req.pools.map((pool) => allocateOne({ ...req, pool })));

  /**
   * IMMEDIATE makes a constraint violation practically impossible; the retry
   * covers a writer that does not use it.
   */
  function withRetry<T>(network: string, vmId: string, fn: () => T): T {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        if (attempt >= 3) {
          throw new FlintError('FLINT_ERR_NET_LEASE_CONFLICT', `network ${network}: could not lease an address for ${vmId}`, { cause: err });
        }
      }
    }
  }

  return {
    acquire: (req) => withRetry(req.network, req.vmId, () => allocate.immediate(req)),
    acquireAll: (req) => withRetry(req.network, req.vmId, () => allocateAll.immediate(req)),
    forVm: (vmId) => byVm.all(vmId).map(toRecord),
    release: db.transaction((vmId: string) => {
      const rows = byVm.all(vmId).map(toRecord);
      removeVm.run(vmId);
      return rows;
    }),
    ofInstance: (instanceId) => byInstance.all(instanceId).map(toRecord),
  };
}
