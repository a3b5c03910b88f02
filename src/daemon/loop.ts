/**
 * A named loop: runs a pass every `intervalMs` (and at start, if asked),
 * never two passes at once, logs a failed pass with its error code and
 * hint, and stops cleanly: `stop()` resolves once no pass is running and no
 * timer is armed. Its last run, last error and next run are observable for
 * the status surfaces.
 *
 * The next pass is timed from the end of the previous one, so a pass slower
 * than its interval (a loaded host, a slow GitHub) delays the next instead
 * of piling passes up; `poke()` asks for a pass soon without waiting out the
 * interval (a webhook arrived), and is folded into a running pass's
 * follow-up rather than starting a second one.
 *
 * A pass that failed with an error whose `details.retryAt` (epoch ms) lies
 * ahead — GitHub's rate limit says when Flint may ask again — puts the next
 * pass no earlier than then; pokes before it are folded into that pass.
 */
import { isFlintError } from '../core/errors/index.ts';

export interface LoopTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Runs `fn` after the I/O of the event loop's current turn (setImmediate):
   * sooner than `setTimeout(fn, 0)`, which waits for the next turn's timers.
   * A loop's pass asked for while one ran follows it this way. Optional: a
   * fake clock leaves it out, and such a pass is then a timer of 0 ms.
   */
  soon?(fn: () => void): void;
}

export interface LoopLogger {
  warn(obj: object, msg: string): void;
}

export interface LoopOptions {
  readonly name: string;
  readonly intervalMs: number;
  /** Run the first pass at once rather than after one interval. */
  readonly runAtStart: boolean;
  readonly run: () => Promise<unknown>;
  readonly logger: LoopLogger;
  readonly now: () => number;
  /** Default: the global timers. */
  readonly timers?: LoopTimers;
  /**
   * When given, a pass runs only while it answers true (a loop that runs
   * once per fleet runs on the leader only): otherwise the pass is skipped
   * — not run, not counted — and the next one is due after the interval.
   * The loop stays listed, with `standby` true.
   */
  readonly gate?: () => boolean;
}

export interface LoopStatus {
  readonly name: string;
  readonly intervalMs: number;
  readonly running: boolean;
  readonly runs: number;
  readonly failures: number;
  /** Epoch ms of the start of the last (or the running) pass. */
  readonly lastStartAt: number | undefined;
  /** Epoch ms of the end of the last pass. */
  readonly lastRunAt: number | undefined;
  readonly lastError: { readonly code: string; readonly message: string; readonly at: number } | undefined;
  /** Epoch ms the next pass is due, while one is scheduled. */
  readonly nextRunAt: number | undefined;
  /** Present for a gated loop: true while its gate holds its passes back (another host leads). */
  readonly standby?: boolean;
}

export interface Loop {
  poke(): void;
  stop(): Promise<void>;
  status(): LoopStatus;
}

/** The global timers, unref'd: a loop never keeps a process alive on its own. */
export const globalTimers: LoopTimers = {
  setTimeout: (fn, ms) => {
    // eslint-disable-next-line no-restricted-globals -- the timers port's one real implementation: everything else in the daemon takes LoopTimers.
    const t = setTimeout(fn, ms);
    // The loop never keeps a process alive on its own; stop() is the way out.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  soon: (fn) => { setImmediate(fn); },
};

/**
 * The global timers, holding the process open while pending: a VM's boot
 * timeout, lifetime and kill backstop must fire even when nothing else is
 * pending (a driver whose VMM is already gone, a fake in a test).
 */
export const keepAliveTimers: LoopTimers = {
  // eslint-disable-next-line no-restricted-globals -- the timers port's real implementation, as globalTimers above.
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  soon: (fn) => { setImmediate(fn); },
};

/** The `details.retryAt` of a FlintError, when it is a time (epoch ms). */
function retryAtOf(err: unknown): number | undefined {
  if (!isFlintError(err)) return undefined;
  const at = err.details.retryAt;
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}

export function startLoop(opts: LoopOptions): Loop {
  const timers = opts.timers ?? globalTimers;
  let timer: unknown;
  let nextRunAt: number | undefined;
  let pass: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let runs = 0;
  let failures = 0;
  let lastStartAt: number | undefined;
  let lastRunAt: number | undefined;
  let lastError: LoopStatus['lastError'];
  /** No pass starts before this (epoch ms): set by a failure that carries `retryAt`. */
  let notBefore = 0;

  const schedule = (ms: number): void => {
    if (stopped) return;
    if (timer !== undefined) timers.clearTimeout(timer);
    nextRunAt = opts.now() + ms;
    const fire = (): void => {
      timer = undefined;
      nextRunAt = undefined;
      runPass();
    };
    if (ms === 0 && timers.soon !== undefined) {
      // Cancelled by replacing `timer` (clearTimeout of this token does nothing).
      const token = {};
      timer = token;
      timers.soon(() => { if (timer === token) fire(); });
    } else timer = timers.setTimeout(fire, ms);
  };

  const runPass = (): void => {
    if (stopped) return;
    const hold = notBefore - opts.now();
    if (hold > 0) {
      if (timer === undefined || (nextRunAt ?? 0) > notBefore) schedule(hold);
      return;
    }
    if (pass !== undefined) {
      again = true;
      return;
    }
    if (timer !== undefined) {
      timers.clearTimeout(timer);
      timer = undefined;
      nextRunAt = undefined;
    }
    if (opts.gate !== undefined && !opts.gate()) {
      again = false;
      schedule(opts.intervalMs);
      return;
    }
    lastStartAt = opts.now();
    notBefore = 0; // past by now (checked above)
    pass = (async () => {
      try {
        await opts.run();
      } catch (err) {
        failures++;
        const code = isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL';
        const message = err instanceof Error ? err.message : String(err);
        lastError = { code, message, at: opts.now() };
        notBefore = retryAtOf(err) ?? 0;
        opts.logger.warn({ loop: opts.name, code, err: message, ...(isFlintError(err) ? { hint: err.hint } : {}) }, `${opts.name}: pass failed`);
      } finally {
        runs++;
        lastRunAt = opts.now();
        pass = undefined;
      }
      const hold = Math.max(0, notBefore - opts.now());
      if (again) {
        again = false;
        schedule(hold);
      } else {
        schedule(Math.max(hold, opts.intervalMs));
      }
    })();
  };

  if (opts.runAtStart) runPass();
  else schedule(opts.intervalMs);

  return {
    poke: runPass,
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      nextRunAt = undefined;
      await pass;
    },
    status: () => ({
      name: opts.name, intervalMs: opts.intervalMs, running: pass !== undefined, runs, failures, lastStartAt, lastRunAt, lastError, nextRunAt,
      ...(opts.gate === undefined ? {} : { standby: !opts.gate() }),
    }),
  };
}
