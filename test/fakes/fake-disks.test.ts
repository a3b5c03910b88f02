import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskProvisionerContract } from '../contracts/disk-provisioner.contract.ts';
import { FakeDisks } from './fake-disks.ts';

diskProvisionerContract('fake disks', async () => {
  const root = mkdtempSync(join(tmpdir(), 'flint-fake-disks-'));
  return { disks: new FakeDisks(), root, close: async () => rmSync(root, { recursive: true, force: true }) };
});
