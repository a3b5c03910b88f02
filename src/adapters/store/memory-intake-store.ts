/**
 * The intake store in memory: a first-class implementation of the same
 * port for tests of the layers above (no files, no fsync), held to the same
 * contract tests as the SQLite store. Not durable, so never used by `flint serve`.
 */
import type { DeliveryOutcome } from '../../core/jobs.ts';
import { decideJobTransition, outcomeOf } from '../../core/jobs.ts';
import type { IntakeStore, JobDelivery, JobTimes, StoredDelivery, StoredJob, StoredUnparsable } from '../../daemon/ports/store.ts';

export interface MemoryIntakeStore extends IntakeStore {
  /** When each status of the job was first reported (what the SQLite store keeps in the `jobs` table's *_at columns). */
  jobTimes(id: number): JobTimes | undefined;
}

const NO_TIMES: JobTimes = { queuedAt: null, startedAt: null, completedAt: null };
const TIME_OF = { queued: 'queuedAt', in_progress: 'startedAt', completed: 'completedAt' } as const;

export function createMemoryIntakeStore(): MemoryIntakeStore {
  const deliveries = new Map<string, StoredDelivery>();
  const jobs = new Map<number, StoredJob>();
  const times = new Map<number, JobTimes>();
  const unparsable = new Map<string, StoredUnparsable>();

  const ingestOne = (d: JobDelivery, pending: Map<string, StoredDelivery>, pendingJobs: Map<number, StoredJob>, pendingTimes: Map<number, JobTimes>): DeliveryOutcome => {
    const { command: c } = d;
    if (deliveries.has(d.deliveryId) || pending.has(d.deliveryId)) return 'duplicate';
    const record = (outcome: StoredDelivery['outcome']): void => {
      pending.set(d.deliveryId, { id: d.deliveryId, event: 'workflow_job', action: c.action, jobId: c.job.id, receivedAt: d.receivedAt, outcome });
    };
    if (d.definition === undefined) {
      record('ignored');
      return 'ignored';
    }
    const current = pendingJobs.get(c.job.id) ?? jobs.get(c.job.id);
    const transition = decideJobTransition(current?.status ?? 'absent', c.action);
    const outcome = outcomeOf(transition);
    record(outcome);
    if (transition !== 'advance') return outcome;
    const runnerName = c.action === 'in_progress' || c.action === 'completed' ? (c.runner?.name ?? null) : null;
    const j = c.job;
    pendingJobs.set(j.id, {
      id: j.id, runId: j.runId, runAttempt: j.runAttempt, repository: j.repository, name: j.name, workflowName: j.workflowName,
      labels: [...j.labels], definition: current?.definition ?? d.definition, firstSeenAt: current?.firstSeenAt ?? d.receivedAt,
      status: c.action, conclusion: c.action === 'completed' ? c.conclusion : null,
      runnerName: runnerName ?? current?.runnerName ?? null, updatedAt: d.receivedAt,
    });
    if (c.action !== 'waiting') {
      // The first delivery of each status sets its time, as in the SQLite store.
      const was = pendingTimes.get(j.id) ?? times.get(j.id) ?? NO_TIMES;
      const key = TIME_OF[c.action];
      pendingTimes.set(j.id, { ...was, [key]: was[key] ?? d.receivedAt });
    }
    return outcome;
  };

  return {
    async ingest(batch, committed) {
      // Stage the batch and apply it only when every delivery went through:
      // all or none, like the SQLite transaction.
      const pending = new Map<string, StoredDelivery>();
      const pendingJobs = new Map<number, StoredJob>();
      const pendingTimes = new Map<number, JobTimes>();
      const outcomes = batch.map((d) => ingestOne(d, pending, pendingJobs, pendingTimes));
      for (const [k, v] of pendingTimes) times.set(k, v);
      for (const [k, v] of pending) deliveries.set(k, v);
      for (const [k, v] of pendingJobs) {
        const existing = jobs.get(k);
        // Keep the original facts of a job already on record, as the SQLite store does.
        jobs.set(k, existing === undefined ? v : { ...existing, status: v.status, conclusion: v.conclusion, runnerName: v.runnerName, updatedAt: v.updatedAt });
      }
      if (batch.length > 0) committed?.();
      return outcomes;
    },
    async getJob(id) {
      return jobs.get(id);
    },
    jobTimes(id) {
      return jobs.has(id) ? (times.get(id) ?? NO_TIMES) : undefined;
    },
    async listJobs(filter = {}) {
      return [...jobs.values()]
        .filter((j) => filter.status === undefined || j.status === filter.status)
        .sort((a, b) => a.firstSeenAt - b.firstSeenAt || a.id - b.id);
    },
    async countJobsByDefinition(status) {
      const counts = new Map<string, number>();
      for (const j of jobs.values()) if (j.status === status) counts.set(j.definition, (counts.get(j.definition) ?? 0) + 1);
      return counts;
    },
    async busyRunnerNames() {
      const names = new Set<string>();
      for (const j of jobs.values()) if (j.status === 'in_progress' && j.runnerName !== null) names.add(j.runnerName);
      return names;
    },
    async getDelivery(id) {
      return deliveries.get(id);
    },
    async countDeliveries() {
      return deliveries.size;
    },
    async keepUnparsable(batch) {
      const staged = new Map<string, StoredUnparsable>();
      const outcomes = batch.map((u): 'kept' | 'duplicate' => {
        if (unparsable.has(u.deliveryId) || staged.has(u.deliveryId)) return 'duplicate';
        // Copies, so that a caller reusing its buffer cannot change what was kept.
        staged.set(u.deliveryId, { ...u, headers: { ...u.headers }, body: Uint8Array.from(u.body), state: 'unparsable', replayedAt: null, replayOutcome: null });
        return 'kept';
      });
      for (const [k, v] of staged) unparsable.set(k, v);
      return outcomes;
    },
    async listUnparsable(filter = {}) {
      return [...unparsable.values()]
        .filter((u) => filter.state === undefined || u.state === filter.state)
        .sort((a, b) => a.receivedAt - b.receivedAt || (a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0));
    },
    async updateUnparsable(id, u) {
      const cur = unparsable.get(id);
      if (cur === undefined) return;
      unparsable.set(id, u.state === 'replayed'
        ? { ...cur, state: 'replayed', replayedAt: u.at, replayOutcome: u.outcome }
        : { ...cur, state: 'unparsable', replayedAt: u.at, replayOutcome: null, error: u.error });
    },
    async prune(before) {
      let d = 0;
      let j = 0;
      let u = 0;
      for (const [k, v] of deliveries) if (v.receivedAt < before) { deliveries.delete(k); d++; }
      for (const [k, v] of jobs) if (v.status === 'completed' && v.updatedAt < before) { jobs.delete(k); times.delete(k); j++; }
      for (const [k, v] of unparsable) if (v.receivedAt < before) { unparsable.delete(k); u++; }
      return { deliveries: d, jobs: j, unparsable: u };
    },
  };
}
