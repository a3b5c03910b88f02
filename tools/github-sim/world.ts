/**
 * The simulated GitHub state: one organisation with repositories, one App
 * (maybe installed), installation tokens, workflow runs and jobs, runner
 * groups and JIT runners. Operations here are what both the REST API and the
 * runner-side API change; they know nothing of HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { GroupRec, JobRec, RepoRec, RunnerRec, RunRec } from './render.ts';
import type { JobConclusion, QueueJobOptions, SimJob, SimRunner } from './types.ts';

/**
 * The labels `config.sh` adds to a self-hosted Linux x64 runner it registers
 * (unless --no-default-labels). A JIT runner is registered by the REST API,
 * not by config.sh, and has only the labels the request names; the
 * simulator therefore gives these to no runner (see docs/config.md, "Which
 * labels a runner has"). Kept for tests that spell out the difference.
 */
export const DEFAULT_RUNNER_LABELS = ['self-hosted', 'Linux', 'X64'] as const;

export interface Token { readonly token: string; readonly expiresAt: number }

export const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Case-insensitive subset: every job label is among the runner's labels. */
export function labelsMatch(jobLabels: readonly string[], runnerLabels: readonly string[]): boolean {
  const have = new Set(runnerLabels.map((l) => l.toLowerCase()));
  return jobLabels.every((l) => have.has(l.toLowerCase()));
}

export class World {
  readonly repos: RepoRec[];
  readonly groups: GroupRec[];
  readonly runs = new Map<number, RunRec>();
  readonly jobs = new Map<number, JobRec>();
  readonly runners = new Map<number, RunnerRec>();
  readonly tokens = new Map<string, Token>();
  /** Every encoded JIT config handed out, oldest first (tests look for them where they must not be). */
  readonly jitConfigs: string[] = [];
  readonly sessions = new Map<string, number>();
  #nextRunId = 9_000_001;
  #nextJobId = 7_000_001;
  #nextRunnerId = 1;
  #runNumber = 1;

  constructor(repoNames: readonly string[], groupNames: readonly string[]) {
    this.repos = repoNames.map((name, i) => ({ id: 500_001 + i, name }));
    const names = groupNames.length > 0 ? groupNames : ['Default'];
    this.groups = names.map((name, i) => ({ id: i + 1, name, isDefault: i === 0 }));
  }

  repo(name: string): RepoRec | undefined {
    return this.repos.find((r) => r.name.toLowerCase() === name.toLowerCase());
  }

  issueToken(now: number, ttlSeconds: number): Token {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const bytes = randomBytes(36);
    const token = `ghs_${Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')}`;
    // GitHub's expires_at has second resolution; expiry is checked against the same rounded instant.
    const t = { token, expiresAt: Math.floor((now + ttlSeconds * 1000) / 1000) * 1000 };
    this.tokens.set(token, t);
    return t;
  }

  /** Registration tokens (one hour, as GitHub's): the credential of `POST /actions/runner-registration`. */
  readonly registrationTokens = new Map<string, Token>();

  issueRegistrationToken(now: number): Token {
    const t = { token: randomBytes(20).toString('hex').toUpperCase(), expiresAt: Math.floor((now + 3_600_000) / 1000) * 1000 };
    this.registrationTokens.set(t.token, t);
    return t;
  }

  queueJob(o: QueueJobOptions, now: number): JobRec {
    const repo = this.repo(o.repo);
    if (repo === undefined) throw new Error(`no repository ${o.repo} in the simulated organisation`);
    if (o.labels.length === 0) throw new Error('a job needs at least one runs-on label');
    const created = isoSeconds(now);
    let run = o.runId === undefined ? undefined : this.runs.get(o.runId);
    if (run !== undefined && run.repo.id !== repo.id) throw new Error(`run ${run.id} belongs to another repository`);
    if (run === undefined) {
      const id = o.runId ?? this.#nextRunId++;
      if (id >= this.#nextRunId) this.#nextRunId = id + 1;
      run = { id, repo, runNumber: this.#runNumber++, headSha: randomBytes(20).toString('hex'), createdAt: created, updatedAt: created };
      this.runs.set(id, run);
    }
    run.updatedAt = created;
    const job: JobRec = {
      id: this.#nextJobId++, run, name: o.name ?? 'build', labels: [...o.labels], group: o.group,
      status: 'queued', conclusion: null, runner: null, createdAt: created, startedAt: created, completedAt: null, acquiredBy: null,
    };
    this.jobs.set(job.id, job);
    return job;
  }

  runStatus(run: RunRec): { status: 'queued' | 'in_progress' | 'completed'; conclusion: JobConclusion | null } {
    const jobs = [...this.jobs.values()].filter((j) => j.run.id === run.id);
    if (jobs.some((j) => j.status === 'in_progress')) return { status: 'in_progress', conclusion: null };
    if (jobs.every((j) => j.status === 'completed')) {
      const failed = jobs.find((j) => j.conclusion !== 'success' && j.conclusion !== 'skipped');
      return { status: 'completed', conclusion: failed?.conclusion ?? 'success' };
    }
    // Some job done and others waiting still reads as in progress on GitHub.
    return jobs.some((j) => j.status === 'completed') ? { status: 'in_progress', conclusion: null } : { status: 'queued', conclusion: null };
  }

  registerRunner(o: { name: string; labels: readonly string[]; group: GroupRec; repo: RepoRec | undefined; workFolder: string; scaleSetId?: number }): RunnerRec {
    const r: RunnerRec = {
      // Exactly the requested labels, once each whatever their case: a JIT runner gets no default labels.
      id: this.#nextRunnerId++, name: o.name, defaultLabels: [],
      customLabels: o.labels.filter((l, i) => o.labels.findIndex((m) => m.toLowerCase() === l.toLowerCase()) === i),
      groupId: o.group.id, groupName: o.group.name, repo: o.repo, status: 'offline', busy: false, connected: false,
      jobId: null, session: randomBytes(24).toString('hex'), workFolder: o.workFolder, scaleSetId: o.scaleSetId ?? null,
    };
    this.runners.set(r.id, r);
    return r;
  }

  removeRunner(r: RunnerRec): void {
    this.runners.delete(r.id);
    this.sessions.delete(r.session);
  }

  /** The oldest queued job this runner may take: labels a subset, group and repository scope respected. */
  nextJobFor(r: RunnerRec): JobRec | undefined {
    const labels = [...r.defaultLabels, ...r.customLabels];
    for (const j of [...this.jobs.values()].sort((a, b) => a.id - b.id)) {
      if (j.status !== 'queued') continue;
      // A job a scale set acquired goes to that scale set's runners only; a scale-set
      // runner takes nothing its scale set did not acquire (docs/github-simulator.md).
      if (j.acquiredBy !== r.scaleSetId) continue;
      if (r.repo !== undefined && r.repo.id !== j.run.repo.id) continue;
      if (j.group !== undefined && j.group.toLowerCase() !== r.groupName.toLowerCase()) continue;
      if (labelsMatch(j.labels, labels)) return j;
    }
    return undefined;
  }

  startJob(j: JobRec, r: RunnerRec, now: number): void {
    j.status = 'in_progress';
    j.startedAt = isoSeconds(now);
    j.runner = { id: r.id, name: r.name, groupId: r.groupId, groupName: r.groupName };
    j.run.updatedAt = j.startedAt;
    r.busy = true;
    r.jobId = j.id;
  }

  completeJob(j: JobRec, conclusion: JobConclusion, now: number): void {
    j.status = 'completed';
    j.conclusion = conclusion;
    j.completedAt = isoSeconds(now);
    j.run.updatedAt = j.completedAt;
  }

  /** Cancels a queued or running job (an ephemeral runner on it goes away); undefined when there is nothing to cancel. */
  cancelJob(jobId: number, now: number): JobRec | undefined {
    const j = this.jobs.get(jobId);
    if (j === undefined || j.status === 'completed') return undefined;
    const r = j.runner === null ? undefined : this.runners.get(j.runner.id);
    // The runner process ends with its job: an ephemeral runner is removed, as when it completes.
    if (r !== undefined) this.removeRunner(r);
    this.completeJob(j, 'cancelled', now);
    return j;
  }

  /**
   * The runner's machine vanished (VM killed, host lost): the runner goes
   * offline and stays registered — GitHub keeps an offline runner until it is
   * deleted or ages out — and the job it ran fails. Undefined when unknown.
   */
  loseRunner(runnerId: number, now: number): { runner: RunnerRec; job: JobRec | undefined } | undefined {
    const r = this.runners.get(runnerId);
    if (r === undefined) return undefined;
    const j = r.jobId === null ? undefined : this.jobs.get(r.jobId);
    r.status = 'offline';
    r.busy = false;
    r.jobId = null;
    this.sessions.delete(r.session);
    if (j !== undefined && j.status === 'in_progress') {
      this.completeJob(j, 'failure', now);
      return { runner: r, job: j };
    }
    return { runner: r, job: undefined };
  }

  snapshotJobs(): SimJob[] {
    return [...this.jobs.values()].map((j) => ({
      id: j.id, runId: j.run.id, repo: j.run.repo.name, name: j.name, labels: [...j.labels], group: j.group,
      status: j.status, conclusion: j.conclusion, runnerId: j.runner?.id ?? null, runnerName: j.runner?.name ?? null,
      runnerGroupId: j.runner?.groupId ?? null, runnerGroupName: j.runner?.groupName ?? null,
      createdAt: j.createdAt, startedAt: j.startedAt, completedAt: j.completedAt,
    }));
  }

  snapshotRunners(): SimRunner[] {
    return [...this.runners.values()].map((r) => ({
      id: r.id, name: r.name, labels: [...r.defaultLabels, ...r.customLabels], groupId: r.groupId, groupName: r.groupName,
      scope: r.repo === undefined ? 'org' : { repo: r.repo.name }, status: r.status, busy: r.busy, connected: r.connected, jobId: r.jobId,
    }));
  }
}
