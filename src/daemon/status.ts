/**
 * The status snapshot: what the operator sees of a running Flint, built in
 * one place for every surface (`flint status` and its siblings over the
 * admin socket; the status page later). Pure: the caller gathers the
 * inputs (scheduler, supervisor, records, loops) and the time; this turns
 * them into plain JSON-able data.
 *
 * No secrets: nothing here carries a JIT config, a token, a key or a guest
 * environment — the inputs are counts, timings, names and addresses only,
 * and each view below copies named fields, never whole objects.
 */
import type { HealthState } from '../core/launch-health.ts';
import type { HostBudget } from '../core/capacity.ts';
import type { VmState } from '../core/vm-state.ts';
import type { LoopStatus } from './loop.ts';
import type { FleetHostRecord, FleetLease } from './ports/fleet.ts';
import type { JobRecord } from './ports/store.ts';
import type { DefinitionHealthView, PausedView, RunnerPhase } from './scheduler.ts';
import type { VmInfo } from './vm/supervisor.ts';

/** The definitions' settings the snapshot shows. */
export interface DefinitionSettings {
  readonly name: string;
  readonly labels: readonly string[];
  readonly maxRunners: number;
  readonly minIdle: number;
  readonly cpuCount: number;
  readonly memorySize: number;
}

export interface StatusInputs {
  /** Epoch ms the snapshot is taken at. */
  readonly now: number;
  readonly instanceId: string;
  /** Flint is shutting down (SIGTERM drain). */
  readonly shuttingDown: boolean;
  readonly paused: PausedView;
  readonly definitions: readonly DefinitionSettings[];
  /** Queued jobs per definition (from the store). */
  readonly queued: ReadonlyMap<string, number>;
  /** The scheduler's runners per definition and phase. */
  readonly runners: Readonly<Record<string, Readonly<Record<RunnerPhase, number>>>>;
  readonly health: Readonly<Record<string, DefinitionHealthView>>;
  readonly vms: readonly VmInfo[];
  /** The runner phase of each VM the scheduler started. */
  readonly runnerPhases: ReadonlyMap<string, RunnerPhase>;
  /** Recent job records (any order). */
  readonly jobs: readonly JobRecord[];
  readonly loops: readonly LoopStatus[];
  /** What this host may hand to VMs, and what is still free. */
  readonly capacity: { readonly limit: HostBudget; readonly free: HostBudget };
  /** The fleet as the store has it when the snapshot is taken; absent on SQLite (this host is the whole fleet). */
  readonly fleet?: FleetInputs;
}

/** A host's row; `lostAt` is shown when the store records that the host was declared lost. */
export type FleetHostInput = FleetHostRecord & { readonly lostAt?: number | null };

export interface FleetInputs {
  readonly hosts: readonly FleetHostInput[];
  /** The `singletons` lease as recorded (possibly expired). */
  readonly lease: FleetLease | undefined;
  /** Unexpired claims on queued jobs by host; absent when no work claims are wired. */
  readonly claims?: ReadonlyMap<string, number>;
  /** The heartbeat interval: a heartbeat older than two of them is `late`. */
  readonly heartbeatMs: number;
  /** A heartbeat older than this is `lost`. */
  readonly lostAfterMs: number;
}

/**
 * up: heartbeat within two intervals; late: older (one missed beat is a
 * slow database, two a host in trouble); lost: older than the host-lost
 * timeout, or declared lost in the store.
 */
export type FleetHostState = 'up' | 'late' | 'lost';

export interface FleetHostView {
  readonly id: string;
  readonly address: string | null;
  readonly capacity: { readonly vcpus: number; readonly memoryMib: number };
  readonly vms: number;
  readonly firstSeenAt: number;
  readonly lastHeartbeatAt: number;
  readonly heartbeatAgeMs: number;
  readonly state: FleetHostState;
  /** When the store declared it lost; null when it has not. */
  readonly lostAt: number | null;
  /** This is the host answering. */
  readonly self: boolean;
  /** It holds the unexpired `singletons` lease. */
  readonly leader: boolean;
  /** Unexpired claims on queued jobs it holds; null when work claims are not wired. */
  readonly claims: number | null;
  /**
   * Runners it could still take per definition (its starting and idle ones
   * plus what it could start now), as it published with its last heartbeat;
   * null when it publishes none. The fleet's scale-set offer is their sum.
   */
  readonly room: Readonly<Record<string, number>> | null;
}

export interface FleetView {
  /** The holder of the unexpired lease; null between leaders. */
  readonly leader: string | null;
  readonly leaseExpiresAt: number | null;
  readonly heartbeatMs: number;
  readonly lostAfterMs: number;
  /** By id. */
  readonly hosts: readonly FleetHostView[];
}

export type DefinitionState = 'active' | 'paused' | 'backing-off' | 'unhealthy';

export interface DefinitionStatus {
  readonly name: string;
  readonly labels: readonly string[];
  readonly state: DefinitionState;
  readonly queued: number;
  readonly runners: Readonly<Record<RunnerPhase, number>>;
  readonly maxRunners: number;
  readonly minIdle: number;
  readonly health: {
    readonly state: HealthState;
    readonly consecutiveFailures: number;
    readonly lastError: { readonly code: string; readonly message: string; readonly hint: string; readonly at: number } | null;
    readonly nextAttemptAt: number | null;
  };
}

export interface VmStatus {
  readonly id: string;
  readonly definition: string;
  readonly state: VmState;
  /** The runner inside, as the scheduler sees it; null for a VM it did not start (`flint run`). */
  readonly runner: RunnerPhase | null;
  readonly address: string | null;
  readonly ageMs: number;
  /** The job its runner is running, when the records know it. */
  readonly job: { readonly id: number; readonly repository: string; readonly name: string } | null;
  readonly timings: { readonly prepareMs: number | null; readonly bootMs: number | null; readonly runnerStartMs: number | null };
}

export interface JobStatusView {
  readonly id: number;
  readonly repository: string;
  readonly name: string;
  readonly definition: string;
  readonly status: JobRecord['status'];
  readonly conclusion: JobRecord['conclusion'];
  readonly runnerName: string | null;
  readonly vmId: string | null;
  readonly queuedAt: number | null;
  /** Queued until a runner took it. */
  readonly waitMs: number | null;
  /** Started until finished. */
  readonly runMs: number | null;
  readonly at: JobRecord['at'];
}

export interface LoopView {
  readonly name: string;
  readonly intervalMs: number;
  readonly running: boolean;
  readonly runs: number;
  readonly failures: number;
  readonly lastRunAt: number | null;
  readonly nextRunAt: number | null;
  readonly lastError: { readonly code: string; readonly message: string; readonly at: number } | null;
  /** False when the last pass failed, or the next pass is more than three intervals overdue. */
  readonly healthy: boolean;
}

export interface StatusSnapshot {
  readonly at: number;
  readonly instanceId: string;
  readonly host: {
    readonly state: 'running' | 'paused' | 'shutting-down';
    readonly capacity: StatusInputs['capacity'];
  };
  readonly definitions: readonly DefinitionStatus[];
  readonly vms: readonly VmStatus[];
  readonly jobs: readonly JobStatusView[];
  readonly loops: readonly LoopView[];
  /** Every host of the fleet (PostgreSQL store); null on SQLite, where this host is the whole fleet. */
  readonly fleet: FleetView | null;
}

function diff(from: number | null | undefined, to: number | null | undefined): number | null {
  return from == null || to == null ? null : Math.max(0, to - from);
}

export function jobView(r: JobRecord): JobStatusView {
  return {
    id: r.jobId, repository: r.repository, name: r.name, definition: r.definition, status: r.status, conclusion: r.conclusion,
    runnerName: r.runnerName, vmId: r.vmId, queuedAt: r.at.queued,
    waitMs: diff(r.at.queued, r.at.jobStarted), runMs: diff(r.at.jobStarted, r.at.finished), at: { ...r.at },
  };
}

/** Newest first (by when first seen), optionally only those first seen at or after `since`. */
export function jobViews(records: readonly JobRecord[], since?: number): JobStatusView[] {
  return records
    .filter((r) => since === undefined || (r.at.queued ?? 0) >= since)
    .map(jobView)
    .sort((a, b) => (b.queuedAt ?? 0) - (a.queuedAt ?? 0) || b.id - a.id);
}

export function vmViews(inputs: Pick<StatusInputs, 'now' | 'vms' | 'runnerPhases' | 'jobs'>): VmStatus[] {
  // The job a VM's runner runs (or ran last): runners are not bound to jobs, the records say which took which.
  const jobOf = new Map<string, JobRecord>();
  for (const r of inputs.jobs) {
    if (r.vmId === null) continue;
    const prev = jobOf.get(r.vmId);
    if (prev === undefined || (r.status === 'in_progress' && prev.status !== 'in_progress')) jobOf.set(r.vmId, r);
  }
  return [...inputs.vms]
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    .map((vm) => {
      const job = jobOf.get(vm.id);
      return {
        id: vm.id, definition: vm.runner, state: vm.state, runner: inputs.runnerPhases.get(vm.id) ?? null,
        address: vm.address ?? null, ageMs: Math.max(0, inputs.now - vm.createdAt),
        job: job === undefined ? null : { id: job.jobId, repository: job.repository, name: job.name },
        timings: { prepareMs: vm.prepareMs, bootMs: diff(vm.startedAt, vm.bootedAt), runnerStartMs: diff(vm.bootedAt, vm.runnerStartedAt) },
      };
    });
}

function loopView(l: LoopStatus, now: number): LoopView {
  const overdue = !l.running && l.nextRunAt !== undefined && now - l.nextRunAt > 3 * l.intervalMs;
  return {
    name: l.name, intervalMs: l.intervalMs, running: l.running, runs: l.runs, failures: l.failures,
    lastRunAt: l.lastRunAt ?? null, nextRunAt: l.nextRunAt ?? null,
    lastError: l.lastError === undefined ? null : { code: l.lastError.code, message: l.lastError.message, at: l.lastError.at },
    // The error is kept after later good passes: it is the last pass's only when no pass started after it.
    healthy: !overdue && (l.lastError === undefined || (l.lastStartAt !== undefined && l.lastError.at < l.lastStartAt)),
  };
}

export function fleetView(f: FleetInputs, now: number, self: string): FleetView {
  const lease = f.lease !== undefined && f.lease.expiresAt > now ? f.lease : undefined;
  const hosts = [...f.hosts].sort((a, b) => a.id.localeCompare(b.id)).map((h): FleetHostView => {
    const ageMs = Math.max(0, now - h.lastHeartbeatAt);
    const lostAt = h.lostAt ?? null;
    const state: FleetHostState = lostAt !== null || ageMs > f.lostAfterMs ? 'lost' : ageMs > 2 * f.heartbeatMs ? 'late' : 'up';
    return {
      id: h.id, address: h.address ?? null, capacity: { vcpus: h.capacity.vcpus, memoryMib: h.capacity.memoryMib }, vms: h.vms,
      firstSeenAt: h.firstSeenAt, lastHeartbeatAt: h.lastHeartbeatAt, heartbeatAgeMs: ageMs, state, lostAt,
      self: h.id === self, leader: lease?.holder === h.id,
      claims: f.claims === undefined ? null : f.claims.get(h.id) ?? 0,
      room: h.canHold === undefined ? null : { ...h.canHold },
    };
  });
  return { leader: lease?.holder ?? null, leaseExpiresAt: lease?.expiresAt ?? null, heartbeatMs: f.heartbeatMs, lostAfterMs: f.lostAfterMs, hosts };
}

export function buildStatus(inputs: StatusInputs): StatusSnapshot {
  const { now, paused } = inputs;
  const pausedNames = new Set(paused.definitions);
  const definitions = inputs.definitions.map((d): DefinitionStatus => {
    const h = inputs.health[d.name];
    const hState: HealthState = h?.state ?? 'healthy';
    const state: DefinitionState = paused.host || pausedNames.has(d.name) ? 'paused' : hState === 'healthy' ? 'active' : hState;
    const err = h?.lastError;
    return {
      name: d.name, labels: [...d.labels], state, queued: inputs.queued.get(d.name) ?? 0,
      runners: { starting: 0, idle: 0, busy: 0, ending: 0, ...inputs.runners[d.name] },
      maxRunners: d.maxRunners, minIdle: d.minIdle,
      health: {
        state: hState, consecutiveFailures: h?.consecutiveFailures ?? 0,
        lastError: err === undefined ? null : { code: err.code, message: err.message, hint: err.hint, at: err.at },
        nextAttemptAt: h?.nextAttemptAt ?? null,
      },
    };
  });
  return {
    at: now,
    instanceId: inputs.instanceId,
    host: { state: inputs.shuttingDown ? 'shutting-down' : paused.host ? 'paused' : 'running', capacity: inputs.capacity },
    definitions,
    vms: vmViews(inputs),
    jobs: jobViews(inputs.jobs),
    loops: inputs.loops.map((l) => loopView(l, now)),
    fleet: inputs.fleet === undefined ? null : fleetView(inputs.fleet, now, inputs.instanceId),
  };
}
