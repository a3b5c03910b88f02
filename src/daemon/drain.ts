/**
 * Draining: the graceful half of shutdown (SIGTERM). An upgrade or a
 * reboot must not fail the jobs in flight, so Flint
 *   1. starts no VM any more (the webhook intake keeps taking deliveries:
 *      they are stored, and in_progress/completed news keeps the record of
 *      busy runners true),
 *   2. removes every idle or starting runner from GitHub and stops its VM
 *      (a runner GitHub refuses to remove has just taken a job: it is busy),
 *   3. waits for the busy VMs to end — their job done, the guest powers off —
 *      for at most the grace (`shutdownGrace`), logging what it waits for,
 *   4. and hands over to the normal close, which stops what is left.
 * `now()` cuts the wait short (a second signal): step 4 at once.
 *
 * Time comes only from the injected clock and timers, so tests drive it.
 */
import type { LoopTimers } from './loop.ts';
import type { DrainStart } from './scheduler.ts';
import type { Logger, VmHandle } from './vm/supervisor.ts';

export interface DrainDeps {
  readonly scheduler: { drain(): Promise<DrainStart> };
  readonly clock: { now(): number };
  readonly timers: LoopTimers;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** How often the wait is logged; default DRAIN_PROGRESS_MS. */
  readonly progressEveryMs?: number;
}

/** Why the wait ended. */
export type DrainEnd = 'finished' | 'grace-expired' | 'stopped-at-once';

export interface DrainOutcome {
  readonly end: DrainEnd;
  /** Idle or starting runners removed from GitHub (their VMs stopped). */
  readonly deregistered: number;
  /** Busy or ending VMs that ended during the wait. */
  readonly finished: number;
  /** VMs still alive when the wait ended: the close stops them. */
  readonly left: readonly string[];
  readonly waitedMs: number;
}

export interface Drain {
  readonly done: Promise<DrainOutcome>;
  /** Stop waiting at once (a second signal, `--now`); idempotent. */
  now(): void;
}

export const DRAIN_PROGRESS_MS = 30_000;

export function startDrain(deps: DrainDeps, graceMs: number): Drain {
  const { clock, timers, logger } = deps;
  let cut: (end: DrainEnd) => void = () => undefined;
  const cutShort = new Promise<DrainEnd>((resolve) => { cut = resolve; });
  let nowAsked = false;
  const done = (async (): Promise<DrainOutcome> => {
    const startedAt = clock.now();
    const start = await deps.scheduler.drain();
    const busy = new Set<VmHandle>(start.busy);
    const waiting = new Set<VmHandle>([...start.busy, ...start.ending]);
    let finished = 0;
    let allEnded: (end: DrainEnd) => void = () => undefined;
    const ended = new Promise<DrainEnd>((resolve) => { allEnded = resolve; });
    for (const vm of waiting) {
      void vm.ended.then(() => {
        if (!waiting.delete(vm)) return;
        finished += 1;
        if (waiting.size === 0) allEnded('finished');
      });
    }
    const counts = (): { busy: number; ending: number } => {
      const b = [...waiting].filter((vm) => busy.has(vm)).length;
      return { busy: b, ending: waiting.size - b };
    };
    logger.info({ deregistered: start.deregistered, ...counts(), graceMs },
      waiting.size === 0 ? 'drain: idle runners removed; no busy runner to wait for' : 'drain: idle runners removed; waiting for busy runners to finish their jobs');
    const outcome = (end: DrainEnd): DrainOutcome => ({
      end, deregistered: start.deregistered, finished, left: [...waiting].map((vm) => vm.id), waitedMs: clock.now() - startedAt,
    });
    if (waiting.size === 0) return outcome('finished');
    if (nowAsked) return outcome('stopped-at-once');

    const deadline = startedAt + graceMs;
    const graceTimer = timers.setTimeout(() => allEnded('grace-expired'), Math.max(0, deadline - clock.now()));
    let progressTimer: unknown;
    const progress = (): void => {
      progressTimer = timers.setTimeout(() => {
        logger.info({ ...counts(), vms: [...waiting].map((vm) => vm.id), remainingMs: Math.max(0, deadline - clock.now()) }, 'drain: still waiting for busy runners');
        progress();
      }, deps.progressEveryMs ?? DRAIN_PROGRESS_MS);
    };
    progress();
    const end = await Promise.race([ended, cutShort]);
    timers.clearTimeout(graceTimer);
    timers.clearTimeout(progressTimer);
    const result = outcome(end);
    if (end === 'finished') logger.info({ finished, waitedMs: result.waitedMs }, 'drain: every busy runner finished');
    else if (end === 'grace-expired') {
      logger.warn({ ...counts(), vms: result.left, graceMs },
        'drain: shutdownGrace ran out; stopping the runners still busy (their jobs fail; raise shutdownGrace to let them finish)');
    } else logger.warn({ ...counts(), vms: result.left }, 'drain: stopping at once; the runners still busy are stopped (their jobs fail)');
    return result;
  })();
  return {
    done,
    now() {
      nowAsked = true;
      cut('stopped-at-once');
    },
  };
}
