import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runnerStatesContract } from '../../../test/contracts/runner-states.contract.ts';
import { openDatabase } from './db.ts';
import type { Db } from './db.ts';
import { createMemoryRunnerStates } from './memory-runner-states.ts';
import { createSqliteRunnerStates } from './runner-states.ts';

runnerStatesContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-runner-states-'));
  const dbs: Db[] = [openDatabase(dir)];
  const first = dbs[0];
  if (first === undefined) throw new Error('unreachable');
  return {
    store: createSqliteRunnerStates(first),
    reopen: () => {
      const db = openDatabase(dir);
      dbs.push(db);
      return createSqliteRunnerStates(db);
    },
    dispose: () => {
      for (const db of dbs) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runnerStatesContract('memory', () => ({ store: createMemoryRunnerStates(), dispose: () => undefined }));
