/**
 * Per-VM console logs: `<stateDir>/consoles/<vm id>.log`.
 *
 * A guest can print without bound, so each log is capped: the first half of
 * the cap goes straight to the file (boot messages, where most problems
 * show), the last half is kept in memory as a ring and appended when the
 * VM ends, after one line saying how many bytes were cut. Invariant: a
 * closed log is never larger than the cap plus that one line.
 *
 * If Flint itself dies, the head is on disk and the tail is lost; the
 * start-up sweep leaves such a log in place (it is still useful) and the
 * retention loop deletes it in time like any other.
 *
 * Logs outlive their VM by the retention period; `pruneConsoleLogs` is the
 * body of the named loop "console-retention" that deletes older ones.
 */
import { closeSync, mkdirSync, open, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const CONSOLE_DIR = 'consoles';
const DIR_MODE = 0o750;
/** Guest output can reveal job details: readable by root and Flint's group only. */
const FILE_MODE = 0o640;

export function consoleLogPath(stateDir: string, vmId: string): string {
  return join(stateDir, CONSOLE_DIR, `${vmId}.log`);
}

export class ConsoleLog {
  readonly path: string;
  private fd: number | undefined;
  private readonly headCap: number;
  private readonly tailCap: number;
  private headWritten = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Bytes dropped between head and tail. */
  private cut = 0;

  /**
   * Creates the log file without blocking the event loop (the supervisor's
   * path: creating a file waits on the file system's journal, and a busy
   * host starts many VMs at once).
   */
  static async open(path: string, maxBytes: number): Promise<ConsoleLog> {
    // A plain descriptor (not a FileHandle, which would close it again when collected).
    const create = (): Promise<number> => new Promise<number>((resolve, reject) => {
      open(path, 'w', FILE_MODE, (err, got) => { if (err === null) resolve(got); else reject(err); });
    });
    let fd: number;
    try {
      fd = await create();
    } catch (err) {
      // The directory is made once, by the first log (or again if someone removed it).
      if (!(typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT')) throw err;
      await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
      fd = await create();
    }
    return new ConsoleLog(path, maxBytes, fd);
  }

  /** Opens synchronously, unless given the file's descriptor (which it then owns). */
  constructor(path: string, maxBytes: number, fd?: number) {
    this.path = path;
    this.headCap = Math.floor(maxBytes / 2);
    this.tailCap = maxBytes - this.headCap;
    if (fd === undefined) mkdirSync(dirname(path), { recursive: true, mode: DIR_MODE });
    this.fd = fd ?? openSync(path, 'w', FILE_MODE);
  }

  /** Appends console bytes; never throws on a full disk (a log must not kill a VM). */
  write(chunk: Buffer): void {
    if (this.fd === undefined) return;
    let rest = chunk;
    if (this.headWritten < this.headCap) {
      const n = Math.min(this.headCap - this.headWritten, rest.length);
      this.writeRaw(rest.subarray(0, n));
      this.headWritten += n;
      rest = rest.subarray(n);
    }
    if (rest.length === 0) return;
    // Copy: the caller's buffer may be reused by the stream.
    this.tail.push(Buffer.from(rest));
    this.tailBytes += rest.length;
    while (this.tailBytes > this.tailCap) {
      const first = this.tail[0];
      if (first === undefined) break;
      const excess = this.tailBytes - this.tailCap;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
        this.cut += first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
        this.cut += excess;
      }
    }
  }

  /** Writes the kept tail (after a line about what was cut) and closes. Idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    if (this.cut > 0) {
      this.writeRaw(Buffer.from(`\n[flint: ${this.cut} bytes of console output cut here; the log keeps the first and the last ${this.tailCap} bytes]\n`));
    }
    for (const b of this.tail) this.writeRaw(b);
    this.tail = [];
    this.tailBytes = 0;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private writeRaw(b: Buffer): void {
    if (this.fd === undefined || b.length === 0) return;
    try {
      let off = 0;
      while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    } catch {
      // Full disk or similar: the log is best effort, the VM goes on.
    }
  }
}

/** Splits console bytes into lines (for marker parsing); bounds a line without newline. */
export class LineSplitter {
  private partial = '';
  private readonly maxLine: number;

  constructor(maxLine = 8192) {
    this.maxLine = maxLine;
  }

  feed(chunk: Buffer | string): string[] {
    const text = this.partial + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const parts = text.split('\n');
    // The last part has no newline yet (possibly empty).
    this.partial = parts.pop() ?? '';
    // A guest printing without newlines must not grow memory without bound;
    // a marker is short, so keeping the end of an overlong line is enough.
    if (this.partial.length > this.maxLine) this.partial = this.partial.slice(-this.maxLine);
    return parts;
  }
}

/**
 * Deletes this instance's console logs whose last write is older than
 * `retentionMs`, except those of VMs in `keep` (still alive). Logs of other
 * instances sharing the state dir are never touched. Returns the VM ids
 * whose logs went.
 */
export function pruneConsoleLogs(stateDir: string, instanceId: string, nowMs: number, retentionMs: number, keep: ReadonlySet<string>): string[] {
  const dir = join(stateDir, CONSOLE_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.endsWith('.log')) continue;
    const id = name.slice(0, -'.log'.length);
    if (!id.startsWith(`${instanceId}-`) || keep.has(id)) continue;
    const path = join(dir, name);
    try {
      if (nowMs - statSync(path).mtimeMs > retentionMs) {
        unlinkSync(path);
        removed.push(id);
      }
    } catch {
      // Vanished meanwhile: nothing to do.
    }
  }
  return removed;
}
