/**
 * The narrow interface the daemon uses to reach GitHub.
 *
 * The adapter (src/adapters/github) implements it over GitHub's REST API as
 * a GitHub App installed on one organization; a fake can implement the same
 * interface for tests of the daemon's loops. Field types are taken from
 * GitHub's published OpenAPI description (@octokit/openapi-types) so that
 * status values cannot drift from what GitHub sends; the shapes themselves
 * are camelCase and keep only what Flint uses.
 *
 * Invariants every implementation keeps:
 * - Secrets (installation tokens, JIT configs) never appear in logs or in
 *   error messages. `JitRunner.encodedJitConfig` is the only place a
 *   secret crosses this interface.
 * - "Already gone" is success for deletions; "not found" is `undefined`
 *   for single-object reads. Everything else that fails is a FlintError
 *   with a FLINT_ERR_GITHUB_… code.
 * - List operations return every page (listFailedDeliveries: up to a
 *   configured page limit, since GitHub keeps days of deliveries).
 */
import type { components } from '@octokit/openapi-types';

type Schemas = components['schemas'];

/** Where a runner is registered: the configured organization, or one of its repositories. */
export type RunnerScope =
  | { readonly kind: 'organization' }
  | { readonly kind: 'repository'; readonly owner: string; readonly repo: string };

export interface RunnerGroup {
  readonly id: number;
  readonly name: string;
  readonly isDefault: boolean;
}

export interface JitRunnerRequest {
  readonly scope: RunnerScope;
  /** Runner name; Flint passes `runnerName(vmId)` so that it carries the instance tag. */
  readonly name: string;
  /** From `runnerGroupId(name)` for organization runners; repository runners use group 1 (Default). */
  readonly runnerGroupId: number;
  /** Custom labels (1 to 100). GitHub adds its default labels (self-hosted, OS, architecture) itself. */
  readonly labels: readonly string[];
  /** Working directory relative to the runner's install directory; GitHub's default is `_work`. */
  readonly workFolder?: string;
}

/** A registered just-in-time runner. `encodedJitConfig` is a secret: never log it. */
export interface JitRunner {
  readonly runnerId: number;
  readonly runnerName: string;
  readonly encodedJitConfig: string;
}

export interface SelfHostedRunner {
  readonly id: number;
  readonly name: string;
  readonly os: Schemas['runner']['os'];
  /** "online" or "offline" (GitHub documents it as a string). */
  readonly status: Schemas['runner']['status'];
  readonly busy: boolean;
  readonly ephemeral: boolean;
  readonly runnerGroupId: number | undefined;
  readonly labels: readonly string[];
}

export interface WorkflowJob {
  readonly id: number;
  readonly runId: number;
  readonly owner: string;
  readonly repo: string;
  readonly name: string;
  readonly status: Schemas['job']['status'];
  readonly conclusion: Schemas['job']['conclusion'];
  readonly labels: readonly string[];
  readonly runnerId: number | null;
  readonly runnerName: string | null;
  readonly runnerGroupId: number | null;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly completedAt: string | null;
  readonly htmlUrl: string | null;
  /** Optional so that hand-built jobs (test fakes) may leave them out; the adapter always fills them from GitHub's answer. */
  readonly runAttempt?: number;
  readonly workflowName?: string | null;
  readonly headBranch?: string | null;
}

/** One delivery attempt of the App's webhook. */
export interface WebhookDelivery {
  readonly id: number;
  /** Shared by every attempt of the same event (the `X-GitHub-Delivery` header). */
  readonly guid: string;
  readonly deliveredAt: string;
  readonly redelivery: boolean;
  readonly statusCode: Schemas['hook-delivery-item']['status_code'];
  readonly status: string;
  readonly event: string;
  readonly action: string | null;
  readonly installationId: number | null;
  readonly repositoryId: number | null;
}

/** A repository the installation can see, with when it was last pushed to (null: never). */
export interface RepositoryRef {
  readonly owner: string;
  readonly name: string;
  readonly pushedAt: string | null;
}

/**
 * The answer of a conditional read (ETag / If-None-Match) and what it cost.
 * `value` is always the full answer: taken from the adapter's cache when
 * GitHub said 304. `requests` is how many HTTP requests were made and
 * `charged` how many of them counted against the rate limit (a 304 does
 * not); `unchanged` is true when every request was answered 304.
 */
export interface Conditional<T> {
  readonly value: T;
  readonly unchanged: boolean;
  readonly requests: number;
  readonly charged: number;
}

export interface GitHubPort {
  /** The App's installation on the configured organization (discovered once, then cached). */
  installationId(): Promise<number>;
  /** All runner groups of the organization. */
  listRunnerGroups(): Promise<readonly RunnerGroup[]>;
  /** Id of the named runner group (exact name first, then case-insensitive); FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND lists the names that exist. */
  runnerGroupId(name: string): Promise<number>;
  /** Registers a single-use runner and returns its JIT config. */
  createJitRunner(req: JitRunnerRequest): Promise<JitRunner>;
  listRunners(scope: RunnerScope): Promise<readonly SelfHostedRunner[]>;
  getRunner(scope: RunnerScope, runnerId: number): Promise<SelfHostedRunner | undefined>;
  /** Removes a runner; a runner that is already gone counts as removed. */
  deleteRunner(scope: RunnerScope, runnerId: number): Promise<void>;
  getJob(owner: string, repo: string, jobId: number): Promise<WorkflowJob | undefined>;
  /**
   * Every job with status "queued" in every repository the installation can
   * see (for jobs whose webhook was missed). Scans runs that are queued or
   * in progress: a run with one job running and others waiting for a
   * runner is "in_progress", yet its waiting jobs are "queued".
   */
  listQueuedJobs(): Promise<readonly WorkflowJob[]>;
  /**
   * The repositories the installation can see, most recently pushed first;
   * conditional, so an unchanged list costs no rate limit.
   */
  listRepositories(): Promise<Conditional<readonly RepositoryRef[]>>;
  /**
   * The queued jobs of one repository (in its queued and in-progress runs,
   * as listQueuedJobs); conditional, so an idle repository costs no rate
   * limit. A repository that is gone has none.
   */
  listQueuedJobsIn(owner: string, repo: string): Promise<Conditional<readonly WorkflowJob[]>>;
  /**
   * Deliveries of the App's webhook that failed and whose event (guid) has
   * no successful attempt, newest attempt per guid, delivered at or after
   * `since` when given. Reads at most the adapter's page limit (newest
   * first), so pass `since` on busy Apps.
   */
  listFailedDeliveries(opts?: { readonly since?: Date }): Promise<readonly WebhookDelivery[]>;
  /** Asks GitHub to deliver the delivery again (a new attempt with the same guid). */
  redeliver(deliveryId: number): Promise<void>;
}
