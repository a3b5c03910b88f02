/** The disk provisioner on this host (mkfs.ext4, the template cache) against the DiskProvisioner contract. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskProvisionerContract } from '../../../test/contracts/disk-provisioner.contract.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { createDiskProvisioner } from './provisioner.ts';

for (const strategy of ['clone', 'mkfs'] as const) {
  diskProvisionerContract(`local disks (${strategy})`, async (t) => {
    if (!requirePrereqs(t, root, program('mkfs.ext4'))) return undefined;
    const dir = mkdtempSync(join(tmpdir(), 'flint-disks-contract-'));
    return { disks: createDiskProvisioner({ stateDir: dir, strategy }), root: dir, close: async () => rmSync(dir, { recursive: true, force: true }) };
  });
}
