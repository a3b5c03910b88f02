import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleetContract } from '../../../test/contracts/fleet.contract.ts';
import { openDatabase } from './db.ts';
import type { Db } from './db.ts';
import { createSqliteFleet } from './fleet.ts';
import { createMemoryFleet } from './memory-fleet.ts';
import { createMemoryRunnerStates } from './memory-runner-states.ts';
import { createSqliteRunnerStates } from './runner-states.ts';
import { SqliteVmStore } from './vms.ts';
import { MemoryVmStore } from '../../../test/fakes/memory-vm-store.ts';

// Two connections on one file: two processes of the same host.
fleetContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-fleet-'));
  const first = openDatabase(dir);
  const dbs: Db[] = [first];
  return {
    store: createSqliteFleet(first),
    records: { vms: new SqliteVmStore(first), runnerStates: createSqliteRunnerStates(first) },
    other: () => {
      const db = openDatabase(dir);
      dbs.push(db);
      return createSqliteFleet(db);
    },
    dispose: () => {
      for (const db of dbs) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

fleetContract('memory', () => {
  const records = { vms: new MemoryVmStore(), runnerStates: createMemoryRunnerStates() };
  const store = createMemoryFleet(records);
  return { store, records, other: () => store, dispose: () => undefined };
});
