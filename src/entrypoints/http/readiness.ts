/**
 * What `GET /readyz` answers: whether Flint can do its work now, check by
 * check, so a 503 names what is wrong. `/healthz` only says the process
 * answers and its database is open; a load balancer or an orchestrator
 * should route and restart on `/healthz` and alert on `/readyz`.
 *
 * The checks (docs/operations.md, "Monitoring"):
 *   store       a query on the state database succeeds
 *   github      GitHub answered within the last minute, or its latest
 *               attempt was answered: a rate limit counts as reachable (it
 *               is GitHub answering; Flint waits it out and the metrics
 *               show it). Not ready when for a minute every attempt failed
 *               (5xx or no answer). Before the first call: ready.
 *   hypervisor  the latest VM start did not fail for want of a working
 *               hypervisor (the VMM would not start, or no guest booted in
 *               time) with no VM booted since. Before the first VM: ready.
 *   loops       no loop's pass has run longer than STUCK_FACTOR × its
 *               interval (and at least STUCK_FLOOR_MS).
 */
import type { LoopStatus } from '../../daemon/loop.ts';
import type { GitHubAnswer, GitHubObserver } from '../../daemon/ports/observer.ts';

export interface Check {
  readonly ok: boolean;
  readonly [k: string]: unknown;
}

export interface Readiness {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, Check>>;
}

/** GitHub counts as unreachable once every attempt for this long failed. */
export const GITHUB_WINDOW_MS = 60_000;
/** A pass running longer than this many intervals is stuck… */
export const STUCK_FACTOR = 3;
/** …but never before this long (a 2 s scale tick may wait on GitHub for a while). */
export const STUCK_FLOOR_MS = 5 * 60_000;

/** Remembers when GitHub last answered and last failed to; fed by the GitHub client's observer. */
export class GitHubReachability implements GitHubObserver {
  private lastAnswerAt: number | undefined;
  private lastFailureAt: number | undefined;
  private limited = false;
  private readonly now: () => number;
  private readonly since: number;

  constructor(now: () => number) {
    this.now = now;
    this.since = now();
  }

  answered(a: GitHubAnswer): void {
    if (a.outcome === 'server-error' || a.outcome === 'network-error') {
      this.lastFailureAt = this.now();
      return;
    }
    this.lastAnswerAt = this.now();
    this.limited = a.outcome === 'rate-limited';
  }

  check(): Check {
    const now = this.now();
    const answered = this.lastAnswerAt;
    const failed = this.lastFailureAt;
    const base = { lastAnswerAt: iso(answered), lastFailureAt: iso(failed), rateLimited: this.limited };
    if (failed === undefined || (answered !== undefined && answered >= failed)) return { ok: true, ...base };
    // The latest attempt failed: still ready while an answer (or the start) is recent.
    return { ok: now - (answered ?? this.since) <= GITHUB_WINDOW_MS, ...base };
  }
}

/** Remembers the latest VM boot and the latest VM that failed to start or boot. */
export class HypervisorUsability {
  private lastBootAt: number | undefined;
  private lastFailure: { readonly at: number; readonly code: string } | undefined;
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  booted(): void {
    this.lastBootAt = this.now();
  }

  /** A VM ended before its guest booted, with this catalogue code. */
  failedToBoot(code: string): void {
    this.lastFailure = { at: this.now(), code };
  }

  check(): Check {
    const f = this.lastFailure;
    const ok = f === undefined || (this.lastBootAt !== undefined && this.lastBootAt >= f.at);
    return { ok, lastBootAt: iso(this.lastBootAt), ...(f === undefined ? {} : { lastFailure: { at: iso(f.at), code: f.code } }) };
  }
}

/** Loops whose running pass started too long ago. */
export function stuckLoops(loops: readonly LoopStatus[], now: number): { readonly name: string; readonly runningForMs: number }[] {
  const stuck: { name: string; runningForMs: number }[] = [];
  for (const l of loops) {
    if (!l.running || l.lastStartAt === undefined) continue;
    const runningForMs = now - l.lastStartAt;
    if (runningForMs > Math.max(STUCK_FACTOR * l.intervalMs, STUCK_FLOOR_MS)) stuck.push({ name: l.name, runningForMs });
  }
  return stuck;
}

export interface ReadinessDeps {
  readonly store: () => Check;
  readonly loops: () => readonly LoopStatus[];
  readonly now: () => number;
  readonly github?: Pick<GitHubReachability, 'check'>;
  readonly hypervisor?: Pick<HypervisorUsability, 'check'>;
}

/** Builds the `/readyz` answer from its checks; `ok` only when every check is. */
export function readiness(deps: ReadinessDeps): () => Readiness {
  return () => {
    const stuck = stuckLoops(deps.loops(), deps.now());
    const checks: Record<string, Check> = {
      store: deps.store(),
      ...(deps.github === undefined ? {} : { github: deps.github.check() }),
      ...(deps.hypervisor === undefined ? {} : { hypervisor: deps.hypervisor.check() }),
      loops: { ok: stuck.length === 0, ...(stuck.length === 0 ? {} : { stuck }) },
    };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
