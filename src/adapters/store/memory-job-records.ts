/**
 * Per-job records in memory: the same port and contract tests as the SQLite
 * store (job-records.ts), joined here by hand from the in-memory intake
 * store and any VmStore, for tests of the layers above.
 */
import { vmIdFromRunnerName } from '../../core/ids.ts';
import type { JobRecord, JobRecordStore, RunnerRequest, StoredJob } from '../../daemon/ports/store.ts';
import type { VmStore } from '../../daemon/vm/vm-store.ts';
import type { MemoryIntakeStore } from './memory-intake-store.ts';

export function createMemoryJobRecords(deps: { readonly intake: MemoryIntakeStore; readonly vms: Pick<VmStore, 'get'> }): JobRecordStore {
  const requests = new Map<string, RunnerRequest>();

  const join = async (job: StoredJob): Promise<JobRecord> => {
    const times = deps.intake.jobTimes(job.id);
    const request = job.runnerName === null ? undefined : requests.get(job.runnerName);
    const vmId = job.runnerName === null ? undefined : vmIdFromRunnerName(job.runnerName);
    const vm = vmId === undefined ? undefined : await deps.vms.get(vmId);
    return {
      jobId: job.id, repository: job.repository, name: job.name, definition: job.definition, status: job.status,
      conclusion: job.conclusion, runnerName: job.runnerName, vmId: vm?.id ?? null, githubRunnerId: request?.githubRunnerId ?? null,
      at: {
        queued: times?.queuedAt ?? null, runnerRequested: request?.requestedAt ?? null, vmStarted: vm?.startedAt ?? null,
        booted: vm?.bootedAt ?? null, runnerOnline: vm?.runnerStartedAt ?? null, jobStarted: times?.startedAt ?? null,
        finished: times?.completedAt ?? null,
      },
    };
  };

  return {
    async recordRunnerRequest(r) {
      if (!requests.has(r.runnerName)) requests.set(r.runnerName, { ...r });
    },
    async getJobRecord(jobId) {
      const job = await deps.intake.getJob(jobId);
      return job === undefined ? undefined : join(job);
    },
    async listJobRecords(filter = {}) {
      const jobs = await deps.intake.listJobs(filter.status === undefined ? {} : { status: filter.status });
      const wanted = filter.limit === undefined ? jobs : jobs.slice(Math.max(0, jobs.length - filter.limit));
      return Promise.all(wanted.map(join));
    },
    async prune(before) {
      let n = 0;
      for (const [k, v] of requests) if (v.requestedAt < before) { requests.delete(k); n++; }
      return { runnerRequests: n };
    },
  };
}
