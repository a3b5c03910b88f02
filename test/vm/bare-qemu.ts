/**
 * The bare QEMU command the vm-start benchmark compares Flint against: the
 * machine the QEMU driver would boot for `spec` (same qemuArgs, same
 * accelerator choice, same TSC hint), started directly — no supervisor, no
 * preparation, no QMP handshake wait.
 */
import { join } from 'node:path';
import type { VmSpec } from '../../src/daemon/vm/ports.ts';
import { qemuArgs } from '../../src/adapters/hypervisor/qemu-args.ts';
import type { QemuCommand } from '../../src/adapters/hypervisor/qemu-args.ts';
import { hostTscKhz, probeKvm } from '../../src/adapters/hypervisor/qemu-host.ts';

export async function bareQemuCommand(spec: VmSpec): Promise<QemuCommand> {
  const accel = (await probeKvm(spec.kernel)).ok ? 'kvm' : 'tcg';
  const tscKhz = await hostTscKhz();
  return qemuArgs(spec, { accel, qmpSocket: join(spec.workDir, 'bare.qmp'), ...(tscKhz === undefined ? {} : { tscKhz }) });
}
