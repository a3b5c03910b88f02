/**
 * The "missed-webhooks" loop: webhooks are hints, GitHub is the truth.
 *
 * Each pass asks GitHub for the queued jobs of some of the installation's
 * repositories and records, as if a `queued` delivery had come, each one
 * Flint has no record of and some runner definition can serve. The store's
 * state machine makes this safe to repeat: a job already on record (queued,
 * running or done) is left as it is. The synthetic delivery id
 * (`reconcile:<job id>`) keeps a second pass from counting twice.
 *
 * Which repositories, and how many: the scan spends from a request budget
 * (config `github.scanBudget`, requests an hour; core/request-budget.ts)
 * and every read is conditional (ETag / If-None-Match), so a repository
 * whose runs did not change costs a 304, which GitHub does not count. A
 * pass looks first at the active repositories — those with jobs queued or
 * running in Flint's store, and those pushed to since the scan last looked
 * (or within the last hour, before it ever has) — interleaved with the
 * rest in least-recently-scanned order, so that at least every other
 * repository a pass looks at is the longest unscanned one and every
 * repository is reached eventually. A pass also stops at
 * `maxRequestsPerPass` requests of any kind, 304s included, to stay well
 * inside GitHub's secondary limits. Cost per organisation size:
 * docs/operations.md, "The missed-jobs scan and its API budget".
 */
import { startLoop } from './loop.ts';
import type { Loop } from './loop.ts';
import { mostSpecificServing } from '../core/labels.ts';
import type { JobCommand } from '../core/jobs.ts';
import { budgetPolicy, canSpend, fullBudget, spend, type BudgetState } from '../core/request-budget.ts';
import type { GitHubPort, RepositoryRef, WorkflowJob } from './ports/github.ts';
import type { IntakeStore } from './ports/store.ts';
import type { Logger } from './vm/supervisor.ts';

/** The default of `github.scanBudget`: a fifth of an installation's 5,000 requests an hour. */
export const DEFAULT_SCAN_BUDGET_PER_HOUR = 1000;
/** Requests of any kind (304s included) one pass makes at most. */
export const DEFAULT_MAX_REQUESTS_PER_PASS = 300;
/** Before the scan has looked at a repository, a push this recent makes it active. */
const RECENT_PUSH_MS = 3_600_000;

export interface ReconcilerDeps {
  readonly github: Pick<GitHubPort, 'listRepositories' | 'listQueuedJobsIn'>;
  readonly store: Pick<IntakeStore, 'ingest' | 'getJob' | 'listJobs'>;
  readonly runners: readonly { readonly name: string; readonly labels: readonly string[] }[];
  readonly clock: { now(): number };
  readonly logger: Logger;
  /** Passes run only while this answers true (the fleet's leader; loop.ts `gate`). */
  readonly gate?: () => boolean;
  /** Called when a missed job was recorded (the scheduler's poke). */
  readonly onRecovered?: () => void;
  /** Requests an hour the scan may spend (config `github.scanBudget`). Default 1,000. */
  readonly budgetPerHour?: number;
  /** Requests of any kind, 304s included, one pass makes at most. Default 300. */
  readonly maxRequestsPerPass?: number;
}

export function queuedCommand(job: WorkflowJob): JobCommand {
  return {
    action: 'queued',
    job: {
      id: job.id,
      runId: job.runId,
      runAttempt: 1,
      name: job.name,
      workflowName: null,
      headBranch: null,
      labels: job.labels,
      repository: `${job.owner}/${job.repo}`,
      createdAt: job.createdAt,
    },
  };
}

/** What one pass did. */
export interface ScanReport {
  /** Repositories whose queued jobs were read, in the order they were. */
  readonly scanned: readonly string[];
  /** Requests made, and how many of them counted against the rate limit. */
  readonly requests: number;
  readonly charged: number;
  /** Ids of the jobs recorded. */
  readonly recovered: readonly number[];
  /** Repositories known and not reached this pass (budget or per-pass limit). */
  readonly deferred: number;
}

export interface MissedJobsScan {
  pass(): Promise<ScanReport>;
}

const keyOf = (r: Pick<RepositoryRef, 'owner' | 'name'>): string => `${r.owner}/${r.name}`.toLowerCase();

/** The scan with its state across passes: the budget, the repository list and when each repository was last read. */
export function createMissedJobsScan(deps: ReconcilerDeps): MissedJobsScan {
  const policy = budgetPolicy(deps.budgetPerHour ?? DEFAULT_SCAN_BUDGET_PER_HOUR);
  const maxRequests = deps.maxRequestsPerPass ?? DEFAULT_MAX_REQUESTS_PER_PASS;
  let budget: BudgetState = fullBudget(policy, deps.clock.now());
  let repos: readonly RepositoryRef[] | undefined;
  const lastScanned = new Map<string, number>();

  async function activeInStore(): Promise<Set<string>> {
    const live = [...await deps.store.listJobs({ status: 'queued' }), ...await deps.store.listJobs({ status: 'in_progress' })];
    return new Set(live.map((j) => j.repository.toLowerCase()));
  }

  /** Active repositories first (store, then newest push), interleaved with the least recently scanned of the rest. */
  function order(all: readonly RepositoryRef[], inStore: ReadonlySet<string>, now: number): RepositoryRef[] {
    const pushedSinceScan = (r: RepositoryRef): boolean =>
      r.pushedAt !== null && Date.parse(r.pushedAt) > (lastScanned.get(keyOf(r)) ?? now - RECENT_PUSH_MS);
    const active = [
      ...all.filter((r) => inStore.has(keyOf(r))),
      // `all` comes most recently pushed first.
      ...all.filter((r) => !inStore.has(keyOf(r)) && pushedSinceScan(r)),
    ];
    const activeKeys = new Set(active.map(keyOf));
    // Stable sort: never-scanned repositories keep the listing's order.
    const rest = all.filter((r) => !activeKeys.has(keyOf(r)))
      .sort((a, b) => (lastScanned.get(keyOf(a)) ?? -Infinity) - (lastScanned.get(keyOf(b)) ?? -Infinity));
    const out: RepositoryRef[] = [];
    for (let i = 0; i < Math.max(active.length, rest.length); i++) {
      const a = active[i];
      const r = rest[i];
      if (a !== undefined) out.push(a);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  async function pass(): Promise<ScanReport> {
    let requests = 0;
    let charged = 0;
    const settle = (c: { readonly requests: number; readonly charged: number }): void => {
      requests += c.requests;
      charged += c.charged;
      budget = spend(policy, budget, c.charged, deps.clock.now());
    };
    // The list itself is conditional: unchanged, it costs nothing. Without
    // budget, the last known list serves.
    if (repos === undefined || canSpend(policy, budget, deps.clock.now())) {
      const listed = await deps.github.listRepositories();
      settle(listed);
      repos = listed.value;
      const known = new Set(repos.map(keyOf));
      for (const k of lastScanned.keys()) if (!known.has(k)) lastScanned.delete(k);
    }
    const queue = order(repos, await activeInStore(), deps.clock.now());
    const scanned: string[] = [];
    const recovered: number[] = [];
    for (const repo of queue) {
      if (requests >= maxRequests || !canSpend(policy, budget, deps.clock.now())) break;
      const got = await deps.github.listQueuedJobsIn(repo.owner, repo.name);
      settle(got);
      lastScanned.set(keyOf(repo), deps.clock.now());
      scanned.push(`${repo.owner}/${repo.name}`);
      for (const job of got.value) if (await record(job)) recovered.push(job.id);
    }
    if (recovered.length > 0) {
      deps.logger.warn({ jobs: recovered }, 'missed-webhooks: recorded queued jobs whose webhook never arrived');
      deps.onRecovered?.();
    }
    const deferred = queue.length - scanned.length;
    deps.logger.debug({ scanned: scanned.length, deferred, requests, charged, budgetLeft: Math.floor(budget.tokens) }, 'missed-webhooks: pass done');
    return { scanned, requests, charged, recovered, deferred };
  }

  async function record(job: WorkflowJob): Promise<boolean> {
    const definition = mostSpecificServing(deps.runners, job.labels)?.name;
    if (definition === undefined) return false;
    if ((await deps.store.getJob(job.id)) !== undefined) return false;
    const [outcome] = await deps.store.ingest([{ deliveryId: `reconcile:${job.id}`, receivedAt: deps.clock.now(), command: queuedCommand(job), definition }]);
    return outcome === 'accepted';
  }

  return { pass };
}

/** The missed-webhooks loop: a scan pass every `intervalMs`, never two passes at once. */
export function startReconciler(deps: ReconcilerDeps, intervalMs: number): Loop {
  const scan = createMissedJobsScan(deps);
  return startLoop({ name: 'missed-webhooks', intervalMs, runAtStart: false, run: () => scan.pass(), logger: deps.logger, now: () => deps.clock.now(),
    ...(deps.gate === undefined ? {} : { gate: deps.gate }) });
}
