/**
 * A DiskProvisioner for InstantDriver's VMs, which never read a disk: it
 * names the two disks' paths in the work dir and makes no file. For load on
 * the daemon's control plane (bench/burst.ts, bench/fleet.ts), where the
 * ten file calls per VM of FakeDisks (create, size, chown and remove two
 * files through libuv's thread pool) would measure ext4 and the thread pool,
 * not Flint. What a real VM's disks cost is measured on its own by
 * bench/scratch-disk.ts. Not held to the disk-provisioner contract (that
 * contract is about the files); tests that look at disks use FakeDisks.
 */
import { join } from 'node:path';
import type { DiskProvisioner, VmDisks } from '../../src/daemon/vm/ports.ts';

export class InstantDisks implements DiskProvisioner {
  /** VMs whose disks were prepared and not yet removed. */
  readonly prepared = new Set<string>();

  async prepare(vmId: string, workDir: string): Promise<VmDisks> {
    this.prepared.add(vmId);
    return { scratch: join(workDir, 'scratch.img'), config: join(workDir, 'config.img') };
  }

  async remove(vmId: string): Promise<void> {
    this.prepared.delete(vmId);
  }
}
