/**
 * A DiskProvisioner that makes real (sparse, unformatted) files in the work
 * dir, owned by the VM's uid/gid, so teardown's removal is observable on
 * disk; no mkfs. Held to test/contracts/disk-provisioner.contract.ts, as the
 * real provisioner is. Asynchronous
 * file calls, as the real provisioner's (a load test of the daemon must not
 * measure blocking calls the real adapter does not make).
 */
import { chown, open, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskProvisioner, VmDisks } from '../../src/daemon/vm/ports.ts';

export class FakeDisks implements DiskProvisioner {
  failPrepare = false;
  readonly configs = new Map<string, Readonly<Record<string, string>>>();

  async prepare(
    vmId: string, workDir: string, sizeBytes: number, config: Readonly<Record<string, string>>, owner: { uid: number; gid: number },
  ): Promise<VmDisks> {
    if (this.failPrepare) throw new Error('fake disks: no space left');
    const scratch = join(workDir, 'scratch.img');
    const file = await open(scratch, 'w', 0o600);
    try {
      await file.truncate(sizeBytes);
    } finally {
      await file.close();
    }
    const configPath = join(workDir, 'config.img');
    await writeFile(configPath, JSON.stringify(config), { mode: 0o600 });
    // Only root may give a file away; as anyone else the owner is ourselves (nothing to do).
    if (owner.uid !== process.getuid?.() || owner.gid !== process.getgid?.()) {
      await chown(scratch, owner.uid, owner.gid);
      await chown(configPath, owner.uid, owner.gid);
    }
    this.configs.set(vmId, config);
    return { scratch, config: configPath };
  }

  async remove(_vmId: string, workDir: string): Promise<void> {
    await unlinkIfThere(join(workDir, 'scratch.img'));
    await unlinkIfThere(join(workDir, 'config.img'));
  }
}

async function unlinkIfThere(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!(typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT')) throw err;
  }
}
