import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scaleSetStateContract } from '../../../test/contracts/scaleset-state.contract.ts';
import { openDatabase } from './db.ts';
import type { Db } from './db.ts';
import { createMemoryScaleSetState } from './memory-scaleset-state.ts';
import { createSqliteScaleSetState } from './scaleset-state.ts';

scaleSetStateContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-scaleset-state-'));
  const dbs: Db[] = [openDatabase(dir)];
  const first = dbs[0];
  if (first === undefined) throw new Error('unreachable');
  return {
    store: createSqliteScaleSetState(first),
    reopen: () => {
      const db = openDatabase(dir);
      dbs.push(db);
      return createSqliteScaleSetState(db);
    },
    dispose: () => {
      for (const db of dbs) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

scaleSetStateContract('memory', () => ({ store: createMemoryScaleSetState(), dispose: () => undefined }));
