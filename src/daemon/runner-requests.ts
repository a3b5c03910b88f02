/**
 * Records when each runner registration was asked for (the "runner
 * requested" step of a job record), by decorating the GitHub port's
 * `createJitRunner` at the composition root: the scheduler registers
 * runners as before and needs to know nothing of records.
 *
 * The record is a figure for metrics, not state Flint acts on, so a store
 * that cannot take it costs a warning, never the launch.
 */
import { isFlintError } from '../core/errors/index.ts';
import { vmIdFromRunnerName } from '../core/ids.ts';
import type { GitHubPort } from './ports/github.ts';
import type { JobRecordStore } from './ports/store.ts';

export interface RunnerRequestDeps {
  readonly records: Pick<JobRecordStore, 'recordRunnerRequest'>;
  readonly clock: { now(): number };
  readonly logger: { warn(obj: object, msg: string): void };
}

export function recordingRunnerRequests(createJitRunner: GitHubPort['createJitRunner'], deps: RunnerRequestDeps): GitHubPort['createJitRunner'] {
  return async (req) => {
    // The time Flint asked, before GitHub's answer: the wait for GitHub is part of the job's way.
    const requestedAt = deps.clock.now();
    const jit = await createJitRunner(req);
    const vmId = vmIdFromRunnerName(req.name);
    if (vmId !== undefined) {
      // Not awaited: nothing acts on the record, so the launch does not wait for its commit.
      void deps.records.recordRunnerRequest({ runnerName: req.name, vmId, requestedAt, githubRunnerId: jit.runnerId }).catch((err: unknown) => {
        deps.logger.warn({ runner: req.name, code: isFlintError(err) ? err.code : undefined, err }, 'could not record the runner registration; its job records lack "runner requested"');
      });
    }
    return jit;
  };
}
