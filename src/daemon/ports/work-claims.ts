/**
 * Claims on queued jobs: how the hosts of a fleet share work (docs/fleet.md).
 *
 * Runners are not bound to jobs (GitHub gives a job to any idle runner whose
 * labels cover it), so a claim is a token, not a binding: a host that holds
 * claims on N queued jobs of a definition provides N runners of it. Each
 * scale tick a host asks for as many claims as it can serve now (its
 * starting and idle runners plus what its free capacity and launch health
 * let it start); it renews those it keeps, gives up those beyond that, and
 * takes unclaimed or expired ones, oldest job first, skipping rows another
 * host is claiming at that moment (`FOR UPDATE SKIP LOCKED`). A host that
 * dies stops renewing: its claims expire after the ttl and other hosts
 * take those jobs. Only queued jobs are claimed; a claim means nothing once
 * its job has left `queued`.
 *
 * Adapters: memory (test/fakes) and PostgreSQL; both run
 * test/contracts/work-claims.contract.ts. On SQLite (one host) there is
 * nothing to share and the scheduler counts every queued job.
 */
export interface WorkClaims {
  /**
   * Makes `host` hold claims on at most `wanted.get(d)` queued jobs of each
   * definition `d` (definitions absent from `wanted`: none), each valid for
   * at least `ttlMs / 2` more: keeps its oldest claims up to that count
   * (renewing until `now + ttlMs` those past half their life), gives up the
   * rest, then claims unclaimed or expired queued jobs, oldest first, until
   * `now + ttlMs`, to make up the difference. Returns how many queued jobs of each
   * definition `host` holds afterwards (definitions with none absent).
   */
  claim(host: string, wanted: ReadonlyMap<string, number>, now: number, ttlMs: number): Promise<ReadonlyMap<string, number>>;
  /** Gives up every claim of `host` (it drains or stops), so other hosts may take those jobs at once. */
  releaseAll(host: string): Promise<void>;
  /** Unexpired claims on queued jobs by host, for the status surfaces. */
  claimsByHost(now: number): Promise<ReadonlyMap<string, number>>;
  /**
   * Calls `onWork` when work may have appeared for this host: another host
   * stored a queued job or gave claims up (PostgreSQL LISTEN/NOTIFY). Resolves
   * to the function that stops listening. Optional: without it, hosts see
   * such work at their next scale tick.
   */
  subscribe?(onWork: () => void): Promise<() => Promise<void>>;
}
