/** Public types of the GitHub simulator (see docs/github-simulator.md). */

export type JobStatus = 'queued' | 'in_progress' | 'completed';
export type JobConclusion = 'success' | 'failure' | 'cancelled' | 'skipped' | 'timed_out' | 'neutral';

export interface SimJob {
  readonly id: number;
  readonly runId: number;
  readonly repo: string;
  readonly name: string;
  /** `runs-on` labels, as written in the workflow. */
  readonly labels: readonly string[];
  /** `runs-on: { group }`: only runners of this group may take the job. */
  readonly group: string | undefined;
  readonly status: JobStatus;
  readonly conclusion: JobConclusion | null;
  readonly runnerId: number | null;
  readonly runnerName: string | null;
  readonly runnerGroupId: number | null;
  readonly runnerGroupName: string | null;
  readonly createdAt: string;
  readonly startedAt: string;
  readonly completedAt: string | null;
}

export interface SimRunner {
  readonly id: number;
  readonly name: string;
  /** Every label, defaults (`self-hosted`, `Linux`, `X64`) first. */
  readonly labels: readonly string[];
  readonly groupId: number;
  readonly groupName: string;
  /** `org`, or the repository name for a repository-level runner. */
  readonly scope: 'org' | { readonly repo: string };
  readonly status: 'online' | 'offline';
  readonly busy: boolean;
  /** Set once the runner has used its JIT config (a JIT config works once). */
  readonly connected: boolean;
  readonly jobId: number | null;
}

export interface SimDelivery {
  readonly id: number;
  readonly guid: string;
  readonly event: string;
  readonly action: string | null;
  readonly redelivery: boolean;
  readonly deliveredAt: string;
  readonly durationMs: number;
  /** HTTP status of the receiver; 0 when nothing answered (dropped, refused, timed out). */
  readonly statusCode: number;
  /** GitHub's status text: `OK`, `Invalid HTTP Response: 500`, `failed to connect to host`… */
  readonly status: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly requestHeaders: Readonly<Record<string, string>>;
  readonly responseBody: string;
  readonly repositoryId: number | null;
}

/**
 * When a REST fault fires, for requests whose `"METHOD /path"` matches
 * `match` (a regular expression; default: every request). The forms
 * combine: the first `count` matching requests, then — within `forSeconds`
 * of `faults.set` if given — each matching request with probability
 * `rate` (drawn from the seeded source), or every one if no `rate` is
 * given but `forSeconds` is.
 */
export interface FaultBurst {
  readonly count?: number;
  readonly forSeconds?: number;
  readonly rate?: number;
  readonly match?: string;
}

/**
 * Faults injected into the simulator (docs/github-simulator.md, "Faults").
 * Webhook faults count down per delivery, or fire at a rate per delivery.
 */
export interface Faults {
  /** Answers `status` (default 502) with GitHub's error body. */
  readonly serverErrors?: FaultBurst & { readonly status?: 500 | 502 | 503 | 504 };
  /**
   * Primary rate limit spent: `x-ratelimit-remaining: 0` and
   * `x-ratelimit-reset` `resetAfterSeconds` (default 60) after `faults.set`.
   */
  readonly primaryRateLimit?: FaultBurst & { readonly status?: 403 | 429; readonly resetAfterSeconds?: number };
  /**
   * Secondary rate limit: 403 (or 429) "You have exceeded a secondary rate
   * limit…", with `retry-after: retryAfterSeconds` (default 1); `null`
   * sends no `retry-after` (GitHub's docs: then wait at least a minute).
   */
  readonly secondaryRateLimit?: FaultBurst & { readonly status?: 403 | 429; readonly retryAfterSeconds?: number | null };
  /** Added to every REST answer. */
  readonly latencyMs?: number;
  /** Seed of the random source behind every `rate` (REST and webhooks); default 1. */
  readonly seed?: number;
  readonly webhooks?: {
    /** The next `drop` deliveries never reach the receiver (recorded as failed, as GitHub does). */
    readonly drop?: number;
    /** The next `duplicate` deliveries are sent twice with the same delivery GUID. */
    readonly duplicate?: number;
    /** The next `reorder` deliveries are held back and sent after the delivery that follows them (or after `holdMs`). */
    readonly reorder?: number;
    readonly holdMs?: number;
    /** After the counts: each delivery dropped / sent twice / held back with this probability (seeded). */
    readonly dropRate?: number;
    readonly duplicateRate?: number;
    readonly reorderRate?: number;
  };
}

/** How many faults fired since the simulator started (for chaos runs to report). */
export interface FaultStats {
  readonly serverErrors: number;
  readonly primaryRateLimits: number;
  readonly secondaryRateLimits: number;
  readonly webhooksDropped: number;
  readonly webhooksDuplicated: number;
  readonly webhooksReordered: number;
}

export interface RequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly status: number;
}

import type { ActionsServiceControl } from './actions-service.ts';

export interface SimulatorOptions {
  readonly org?: string;
  readonly appId?: number;
  readonly repos?: readonly string[];
  readonly installed?: boolean;
  readonly tokenTtlSeconds?: number;
  readonly webhook?: { readonly url: string; readonly secret: string };
  readonly runnerGroups?: readonly string[];
  readonly host?: string;
  readonly port?: number;
  /** An App private key (PEM) to use instead of generating one. */
  readonly privateKeyPem?: string;
  /**
   * The URL others (VMs on a bridge, a demo) reach the simulator at; goes into
   * `html_url`s, API links and JIT configs. Default: the listening address.
   */
  readonly publicUrl?: string;
  /** How long a webhook receiver may take to answer before the delivery counts as timed out (default 10 000, GitHub's 10 s). */
  readonly webhookTimeoutMs?: number;
  /** Requests per hour per credential before the primary rate limit answers 403 (default 5000, GitHub's installation budget). */
  readonly rateLimit?: number;
  /**
   * The simulator's clock (epoch ms) for token expiry, rate-limit windows and
   * manifest codes; default Date.now. JWTs are checked against it too, so a
   * test that moves it far must sign with the same time.
   */
  readonly now?: () => number;
  /** Actions service: how long a message poll waits before 202 (default 50 s). */
  readonly messagePollSeconds?: number;
  /** Actions service: an unpolled session is stale after this long (default 120 s). */
  readonly sessionExpirySeconds?: number;
  /** Actions service: lifetime of admin tokens from `/actions/runner-registration` (default 3600 s). */
  readonly adminTokenTtlSeconds?: number;
}

export interface QueueJobOptions {
  readonly repo: string;
  readonly labels: readonly string[];
  readonly runId?: number;
  readonly name?: string;
  readonly group?: string;
}

export interface IssuedSecrets {
  readonly installationTokens: readonly string[];
  readonly jitConfigs: readonly string[];
  /** The current webhook secret, if a webhook is configured. */
  readonly webhookSecret: string | null;
}

export interface Simulator {
  readonly apiUrl: string;
  readonly appId: number;
  readonly privateKeyPem: string;
  readonly org: string;
  readonly installationId: number;
  setWebhook(w: { url: string; secret: string } | undefined): void;
  queueJob(o: QueueJobOptions): Promise<{ jobId: number; runId: number }>;
  /**
   * Cancels a job that is queued or in progress (a user pressed "Cancel"): it
   * completes with `cancelled` and a `completed` webhook goes out — for a
   * queued job with no runner, as on GitHub.
   */
  cancelJob(jobId: number): Promise<void>;
  /**
   * The runner's machine vanished without a word: the runner turns offline but
   * stays registered (until deleted), a job it ran completes with `failure`.
   */
  loseRunner(runnerId: number): Promise<void>;
  /** Sends the App's `ping` webhook (GitHub sends one when the hook is configured). */
  ping(): Promise<void>;
  jobs(): readonly SimJob[];
  runners(): readonly SimRunner[];
  deliveries(): readonly SimDelivery[];
  faults: { set(f: Faults): void; clear(): void; stats(): FaultStats };
  requests(): readonly RequestLogEntry[];
  /** The Actions service (scale sets): state and fault switches (docs/github-simulator.md). */
  readonly actions: ActionsServiceControl;
  /**
   * The secrets the simulator handed out so far: every installation token and
   * every encoded JIT config (with the App's private key and the webhook
   * secret, what a test looks for where no secret may be).
   */
  issuedSecrets(): IssuedSecrets;
  /** Resolves when every webhook delivery started so far has finished (held-back ones included). */
  settled(): Promise<void>;
  close(): Promise<void>;
}
