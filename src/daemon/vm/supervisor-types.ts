/**
 * The VM supervisor's vocabulary: what it needs (SupervisorDeps, its
 * config and tuning), what callers get back (VmHandle, VmOutcome, VmInfo,
 * SweepReport). Apart from supervisor.ts so that its parts (managed-vm.ts,
 * adoption.ts) share it without importing the facade; supervisor.ts
 * re-exports all of it.
 */
import type { HypervisorKind, NetworkConfig } from '../../config/types.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import type { ConsoleMarker } from '../../core/guest-contract.ts';
import type { VmState } from '../../core/vm-state.ts';
import type { HostProcesses } from './host-processes.ts';
import type { LoopTimers } from '../loop.ts';
import type { DiskProvisioner, HostNetwork, HypervisorDriver, VmFiles } from './ports.ts';
import type { VmRecord, VmStore } from './vm-store.ts';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The subset of pino's logger the supervisor uses (pino's Logger satisfies it). */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface VmIdSource {
  next(): Promise<string>;
}

export interface SupervisorConfig {
  readonly stateDir: string;
  readonly instanceId: string;
  readonly networks: readonly NetworkConfig[];
  /** No "booted" marker within this long after the VMM started → stop, failed. */
  readonly bootTimeoutMs: number;
  /** Added to a runner's job timeout to get the VM's maximum lifetime. */
  readonly lifetimeMarginMs: number;
  /** How long a stopping guest gets to power off before the VMM is killed. */
  readonly stopGraceMs: number;
  /** Cap of one console log (first half + last half are kept). */
  readonly consoleLogMaxBytes: number;
  /** How long console logs are kept after their VM ended. */
  readonly consoleRetentionMs: number;
  /** Interval of the "console-retention" loop. */
  readonly consoleRetentionIntervalMs: number;
}

export const DEFAULT_SUPERVISOR_TUNING = {
  bootTimeoutMs: 120_000,
  lifetimeMarginMs: 10 * 60_000,
  stopGraceMs: 10_000,
  consoleLogMaxBytes: 8 * 1024 * 1024,
  consoleRetentionMs: 24 * 3600_000,
  consoleRetentionIntervalMs: 15 * 60_000,
} as const;

export interface SupervisorDeps {
  readonly drivers: Partial<Record<HypervisorKind, HypervisorDriver>>;
  readonly network: HostNetwork;
  readonly disks: DiskProvisioner;
  readonly store: VmStore;
  readonly clock: Clock;
  readonly ids: VmIdSource;
  readonly logger: Logger;
  /** Finds, signals and tells apart host processes (the kill backstop, the sweep, record owners). */
  readonly processes: HostProcesses;
  /** Work dirs, console logs. */
  readonly files: VmFiles;
  /** Boot timeout, lifetime, kill backstop, the sweep's waits; default: daemon/loop.ts keepAliveTimers. */
  readonly timers?: LoopTimers;
  readonly config: SupervisorConfig;
}

/** What the guest gets on its config drive; a function receives the VM id first (to register a runner under its name). */
export type GuestEnv = Readonly<Record<string, string>> | ((vmId: string) => Promise<Readonly<Record<string, string>>>);

export interface LaunchOptions {
  /** Overrides the maximum lifetime (job timeout + margin); null = none (interactive mode). */
  readonly maxLifetimeMs?: number | null;
  readonly bootTimeoutMs?: number;
}

export interface VmOutcome {
  readonly record: VmRecord;
  /** Set when the VM failed for a reason with a catalogue code. */
  readonly code?: ErrorCode;
}

export interface VmHandle {
  readonly id: string;
  readonly runner: string;
  readonly state: VmState;
  /** When the guest reported its runner started (epoch ms), if it did; an adopted VM may have before this process saw it. */
  readonly runnerStartedAt?: number | null;
  /** Settles (never rejects) when the VM is in a terminal state, after teardown. */
  readonly ended: Promise<VmOutcome>;
  onConsole(listener: (chunk: Buffer) => void): () => void;
  onMarker(listener: (marker: ConsoleMarker, atMs: number) => void): () => void;
  onState(listener: (state: VmState) => void): () => void;
  /** Keystrokes for the serial console; dropped before the VMM runs. */
  writeConsole(data: Buffer | string): void;
  /** Stops the VM (a normal stop: ends `stopped` unless something else failed first). */
  stop(reason?: string): Promise<VmOutcome>;
}

/** A live VM as the status surfaces show it: its record's figures and its guest address. */
export interface VmInfo {
  readonly id: string;
  readonly runner: string;
  readonly state: VmState;
  /** The guest's IPv4 address once its lease is made. */
  readonly address: string | undefined;
  readonly createdAt: number;
  readonly prepareMs: number | null;
  readonly startedAt: number | null;
  readonly bootedAt: number | null;
  readonly runnerStartedAt: number | null;
}

export interface SweepReport {
  /** Records of a previous run that were marked failed. */
  readonly vms: string[];
  /** Leftover VMM processes killed. */
  readonly killed: number[];
  /** What network sweep removed (taps, leases). */
  readonly network: string[];
  /** Work directories removed that had no unfinished record. */
  readonly strayDirs: string[];
  /** Unfinished VMs left alone because their owning Flint process is alive. */
  readonly others: string[];
}

export interface StopRequest {
  readonly reason: string;
  readonly failure: boolean;
  readonly code?: ErrorCode;
}

export const VMS_DIR = 'vms';
