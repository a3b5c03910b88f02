/**
 * The scale-set protocol as the daemon sees it (docs/scale-sets.md): typed
 * values the client (adapters/github/scaleset-client.ts) parses every
 * answer into, and the client's interface. Kept here so the listener
 * depends on a port, not on the adapter.
 */

export interface ScaleSetSpec {
  readonly name: string;
  /** Runner group name (`Default` when the config names none). */
  readonly runnerGroup: string;
  readonly labels: readonly string[];
}

export interface ScaleSet {
  readonly id: number;
  readonly name: string;
  readonly runnerGroupId: number;
  readonly labels: readonly string[];
}

export interface ScaleSetStatistics {
  readonly totalAvailableJobs: number;
  readonly totalAcquiredJobs: number;
  readonly totalAssignedJobs: number;
  readonly totalRunningJobs: number;
  readonly totalRegisteredRunners: number;
  readonly totalBusyRunners: number;
  readonly totalIdleRunners: number;
}

export interface JobBase {
  readonly runnerRequestId: number;
  readonly jobId: string;
  readonly repositoryName: string;
  readonly ownerName: string;
  readonly workflowRunId: number;
  readonly jobDisplayName: string;
  readonly requestLabels: readonly string[];
}

export type JobMessage =
  | ({ readonly type: 'JobAvailable' } & JobBase)
  | ({ readonly type: 'JobAssigned' } & JobBase)
  | ({ readonly type: 'JobStarted'; readonly runnerId: number; readonly runnerName: string } & JobBase)
  | ({ readonly type: 'JobCompleted'; readonly result: string; readonly runnerId: number; readonly runnerName: string } & JobBase);

export type PollResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'message'; readonly messageId: number; readonly statistics: ScaleSetStatistics; readonly jobs: readonly JobMessage[]; readonly ignoredItems: number };

export interface JitRunner {
  readonly runnerId: number;
  readonly runnerName: string;
  /** Secret: goes to the VM's config drive only. */
  readonly encodedJitConfig: string;
}

export interface MessageSession {
  /** The scale set's id; changes when the service had removed it and the session created it again. */
  readonly scaleSetId: number;
  readonly sessionId: string;
  /** Statistics from the last session answer or message. */
  readonly statistics: ScaleSetStatistics;
  /** The message after the last acknowledged one; `none` after the service's long poll (~50 s) without news. */
  getMessage(o: { readonly maxCapacity: number; readonly signal?: AbortSignal }): Promise<PollResult>;
  /** Acknowledges a message: the next poll asks for the one after it. */
  ack(messageId: number): Promise<void>;
  /** Acquires `JobAvailable` jobs by runnerRequestId; returns those the service granted. */
  acquire(runnerRequestIds: readonly number[]): Promise<number[]>;
  /** Refreshes the session (new queue token); creates it again when the service forgot it. */
  refresh(): Promise<void>;
  /** Deletes the session (on shutdown); a session the service no longer knows counts as deleted. */
  close(): Promise<void>;
}

export interface OpenSessionOptions {
  readonly scaleSet: ScaleSetSpec;
  readonly ownerName: string;
  readonly previousSessionId?: string;
  /**
   * Resume after a message committed before a restart: the first poll names
   * it as `lastMessageId`, so the service forgets it and what came before.
   * Applied only when the session is on that same scale set id (a
   * recreated scale set starts over at message 0).
   */
  readonly resumeAfter?: { readonly scaleSetId: number; readonly messageId: number };
  readonly signal?: AbortSignal;
}

export interface ScaleSetClient {
  /** Finds the scale set by name in its runner group, or creates it. */
  ensureScaleSet(spec: ScaleSetSpec): Promise<ScaleSet>;
  getScaleSet(id: number): Promise<ScaleSet | undefined>;
  deleteScaleSet(id: number): Promise<void>;
  /**
   * Ensures the scale set and opens its message session. `previousSessionId`
   * is a session id this Flint recorded as its own (from before a crash): on
   * a lasting conflict it is deleted and the session created again.
   */
  openSession(o: OpenSessionOptions): Promise<MessageSession>;
  generateJitConfig(scaleSetId: number, o: { readonly name: string; readonly workFolder?: string }): Promise<JitRunner>;
  /** Removes a runner; `absent` when the service did not know it. Throws FLINT_ERR_GITHUB_RUNNER_BUSY while it runs a job. */
  removeRunner(runnerId: number): Promise<'removed' | 'absent'>;
}

