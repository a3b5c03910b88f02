/**
 * In-memory GitHubPort: the same observable behaviour as the real client
 * against GitHub (the contract suite in test/contracts/github-port.contract.ts
 * runs against both), for daemon tests that want GitHub's semantics without
 * an HTTP server. Staging methods (`queueJob`, `takeJob`, `failDelivery`)
 * set up what a test needs; `calls` records what the daemon asked.
 */
import { FlintError } from '../../src/core/errors/index.ts';
import type {
  Conditional, GitHubPort, JitRunner, RepositoryRef, JitRunnerRequest, RunnerGroup, RunnerScope, SelfHostedRunner, WebhookDelivery, WorkflowJob,
} from '../../src/daemon/ports/github.ts';


interface RunnerRec {
  id: number;
  name: string;
  scopeKey: string;
  groupId: number;
  labels: string[];
  status: 'online' | 'offline';
  busy: boolean;
}

export interface MemoryGitHubOptions {
  readonly org?: string;
  readonly repos?: readonly string[];
  readonly runnerGroups?: readonly string[];
  /** false: every call fails with FLINT_ERR_GITHUB_APP_NOT_INSTALLED. */
  readonly installed?: boolean;
}

export class MemoryGitHub implements GitHubPort {
  readonly org: string;
  readonly repos: readonly string[];
  readonly calls: string[] = [];
  private readonly groups: RunnerGroup[];
  private readonly installed: boolean;
  private readonly runners = new Map<number, RunnerRec>();
  private readonly jobs = new Map<number, WorkflowJob>();
  private readonly deliveries: WebhookDelivery[] = [];
  /** Per repository: bumped whenever its queued or running jobs change (what an ETag of its run listings stands for). */
  private readonly repoVersions = new Map<string, number>();
  /** The version each conditional read last answered: the client's ETag cache. */
  private readonly seenVersions = new Map<string, number>();
  private readonly pushedAt = new Map<string, string>();
  private reposVersion = 0;
  private seenReposVersion = -1;
  /** Requests the conditional reads made, and how many of them GitHub would have counted (not a 304). */
  requests = 0;
  charged = 0;
  private nextRunnerId = 1;
  private nextJobId = 1000;
  private nextDeliveryId = 1;
  /** The clock of delivery times (`deliveredAt`); tests with an injected clock replace it. */
  now: () => number = () => Date.now();

  constructor(opts: MemoryGitHubOptions = {}) {
    this.org = opts.org ?? 'acme';
    this.repos = opts.repos ?? ['app', 'web'];
    this.groups = (opts.runnerGroups ?? ['Default']).map((name, i) => ({ id: i + 1, name, isDefault: i === 0 }));
    this.installed = opts.installed ?? true;
  }

  // --- staging -------------------------------------------------------------
  /** A queued job (in a run of its own) in one of the repositories. */
  queueJob(repo: string, labels: readonly string[]): number {
    if (!this.repos.includes(repo)) throw new Error(`no repository ${repo}`);
    const id = this.nextJobId++;
    this.jobs.set(id, {
      id, runId: id * 10, owner: this.org, repo, name: 'build', status: 'queued', conclusion: null, labels: [...labels],
      runnerId: null, runnerName: null, runnerGroupId: null, createdAt: new Date(0).toISOString(), startedAt: null, completedAt: null,
      htmlUrl: null, runAttempt: 1, workflowName: null, headBranch: null,
    });
    this.touched(repo);
    return id;
  }

  /** Someone pushed to the repository now: its pushed_at moves, the repository listing changes. */
  push(repo: string): void {
    if (!this.repos.includes(repo)) throw new Error(`no repository ${repo}`);
    this.pushedAt.set(repo, new Date(this.now()).toISOString());
    this.reposVersion++;
  }

  private touched(repo: string): void {
    this.repoVersions.set(repo, (this.repoVersions.get(repo) ?? 0) + 1);
  }

  /** The runner takes the job: the runner is online and busy, the job in progress. */
  takeJob(runnerId: number, jobId: number): void {
    const r = this.runners.get(runnerId);
    const j = this.jobs.get(jobId);
    if (r === undefined || j === undefined) throw new Error('no such runner or job');
    r.status = 'online';
    r.busy = true;
    this.jobs.set(jobId, { ...j, status: 'in_progress', runnerId, runnerName: r.name, runnerGroupId: r.groupId });
    this.touched(j.repo);
  }

  /**
   * An ephemeral runner finished its job: GitHub removes its registration
   * (a later deleteRunner finds it gone, which counts as removed).
   */
  runnerDone(runnerId: number): void {
    this.runners.delete(runnerId);
  }

  /** The job ends (a runner finished it, or a user cancelled it while queued). */
  completeJob(jobId: number, conclusion: WorkflowJob['conclusion']): void {
    const j = this.jobs.get(jobId);
    if (j === undefined) throw new Error('no such job');
    this.jobs.set(jobId, { ...j, status: 'completed', conclusion });
    this.touched(j.repo);
  }

  /** The job is gone from GitHub (its repository was deleted): getJob answers undefined, as for a 404. */
  removeJob(jobId: number): void {
    const j = this.jobs.get(jobId);
    this.jobs.delete(jobId);
    if (j !== undefined) this.touched(j.repo);
  }

  /** Records a delivery attempt of an event (guid) with the receiver's status code. */
  failDelivery(guid: string, statusCode: number, event = 'workflow_job', action: string | null = 'queued'): number {
    const id = this.nextDeliveryId++;
    this.deliveries.push({
      id, guid, deliveredAt: new Date(this.now()).toISOString(), redelivery: this.deliveries.some((d) => d.guid === guid),
      statusCode, status: statusCode === 0 ? 'failed to connect to host' : `Invalid HTTP Response: ${statusCode}`,
      event, action, installationId: 1, repositoryId: null,
    });
    return id;
  }

  // --- GitHubPort ------------------------------------------------------------
  private check(call: string): void {
    this.calls.push(call);
    if (!this.installed) {
      throw new FlintError('FLINT_ERR_GITHUB_APP_NOT_INSTALLED', `GitHub App is not installed on organization "${this.org}"`, {
        hint: `Install the App on organization ${this.org}, then restart Flint.`,
      });
    }
  }

  private scopeKey(scope: RunnerScope): string {
    return scope.kind === 'organization' ? 'org' : `${scope.owner}/${scope.repo}`.toLowerCase();
  }

  private view(r: RunnerRec): SelfHostedRunner {
    return { id: r.id, name: r.name, os: 'Linux', status: r.status, busy: r.busy, ephemeral: true, runnerGroupId: r.groupId, labels: [...r.labels] };
  }

  async installationId(): Promise<number> {
    this.check('installationId');
    return 1;
  }

  async listRunnerGroups(): Promise<readonly RunnerGroup[]> {
    this.check('listRunnerGroups');
    return [...this.groups];
  }

  async runnerGroupId(name: string): Promise<number> {
    this.check(`runnerGroupId ${name}`);
    const g = this.groups.find((x) => x.name === name) ?? this.groups.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (g !== undefined) return g.id;
    throw new FlintError('FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND',
      `runner group "${name}" does not exist in organization ${this.org}; the groups there are: ${this.groups.map((x) => `"${x.name}"`).join(', ')}`);
  }

  async createJitRunner(req: JitRunnerRequest): Promise<JitRunner> {
    this.check(`createJitRunner ${req.name}`);
    const key = this.scopeKey(req.scope);
    if (req.scope.kind === 'repository' && !this.repos.includes(req.scope.repo)) {
      throw new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', `no repository ${req.scope.owner}/${req.scope.repo}`);
    }
    if (!this.groups.some((g) => g.id === req.runnerGroupId)) throw new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', `no runner group ${req.runnerGroupId}`);
    const same = [...this.runners.values()].find((r) => r.scopeKey === key && r.name === req.name);
    if (same !== undefined) {
      // As the real client: an offline, idle runner of the same name is a lost earlier registration.
      if (same.busy || same.status === 'online') throw new FlintError('FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN', `a runner named ${req.name} already exists`);
      this.runners.delete(same.id);
    }
    // As GitHub and the simulator: a JIT runner has exactly the labels it was registered with (no defaults), each once.
    const labels = req.labels.filter((l, i) => req.labels.findIndex((o) => o.toLowerCase() === l.toLowerCase()) === i);
    const r: RunnerRec = { id: this.nextRunnerId++, name: req.name, scopeKey: key, groupId: req.runnerGroupId, labels, status: 'offline', busy: false };
    this.runners.set(r.id, r);
    const config = Buffer.from(JSON.stringify({ runner: r.id, name: r.name, workFolder: req.workFolder ?? '_work' })).toString('base64');
    return { runnerId: r.id, runnerName: r.name, encodedJitConfig: config };
  }

  async listRunners(scope: RunnerScope): Promise<readonly SelfHostedRunner[]> {
    this.check('listRunners');
    const key = this.scopeKey(scope);
    return [...this.runners.values()].filter((r) => r.scopeKey === key).map((r) => this.view(r));
  }

  async getRunner(scope: RunnerScope, runnerId: number): Promise<SelfHostedRunner | undefined> {
    this.check(`getRunner ${runnerId}`);
    const r = this.runners.get(runnerId);
    return r === undefined || r.scopeKey !== this.scopeKey(scope) ? undefined : this.view(r);
  }

  async deleteRunner(scope: RunnerScope, runnerId: number): Promise<void> {
    this.check(`deleteRunner ${runnerId}`);
    const r = this.runners.get(runnerId);
    if (r === undefined || r.scopeKey !== this.scopeKey(scope)) return;
    if (r.busy) throw new FlintError('FLINT_ERR_GITHUB_RUNNER_BUSY', `runner ${runnerId} is still running a job`);
    this.runners.delete(runnerId);
  }

  async getJob(owner: string, repo: string, jobId: number): Promise<WorkflowJob | undefined> {
    this.check(`getJob ${jobId}`);
    const j = this.jobs.get(jobId);
    return j !== undefined && j.owner.toLowerCase() === owner.toLowerCase() && j.repo === repo ? j : undefined;
  }

  async listQueuedJobs(): Promise<readonly WorkflowJob[]> {
    this.check('listQueuedJobs');
    return [...this.jobs.values()].filter((j) => j.status === 'queued').sort((a, b) => a.id - b.id);
  }

  /**
   * As the client over GitHub: one request a page of 100 repositories, each
   * charged unless the listing is unchanged since the last read (a 304).
   */
  async listRepositories(): Promise<Conditional<readonly RepositoryRef[]>> {
    this.check('listRepositories');
    const pages = Math.max(1, Math.ceil(this.repos.length / 100));
    const unchanged = this.seenReposVersion === this.reposVersion;
    this.seenReposVersion = this.reposVersion;
    const charged = unchanged ? 0 : pages;
    this.requests += pages;
    this.charged += charged;
    const value = this.repos
      .map((name): RepositoryRef => ({ owner: this.org, name, pushedAt: this.pushedAt.get(name) ?? null }))
      .sort((a, b) => (b.pushedAt ?? '').localeCompare(a.pushedAt ?? ''));
    return { value, unchanged, requests: pages, charged };
  }

  /**
   * As the client over GitHub: two run listings (queued, in progress) and
   * one jobs listing per such run (every job here has a run of its own);
   * nothing charged when the repository's jobs did not change since the
   * last read (every request a 304).
   */
  async listQueuedJobsIn(owner: string, repo: string): Promise<Conditional<readonly WorkflowJob[]>> {
    this.check(`listQueuedJobsIn ${repo}`);
    const jobs = [...this.jobs.values()].filter((j) => j.repo === repo && j.owner.toLowerCase() === owner.toLowerCase());
    const live = jobs.filter((j) => j.status === 'queued' || j.status === 'in_progress');
    const requests = 2 + live.length;
    const version = this.repoVersions.get(repo) ?? 0;
    const unchanged = this.seenVersions.get(repo) === version;
    this.seenVersions.set(repo, version);
    const charged = unchanged ? 0 : requests;
    this.requests += requests;
    this.charged += charged;
    return { value: live.filter((j) => j.status === 'queued').sort((a, b) => a.id - b.id), unchanged, requests, charged };
  }

  async listFailedDeliveries(opts: { readonly since?: Date } = {}): Promise<readonly WebhookDelivery[]> {
    this.check('listFailedDeliveries');
    const since = opts.since?.getTime();
    const seen = this.deliveries.filter((d) => since === undefined || Date.parse(d.deliveredAt) >= since);
    const ok = new Set(seen.filter((d) => d.statusCode >= 200 && d.statusCode < 400).map((d) => d.guid));
    const latest = new Map<string, WebhookDelivery>();
    for (const d of seen) if (!ok.has(d.guid)) latest.set(d.guid, d);
    return [...latest.values()].sort((a, b) => a.id - b.id);
  }

  async redeliver(deliveryId: number): Promise<void> {
    this.check(`redeliver ${deliveryId}`);
    const d = this.deliveries.find((x) => x.id === deliveryId);
    if (d === undefined) throw new FlintError('FLINT_ERR_GITHUB_REQUEST_FAILED', `no delivery ${deliveryId}`);
    // The fake's receiver is always up: a redelivery succeeds.
    this.failDelivery(d.guid, 200, d.event, d.action);
  }
}
