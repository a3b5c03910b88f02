/**
 * A supervisor wired to fakes (real child processes as "VMMs", an in-memory
 * network, sparse files as disks) in a temp state dir. `close()` shuts the
 * supervisor down and removes the dir; tests register it with t.after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkConfig, RunnerConfig } from '../../src/config/types.ts';
import { NodeVmFiles } from '../../src/adapters/host/node-vm-files.ts';
import { ProcHostProcesses } from '../../src/adapters/host/proc-host-processes.ts';
import type { HostProcesses } from '../../src/daemon/vm/host-processes.ts';
import { DEFAULT_SUPERVISOR_TUNING, persistedVmIds, VmSupervisor } from '../../src/daemon/vm/supervisor.ts';
import type { Logger, SupervisorConfig } from '../../src/daemon/vm/supervisor.ts';
import type { VmStore } from '../../src/daemon/vm/vm-store.ts';
import { FakeDisks } from './fake-disks.ts';
import { FakeDriver } from './fake-driver.ts';
import type { FakeGuestScript } from './fake-driver.ts';
import { FakeNetwork } from './fake-network.ts';
import { MemoryVmStore } from './memory-vm-store.ts';

export interface LogLine { readonly level: string; readonly obj: object; readonly msg: string }

export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];
  debug(obj: object, msg: string): void { this.lines.push({ level: 'debug', obj, msg }); }
  info(obj: object, msg: string): void { this.lines.push({ level: 'info', obj, msg }); }
  warn(obj: object, msg: string): void { this.lines.push({ level: 'warn', obj, msg }); }
  error(obj: object, msg: string): void { this.lines.push({ level: 'error', obj, msg }); }
  text(): string { return this.lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`).join('\n'); }
}

export const testNetwork: NetworkConfig = {
  name: 'flbr0', v4: { address: '10.213.0.1', prefixLength: 24 }, create: true, dns: ['10.213.0.1'],
};

export function testRunner(overrides: Partial<RunnerConfig> = {}): RunnerConfig {
  return {
    name: 'default', group: 'Default', labels: ['self-hosted', 'linux'], kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.img',
    jailer: '/usr/bin/jailer', firecracker: '/usr/bin/firecracker', hypervisor: 'qemu', network: testNetwork.name,
    cpuCount: 1, memorySize: 256, smt: false, diskSize: 64 * 1024 * 1024, maxRunners: 4, minIdle: 0, jobTimeoutSeconds: 3600,
    kernelArgs: 'quiet', uid: 0, gid: 0, static: false, ...overrides,
  };
}

export interface Rig {
  readonly supervisor: VmSupervisor;
  readonly store: VmStore;
  readonly driver: FakeDriver;
  readonly network: FakeNetwork;
  readonly disks: FakeDisks;
  readonly logger: MemoryLogger;
  readonly stateDir: string;
  readonly config: SupervisorConfig;
  close(): Promise<void>;
}

export function makeRig(script: FakeGuestScript, options: {
  instanceId?: string; stateDir?: string; store?: VmStore; network?: FakeNetwork; config?: Partial<SupervisorConfig>; processes?: HostProcesses;
} = {}): Rig {
  const instanceId = options.instanceId ?? 't1';
  const ownDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'flint-sup-'));
  const store = options.store ?? new MemoryVmStore();
  const driver = new FakeDriver(script);
  const network = options.network ?? new FakeNetwork(instanceId);
  const disks = new FakeDisks();
  const logger = new MemoryLogger();
  const config: SupervisorConfig = {
    ...DEFAULT_SUPERVISOR_TUNING, stateDir, instanceId, networks: [testNetwork], bootTimeoutMs: 5000, stopGraceMs: 500, ...options.config,
  };
  const supervisor = new VmSupervisor({
    drivers: { qemu: driver }, network, disks, store, clock: { now: () => Date.now() }, ids: persistedVmIds(store, instanceId), logger,
    processes: options.processes ?? new ProcHostProcesses(), files: new NodeVmFiles(), config,
  });
  return {
    supervisor, store, driver, network, disks, logger, stateDir, config,
    async close() {
      await supervisor.shutdown('test over');
      if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
