/**
 * Pool sizing: given the demand and what is already up, how many VMs of each
 * runner definition to start and how many idle ones to stop.
 *
 * Runners are not bound to jobs (design.md): GitHub gives a queued job to
 * any idle runner whose labels cover it, so Flint schedules on counts per
 * definition, never on "one VM for job N".
 *
 *   want(d)  = queued jobs d serves + d.minIdle
 *   have(d)  = VMs of d that can still take a job (starting + idle)
 *   start(d) = min(want − have, d.maxRunners − all VMs of d, d.maxStart), within the host budget
 *   stop(d)  = idle VMs of d beyond want(d), of those idle past their grace  (never a busy one)
 *
 * `maxStart` is what the definition's launch health allows (core/launch-health.ts:
 * nothing while backing off, one probe at a time); a start it holds back is
 * not "deferred for budget". Only runners idle longer than the grace period
 * are stopped: GitHub takes a moment to hand a queued job to an idle runner,
 * and a runner that just came up is about to be used, not surplus.
 *
 * Static runners (`static_runners`) are ordinary definitions here: their
 * warm pool `minIdle` defaults to `maxRunners`, so they are kept at size and
 * their idle runners are never surplus.
 *
 * A queued job counts for exactly one definition — the first in
 * configuration order that can serve it — so that two definitions with
 * overlapping labels do not both start a VM for it.
 */

export interface DefinitionDemand {
  readonly name: string;
  readonly maxRunners: number;
  readonly minIdle: number;
  readonly cpuCount: number;
  readonly memoryMib: number;
  /** Queued jobs attributed to this definition. */
  readonly queued: number;
  /** VMs booting or registered but not yet idle. */
  readonly starting: number;
  /** Runners up and waiting for a job. */
  readonly idle: number;
  /** Runners running a job (and VMs tearing down: they still hold resources). */
  readonly busy: number;
  /** Of `idle`, those idle longer than the grace period (may be stopped); default all. */
  readonly idlePastGrace?: number;
  /** Most VMs to start now (launch health); default no limit. */
  readonly maxStart?: number;
}

export interface HostBudget {
  /** vCPUs and MiB still free for new VMs on this host. */
  readonly cpus: number;
  readonly memoryMib: number;
}

export interface ScalePlan {
  readonly start: ReadonlyMap<string, number>;
  readonly stopIdle: ReadonlyMap<string, number>;
  /** VMs wanted but not started because the host budget is spent. */
  readonly deferredForBudget: number;
}

export function planScale(defs: readonly DefinitionDemand[], budget: HostBudget): ScalePlan {
  const start = new Map<string, number>();
  const stopIdle = new Map<string, number>();
  const deficit = new Map<string, number>();
  for (const d of defs) {
    const want = d.queued + d.minIdle;
    const have = d.starting + d.idle;
    const room = Math.max(0, d.maxRunners - (d.starting + d.idle + d.busy));
    deficit.set(d.name, Math.min(Math.max(0, want - have), room, Math.max(0, d.maxStart ?? Number.POSITIVE_INFINITY)));
    const excessIdle = Math.min(Math.max(0, d.idle - Math.max(0, want - d.starting)), Math.max(0, d.idlePastGrace ?? d.idle));
    if (excessIdle > 0) stopIdle.set(d.name, excessIdle);
  }
  // Hand out the budget one VM at a time, round-robin in configuration
  // order, so one definition with a long queue cannot starve the others.
  let cpus = budget.cpus;
  let memory = budget.memoryMib;
  let progress = true;
  while (progress) {
    progress = false;
    for (const d of defs) {
      const left = deficit.get(d.name) ?? 0;
      if (left === 0 || d.cpuCount > cpus || d.memoryMib > memory) continue;
      deficit.set(d.name, left - 1);
      start.set(d.name, (start.get(d.name) ?? 0) + 1);
      cpus -= d.cpuCount;
      memory -= d.memoryMib;
      progress = true;
    }
  }
  let deferredForBudget = 0;
  for (const n of deficit.values()) deferredForBudget += n;
  return { start, stopIdle, deferredForBudget };
}

/**
 * How many runners of a definition this host can hold now: those it
 * already runs, plus as many more as fit in its free vCPUs and memory, at
 * most `maxRunners`. A scale set's listener offers this as its capacity, so
 * the service does not hand it jobs the host has no room to start.
 */
export function runnersHostCanHold(d: Pick<DefinitionDemand, 'maxRunners' | 'cpuCount' | 'memoryMib'>, live: number, budget: HostBudget): number {
  const fits = Math.floor(Math.min(budget.cpus / d.cpuCount, budget.memoryMib / d.memoryMib));
  return Math.max(0, Math.min(d.maxRunners, live + Math.max(0, fits)));
}

/** What the fleet's store says of one host, as far as the fleet's capacity goes. */
export interface HostRoom {
  readonly id: string;
  /** Epoch ms of its latest heartbeat. */
  readonly lastHeartbeatAt: number;
  /** Set once the leader marked it lost. */
  readonly lostAt?: number;
  /** Runners of each definition it could hold at that heartbeat (runnersHostCanHold); absent: it publishes none. */
  readonly canHold?: Readonly<Record<string, number>>;
}

/**
 * How many runners of a definition the whole fleet can hold: the sum of
 * what each live host published with its heartbeat. Each host's figure is
 * already bounded by its own `maxRunners` (a per-host limit, as is the
 * capacity), so the fleet's is at most their sum and is not capped again:
 * capping it at one host's `maxRunners` would let a fleet of many hosts
 * take no more work than one. A host counts while it is not marked lost
 * and its heartbeat is at most `freshMs` old (two heartbeat intervals: the
 * status surfaces call an older one `late`), so a host that died adds
 * nothing long before it is marked lost. `self`, when given, replaces the
 * caller's own row with what it can hold right now, so the caller's figure
 * is never a heartbeat old and counts before its first heartbeat is on
 * record.
 */
export function fleetRunnersCanHold(
  definition: string,
  hosts: readonly HostRoom[],
  now: number,
  freshMs: number,
  self?: { readonly id: string; readonly canHold: number },
): number {
  let sum = self === undefined ? 0 : Math.max(0, Math.floor(self.canHold));
  for (const h of hosts) {
    if (h.id === self?.id || h.lostAt !== undefined || now - h.lastHeartbeatAt > freshMs) continue;
    // Own keys only: a definition's name is the operator's text, not a safe property name.
    const n = h.canHold !== undefined && Object.hasOwn(h.canHold, definition) ? h.canHold[definition] : undefined;
    if (n !== undefined && Number.isFinite(n) && n > 0) sum += Math.floor(n);
  }
  return sum;
}
