/**
 * A VMM process Flint did not (or no longer) parent: found again by pid
 * AND start time (field 22 of /proc/<pid>/stat), so that a reused pid is
 * never mistaken for the VM. Node has no pidfd, so the end of such a
 * process is noticed by polling /proc on an injected timer.
 *
 * `FileTail` turns a growing file (the console a VMM writes to a file that
 * outlives Flint) into a Readable of its bytes, from a given offset.
 */
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';

export interface PollTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// setTimeout's handle type differs between Node and DOM typings; the callers only pass it back.
export const globalPollTimers: PollTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>), // h came from setTimeout above
};

export interface ProcStat {
  /** Field 3: R, S, D, Z, … */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: string;
}

/** /proc/<pid>/stat's state and start time, or undefined when there is no such process. */
export async function procStat(pid: number, proc = '/proc'): Promise<ProcStat | undefined> {
  try {
    const text = await readFile(`${proc}/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** True while `pid` is the process that started at `startTime` and has not ended (a zombie has ended). */
export async function isSameLiveProcess(pid: number, startTime: string, proc = '/proc'): Promise<boolean> {
  const st = await procStat(pid, proc);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.startTime === startTime;
}

/** Sends `signal` only if `pid` is still the process that started at `startTime`. False when it was not. */
export async function signalIfSame(pid: number, startTime: string, signal: NodeJS.Signals): Promise<boolean> {
  if (!(await isSameLiveProcess(pid, startTime))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the process is gone (ended, zombie, or its pid reused). Polls every `intervalMs`. */
export function watchProcess(pid: number, startTime: string, intervalMs: number, timers: PollTimers = globalPollTimers): { gone: Promise<void>; cancel(): void } {
  let handle: unknown;
  let cancelled = false;
  const gone = new Promise<void>((resolve) => {
    const check = (): void => {
      void isSameLiveProcess(pid, startTime).then((alive) => {
        if (cancelled) return;
        if (!alive) resolve();
        else handle = timers.setTimeout(check, intervalMs);
      });
    };
    check();
  });
  return {
    gone,
    cancel() {
      cancelled = true;
      if (handle !== undefined) timers.clearTimeout(handle);
    },
  };
}

/**
 * A Readable of what is appended to `path`, starting at `offset`. Polls the
 * file every `intervalMs`; `finish()` reads what is left and ends the stream.
 */
export class FileTail extends Readable {
  private readonly path: string;
  private offset: number;
  private readonly intervalMs: number;
  private readonly timers: PollTimers;
  private handle: unknown;
  private reading: Promise<void> = Promise.resolve();
  private done = false;

  constructor(path: string, opts: { offset?: number; intervalMs: number; timers?: PollTimers }) {
    super();
    this.path = path;
    this.offset = opts.offset ?? 0;
    this.intervalMs = opts.intervalMs;
    this.timers = opts.timers ?? globalPollTimers;
    this.schedule(0);
  }

  /** Bytes read so far (the file offset of the next read). */
  get position(): number {
    return this.offset;
  }

  override _read(): void {
    // Data is pushed by the poll; backpressure is not needed for a console.
  }

  /** Reads the rest of the file, then ends the stream. Idempotent. */
  async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (this.handle !== undefined) this.timers.clearTimeout(this.handle);
    await this.reading;
    await this.readMore();
    this.push(null);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.done = true;
    if (this.handle !== undefined) this.timers.clearTimeout(this.handle);
    cb(err);
  }

  private schedule(ms: number): void {
    this.handle = this.timers.setTimeout(() => {
      this.handle = undefined;
      this.reading = this.readMore().finally(() => {
        if (!this.done) this.schedule(this.intervalMs);
      });
    }, ms);
  }

  private async readMore(): Promise<void> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch {
      return; // not created yet
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        if (!this.destroyed) this.push(Buffer.from(buf.subarray(0, bytesRead)));
      }
    } finally {
      await fh.close();
    }
  }
}
