/**
 * The reads the scheduler (and the memory work claims) make of the intake store, over a plain array
 * of jobs the test changes as it goes; `afterRead` runs after each read (a
 * test changes the jobs between the scheduler's reads with it).
 */
import type { IntakeStore, StoredJob } from '../../src/daemon/ports/store.ts';

export function jobListStore(jobs: StoredJob[], hooks: { afterRead?: (() => void) | undefined } = {}): Pick<IntakeStore, 'listJobs' | 'busyRunnerNames' | 'countJobsByDefinition'> {
  return {
    listJobs: async (f) => {
      const got = jobs.filter((j) => f?.status === undefined || j.status === f.status);
      hooks.afterRead?.();
      return got;
    },
    busyRunnerNames: async () => {
      const got = new Set(jobs.filter((j) => j.status === 'in_progress' && j.runnerName !== null).map((j) => j.runnerName as string));
      hooks.afterRead?.();
      return got;
    },
    countJobsByDefinition: async (status) => {
      const counts = new Map<string, number>();
      for (const j of jobs) if (j.status === status) counts.set(j.definition, (counts.get(j.definition) ?? 0) + 1);
      hooks.afterRead?.();
      return counts;
    },
  };
}
