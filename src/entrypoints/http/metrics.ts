/**
 * Flint's Prometheus metrics (`GET /metrics`), every one on this module's
 * own registry (never prom-client's global one), named `flint_…` with its
 * unit in the name. Two kinds:
 *
 *   - read at scrape time from the running state (jobs on record by state,
 *     runners and VMs by phase, host capacity, loop runs, definition
 *     health): `collectFrom` is given the functions that read them, so a
 *     scrape shows what is, never a copy that could drift;
 *   - counted on events (webhook deliveries, GitHub attempts, JIT
 *     registrations, VM prepare and boot times, queued → running latency):
 *     the observer ports of daemon/ports/observer.ts and the methods below,
 *     called by the composition root.
 *
 * docs/operations.md, "Monitoring", lists every metric; keep it in step.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LoopStatus } from '../../daemon/loop.ts';
import type { DeliveryObserver, DeliveryResult, GitHubAnswer, GitHubObserver } from '../../daemon/ports/observer.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { JOB_ACTIONS } from '../../core/jobs.ts';

/** What the scrape-time metrics read; each part is optional (`--webhooks-only` has no VMs). */
export interface MetricsSources {
  readonly loops: () => readonly LoopStatus[];
  /** Jobs on record with one status, per runner definition (IntakeStore.countJobsByDefinition). */
  readonly jobs?: (status: JobStatus) => Promise<ReadonlyMap<string, number>>;
  /** Runners per definition and phase (Scheduler.snapshot). */
  readonly runners?: () => Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Live VMs (VmSupervisor.list). */
  readonly vms?: () => readonly { readonly runner: string; readonly state: string }[];
  /** Launch health per definition (Scheduler.health). */
  readonly definitions?: () => Readonly<Record<string, { readonly state: string; readonly consecutiveFailures: number }>>;
  /** The host's limits for VMs and what live VMs hold. */
  readonly capacity?: () => HostCapacity;
  /** The fleet's hosts as the store has them now (PostgreSQL store only). */
  readonly fleet?: () => Promise<FleetMetrics>;
  /** Claim hand-overs since start, by result (PostgreSQL store only: PostgresIntakeStore.claimHandOvers). */
  readonly claimHandOvers?: () => Readonly<Record<string, number>>;
}

export interface FleetMetrics {
  /** Hosts on record by state (up, late, lost). */
  readonly hosts: Readonly<Record<string, number>>;
  /** This host holds the fleet's lease. */
  readonly leader: boolean;
}

const FLEET_STATES = ['up', 'late', 'lost'] as const;

export interface HostCapacity {
  readonly vcpus: number;
  readonly vcpusUsed: number;
  readonly memoryBytes: number;
  readonly memoryUsedBytes: number;
}

/** Seconds: VM preparation is tens of ms with fakes, seconds with mkfs; boots are seconds. */
const VM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
/** Seconds from queued to a job running: a warm runner takes it at once, a cold start takes a boot or more. */
const LATENCY_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];
const HEALTH_STATES = ['healthy', 'backing-off', 'unhealthy'] as const;

export interface FlintMetrics {
  readonly registry: Registry;
  /** Counts deliveries by result (server.ts). */
  readonly deliveries: DeliveryObserver;
  /** Counts GitHub attempts by outcome and keeps the rate-limit remaining (octokit.ts). */
  readonly github: GitHubObserver;
  /** A job went from queued to in_progress, after this long. */
  jobStarted(definition: string, seconds: number): void;
  vmPrepared(definition: string, seconds: number): void;
  vmBooted(definition: string, seconds: number): void;
  /** A VM reached a terminal state. */
  vmEnded(definition: string, state: string): void;
  /** A JIT runner registration was asked for; `ok` or the error code. */
  jitRegistration(definition: string, outcome: string): void;
  /** Registers the scrape-time metrics on these sources (once). */
  collectFrom(sources: MetricsSources): void;
  /** The exposition for `GET /metrics`. */
  scrape(): Promise<{ readonly contentType: string; readonly body: string }>;
}

export function createMetrics(options: { readonly processMetrics?: boolean } = {}): FlintMetrics {
  const registry = new Registry();
  const registers = [registry];
  // process_* and nodejs_* (memory, CPU, event-loop lag, open descriptors): conventional names, no prefix.
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const deliveries = new Counter({
    name: 'flint_webhook_deliveries_total', help: 'Webhook deliveries received, by what became of them.', labelNames: ['result'] as const, registers,
  });
  const githubRequests = new Counter({
    name: 'flint_github_requests_total', help: 'GitHub API request attempts, by outcome (ok, client-error, rate-limited, server-error, network-error).',
    labelNames: ['outcome'] as const, registers,
  });
  const rateRemaining = new Gauge({
    name: 'flint_github_rate_limit_remaining', help: 'Requests left in the current GitHub rate-limit window, by resource, as of the last answer.',
    labelNames: ['resource'] as const, registers,
  });
  const rateLimit = new Gauge({
    name: 'flint_github_rate_limit', help: 'Requests allowed in a GitHub rate-limit window, by resource, as of the last answer.',
    labelNames: ['resource'] as const, registers,
  });
  const jit = new Counter({
    name: 'flint_jit_registrations_total', help: 'Just-in-time runner registrations asked of GitHub, by definition and outcome (ok or an error code).',
    labelNames: ['definition', 'outcome'] as const, registers,
  });
  const queuedToRunning = new Histogram({
    name: 'flint_job_queued_to_running_seconds', help: 'Time from a job queued (first seen) to in_progress, by definition.',
    labelNames: ['definition'] as const, buckets: LATENCY_BUCKETS, registers,
  });
  const prepare = new Histogram({
    name: 'flint_vm_prepare_seconds', help: 'Time from a VM launch to its VMM started (disks, address, tap), by definition.',
    labelNames: ['definition'] as const, buckets: VM_BUCKETS, registers,
  });
  const boot = new Histogram({
    name: 'flint_vm_boot_seconds', help: 'Time from a VMM started to its guest\'s booted marker, by definition.',
    labelNames: ['definition'] as const, buckets: VM_BUCKETS, registers,
  });
  const vmEnds = new Counter({
    name: 'flint_vms_ended_total', help: 'VMs that reached a terminal state (stopped or failed), by definition.',
    labelNames: ['definition', 'state'] as const, registers,
  });

  let collecting = false;
  return {
    registry,
    deliveries: { delivery: (result: DeliveryResult) => deliveries.inc({ result }) },
    github: {
      answered(a: GitHubAnswer) {
        githubRequests.inc({ outcome: a.outcome });
        if (a.rateLimit !== undefined) {
          rateRemaining.set({ resource: a.rateLimit.resource }, a.rateLimit.remaining);
          if (Number.isFinite(a.rateLimit.limit)) rateLimit.set({ resource: a.rateLimit.resource }, a.rateLimit.limit);
        }
      },
    },
    jobStarted: (definition, seconds) => queuedToRunning.observe({ definition }, Math.max(0, seconds)),
    vmPrepared: (definition, seconds) => prepare.observe({ definition }, Math.max(0, seconds)),
    vmBooted: (definition, seconds) => boot.observe({ definition }, Math.max(0, seconds)),
    vmEnded: (definition, state) => vmEnds.inc({ definition, state }),
    jitRegistration: (definition, outcome) => jit.inc({ definition, outcome }),
    collectFrom(sources) {
      if (collecting) throw new Error('collectFrom: the scrape-time metrics are registered already');
      collecting = true;
      registerStateMetrics(registers, sources);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

function registerStateMetrics(registers: Registry[], s: MetricsSources): void {
  // Loop counters are read from the loops' own counts: a Counter reset and
  // set at each scrape, so it still reads as a counter (it only goes up
  // while the process lives).
  new Counter({
    name: 'flint_loop_runs_total', help: 'Passes of each named loop.', labelNames: ['loop'] as const, registers,
    collect() { this.reset(); for (const l of s.loops()) this.inc({ loop: l.name }, l.runs); },
  });
  new Counter({
    name: 'flint_loop_failures_total', help: 'Failed passes of each named loop.', labelNames: ['loop'] as const, registers,
    collect() { this.reset(); for (const l of s.loops()) this.inc({ loop: l.name }, l.failures); },
  });
  new Gauge({
    name: 'flint_loop_running', help: '1 while a pass of the loop runs.', labelNames: ['loop'] as const, registers,
    collect() { this.reset(); for (const l of s.loops()) this.set({ loop: l.name }, l.running ? 1 : 0); },
  });
  new Gauge({
    name: 'flint_loop_last_run_timestamp_seconds', help: 'When the loop\'s last pass ended (Unix time).', labelNames: ['loop'] as const, registers,
    collect() { this.reset(); for (const l of s.loops()) if (l.lastRunAt !== undefined) this.set({ loop: l.name }, l.lastRunAt / 1000); },
  });
  const jobs = s.jobs;
  if (jobs !== undefined) {
    new Gauge({
      name: 'flint_jobs', help: 'Jobs on record, by state and runner definition (completed ones until retention removes them).',
      labelNames: ['state', 'definition'] as const, registers,
      async collect() {
        const counts = await Promise.all(JOB_ACTIONS.map(async (state) => [state, await jobs(state)] as const));
        this.reset();
        for (const [state, byDef] of counts) for (const [definition, n] of byDef) this.set({ state, definition }, n);
      },
    });
  }
  const runners = s.runners;
  if (runners !== undefined) {
    new Gauge({
      name: 'flint_runners', help: 'Runners this Flint started, by phase (starting, idle, busy, ending) and definition.',
      labelNames: ['phase', 'definition'] as const, registers,
      collect() {
        this.reset();
        for (const [definition, phases] of Object.entries(runners())) for (const [phase, n] of Object.entries(phases)) this.set({ phase, definition }, n);
      },
    });
  }
  const vms = s.vms;
  if (vms !== undefined) {
    new Gauge({
      name: 'flint_vms', help: 'Live VMs, by phase (preparing, booting, running, stopping) and definition.',
      labelNames: ['phase', 'definition'] as const, registers,
      collect() {
        this.reset();
        const counts = new Map<string, { phase: string; definition: string; n: number }>();
        for (const vm of vms()) {
          const key = `${vm.state}\0${vm.runner}`;
          const c = counts.get(key) ?? { phase: vm.state, definition: vm.runner, n: 0 };
          c.n += 1;
          counts.set(key, c);
        }
        for (const c of counts.values()) this.set({ phase: c.phase, definition: c.definition }, c.n);
      },
    });
  }
  const definitions = s.definitions;
  if (definitions !== undefined) {
    new Gauge({
      name: 'flint_definition_health', help: '1 for the launch-health state each runner definition is in (healthy, backing-off, unhealthy), 0 for the others.',
      labelNames: ['definition', 'state'] as const, registers,
      collect() {
        this.reset();
        for (const [definition, h] of Object.entries(definitions())) for (const state of HEALTH_STATES) this.set({ definition, state }, h.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'flint_definition_consecutive_failures', help: 'Launches of the definition that failed in a row.',
      labelNames: ['definition'] as const, registers,
      collect() { this.reset(); for (const [definition, h] of Object.entries(definitions())) this.set({ definition }, h.consecutiveFailures); },
    });
  }
  const capacity = s.capacity;
  if (capacity !== undefined) {
    const read = (pick: (c: HostCapacity) => number) => function (this: Gauge) { this.set(pick(capacity())); };
    new Gauge({ name: 'flint_host_vcpus', help: 'vCPUs this host may hand to VMs.', registers, collect: read((c) => c.vcpus) });
    new Gauge({ name: 'flint_host_vcpus_used', help: 'vCPUs live VMs hold.', registers, collect: read((c) => c.vcpusUsed) });
    new Gauge({ name: 'flint_host_memory_bytes', help: 'Memory this host may hand to VMs.', registers, collect: read((c) => c.memoryBytes) });
    new Gauge({ name: 'flint_host_memory_used_bytes', help: 'Memory live VMs hold.', registers, collect: read((c) => c.memoryUsedBytes) });
  }
  const fleet = s.fleet;
  if (fleet !== undefined) {
    // Both gauges share a read of the store while it is in flight (prom-client collects a scrape's metrics together).
    let pending: Promise<FleetMetrics> | undefined;
    const read = (): Promise<FleetMetrics> => {
      pending ??= fleet().finally(() => { pending = undefined; });
      return pending;
    };
    new Gauge({
      name: 'flint_fleet_hosts', help: 'Hosts of the fleet on record, by state (up; late: no heartbeat for two intervals; lost: none for the host-lost timeout).',
      labelNames: ['state'] as const, registers,
      async collect() {
        const f = await read();
        this.reset();
        for (const state of FLEET_STATES) this.set({ state }, f.hosts[state] ?? 0);
      },
    });
    new Gauge({
      name: 'flint_fleet_leader', help: '1 while this host holds the fleet\'s lease and runs the once-per-fleet loops, else 0.', registers,
      async collect() { this.set((await read()).leader ? 1 : 0); },
    });
  }
  const handOvers = s.claimHandOvers;
  if (handOvers !== undefined) {
    new Counter({
      name: 'flint_claim_handovers_total',
      help: 'Claims passed to the host whose claimed job another host\'s runner took, by result: passed (in the webhook batch), owed (deferred to after its commit), and of those settled, cleared (nothing owed any more) or dropped (given up: a runner may stand idle until its grace ends).',
      labelNames: ['result'] as const, registers,
      collect() {
        this.reset();
        for (const [result, n] of Object.entries(handOvers())) this.inc({ result }, n);
      },
    });
  }
}
