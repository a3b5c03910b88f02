import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmFilesContract } from '../../../test/contracts/vm-files.contract.ts';
import { NodeVmFiles } from './node-vm-files.ts';

vmFilesContract('local VM files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'flint-files-'));
  // Modes in the contract are exact: no umask between the port and the disk.
  const umask = process.umask(0);
  return {
    files: new NodeVmFiles(),
    root,
    read: (p) => (existsSync(p) ? readFileSync(p) : undefined),
    modeOf: (p) => (existsSync(p) ? statSync(p).mode & 0o777 : undefined),
    touch: (p, ms) => utimesSync(p, ms / 1000, ms / 1000),
    close: async () => {
      process.umask(umask);
      rmSync(root, { recursive: true, force: true });
    },
  };
});
