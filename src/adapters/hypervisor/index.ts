/**
 * Driver selection: one HypervisorDriver per kind, built once, and the one
 * a runner definition asks for (`hypervisor: firecracker | qemu`).
 *
 * Building a driver spawns nothing; a driver touches the host only when it
 * starts or cleans up a VM.
 */
import { join } from 'node:path';
import type { HypervisorKind, RunnerConfig } from '../../config/types.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { HypervisorDriver } from '../../daemon/vm/ports.ts';
import type { Logger } from '../../daemon/vm/supervisor.ts';
import { createFirecrackerDriver } from './firecracker.ts';
import { createQemuDriver } from './qemu.ts';

export type Drivers = Readonly<Record<HypervisorKind, HypervisorDriver>>;

export interface DriverOptions {
  readonly stateDir: string;
  readonly logger: Logger;
}

/** The jailer's `--chroot-base-dir`: inside the state dir, so per-VM files can be hard-linked into jails. */
export function jailBaseDir(stateDir: string): string {
  return join(stateDir, 'jail');
}

export function createDrivers(opts: DriverOptions): Drivers {
  return {
    firecracker: createFirecrackerDriver({ chrootBaseDir: jailBaseDir(opts.stateDir), logger: opts.logger }),
    qemu: createQemuDriver({ logger: opts.logger }),
  };
}

/** The driver of a runner definition; a kind without a driver is a clear error. */
export function driverFor(drivers: Partial<Record<HypervisorKind, HypervisorDriver>>, runner: Pick<RunnerConfig, 'name' | 'hypervisor'>): HypervisorDriver {
  const d = drivers[runner.hypervisor];
  if (d === undefined) {
    throw new FlintError('FLINT_ERR_VM_START_FAILED', `runner "${runner.name}" asks for hypervisor "${runner.hypervisor}", which this Flint cannot run`, {
      hint: 'Set the runner\'s `hypervisor` to `firecracker` or `qemu`.',
    });
  }
  return d;
}
