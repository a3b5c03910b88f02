/**
 * What a VM is made of, decided from its runner definition and what the
 * host side made for it: the settings on its config drive, the kernel
 * command line (the guest contract's network part included) and the
 * VmSpec a hypervisor driver boots. Pure: no I/O, no clock.
 */
import type { RunnerConfig } from '../../config/types.ts';
import { networkKernelArgs } from '../../core/guest-contract.ts';
import { runnerName } from '../../core/ids.ts';
import type { NetworkLease, VmDisks, VmSpec } from './ports.ts';

/** The kernel arguments every VM gets, before the network and the runner's own. */
export const BASE_KERNEL_ARGS = 'console=ttyS0 reboot=k panic=1';

/**
 * The config drive's settings: the runner name and job timeout Flint sets,
 * then the caller's environment, last so that it can override them.
 */
export function guestSettings(vmId: string, runner: RunnerConfig, env: Readonly<Record<string, string>>): Record<string, string> {
  return {
    FLINT_RUNNER_NAME: runnerName(vmId),
    FLINT_JOB_TIMEOUT: String(runner.jobTimeoutSeconds),
    ...env,
  };
}

/** Base arguments, the guest's network, then the runner's extra arguments; empty parts dropped. */
export function kernelCommandLine(lease: NetworkLease, runner: RunnerConfig): string {
  return [BASE_KERNEL_ARGS, networkKernelArgs(lease.guest), runner.kernelArgs]
    .map((s) => s.trim()).filter((s) => s.length > 0).join(' ');
}

/** The VmSpec of one VM: drives in the guest contract's order, its tap, and the Firecracker binaries when that is its driver. */
export function buildVmSpec(vmId: string, workDir: string, runner: RunnerConfig, disks: VmDisks, lease: NetworkLease): VmSpec {
  return {
    id: vmId, vcpus: runner.cpuCount, memoryMib: runner.memorySize, smt: runner.smt, kernel: runner.kernel,
    ...(runner.initrd === undefined ? {} : { initrd: runner.initrd }),
    kernelArgs: kernelCommandLine(lease, runner),
    drives: { rootfs: runner.filesystem, scratch: disks.scratch, config: disks.config },
    net: { tap: lease.tap, mac: lease.mac },
    workDir, uid: runner.uid, gid: runner.gid,
    ...(runner.pidsMax === undefined ? {} : { pidsMax: runner.pidsMax }),
    ...(runner.rateLimits === undefined ? {} : { rateLimits: runner.rateLimits }),
    ...(runner.hypervisor === 'firecracker' ? { firecracker: { jailer: runner.jailer, binary: runner.firecracker } } : {}),
  };
}
