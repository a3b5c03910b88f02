/**
 * WorkClaims in memory, over any IntakeStore's queued jobs: the fake the
 * scheduler's tests use, held to test/contracts/work-claims.contract.ts
 * like the PostgreSQL adapter. One process, so there is nothing to skip or
 * wait for: each call runs to its end before the next.
 */
import type { IntakeStore, StoredJob } from '../../src/daemon/ports/store.ts';
import type { WorkClaims } from '../../src/daemon/ports/work-claims.ts';

interface Claim { host: string; expiresAt: number }

export class MemoryWorkClaims implements WorkClaims {
  private readonly claims = new Map<number, Claim>();
  private readonly listeners = new Set<() => void>();
  private readonly intake: Pick<IntakeStore, 'listJobs'>;

  constructor(intake: Pick<IntakeStore, 'listJobs'>) {
    this.intake = intake;
  }

  async claim(host: string, wanted: ReadonlyMap<string, number>, now: number, ttlMs: number): Promise<ReadonlyMap<string, number>> {
    const queued = await this.queued();
    const counts = new Map<string, number>();
    let freed = false;
    for (const job of queued) {
      const c = this.claims.get(job.id);
      if (c?.host !== host) continue;
      const n = counts.get(job.definition) ?? 0;
      if (n < (wanted.get(job.definition) ?? 0)) {
        if (c.expiresAt < now + ttlMs / 2) c.expiresAt = now + ttlMs;
        counts.set(job.definition, n + 1);
      } else {
        this.claims.delete(job.id);
        freed = true;
      }
    }
    for (const job of queued) {
      const n = counts.get(job.definition) ?? 0;
      if (n >= (wanted.get(job.definition) ?? 0)) continue;
      const c = this.claims.get(job.id);
      if (c !== undefined && c.expiresAt > now) continue;
      this.claims.set(job.id, { host, expiresAt: now + ttlMs });
      counts.set(job.definition, n + 1);
    }
    if (freed) this.notify();
    return counts;
  }

  async releaseAll(host: string): Promise<void> {
    let freed = false;
    for (const [id, c] of this.claims) {
      if (c.host !== host) continue;
      this.claims.delete(id);
      freed = true;
    }
    if (freed) this.notify();
  }

  async claimsByHost(now: number): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const job of await this.queued()) {
      const c = this.claims.get(job.id);
      if (c !== undefined && c.expiresAt > now) out.set(c.host, (out.get(c.host) ?? 0) + 1);
    }
    return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
  }

  async subscribe(onWork: () => void): Promise<() => Promise<void>> {
    this.listeners.add(onWork);
    return async () => { this.listeners.delete(onWork); };
  }

  /** What a stored queued job does on PostgreSQL: wakes every subscriber. */
  notify(): void {
    for (const l of this.listeners) l();
  }

  /** Queued jobs oldest first; claims on jobs that left `queued` are dropped. */
  private async queued(): Promise<readonly StoredJob[]> {
    const jobs = await this.intake.listJobs({ status: 'queued' });
    const ids = new Set(jobs.map((j) => j.id));
    for (const id of this.claims.keys()) if (!ids.has(id)) this.claims.delete(id);
    return jobs;
  }
}
