/**
 * A DiskProvisioner that makes real (sparse, unformatted) files in the work
 * dir, so teardown's removal is observable on disk; no mkfs.
 */
import { openSync, closeSync, ftruncateSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiskProvisioner, VmDisks } from '../../src/daemon/vm/ports.ts';

export class FakeDisks implements DiskProvisioner {
  failPrepare = false;
  readonly configs = new Map<string, Readonly<Record<string, string>>>();

  async prepare(vmId: string, workDir: string, sizeBytes: number, config: Readonly<Record<string, string>>): Promise<VmDisks> {
    if (this.failPrepare) throw new Error('fake disks: no space left');
    const scratch = join(workDir, 'scratch.img');
    const fd = openSync(scratch, 'w', 0o600);
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
    const configPath = join(workDir, 'config.img');
    writeFileSync(configPath, JSON.stringify(config), { mode: 0o600 });
    this.configs.set(vmId, config);
    return { scratch, config: configPath };
  }

  async remove(_vmId: string, workDir: string): Promise<void> {
    rmSync(join(workDir, 'scratch.img'), { force: true });
    rmSync(join(workDir, 'config.img'), { force: true });
  }
}
