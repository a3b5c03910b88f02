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
 * Files are reached through the VmFiles port (daemon/vm/ports.ts).
 */
import { join } from 'node:path';
import type { FileSink, VmFiles } from './ports.ts';

export const CONSOLE_DIR = 'consoles';
const DIR_MODE = 0o750;
/** Guest output can reveal job details: readable by root and Flint's group only. */
const FILE_MODE = 0o640;

export function consoleLogPath(stateDir: string, vmId: string): string {
  return join(stateDir, CONSOLE_DIR, `${vmId}.log`);
}

export class ConsoleLog {
  readonly path: string;
  private sink: FileSink | undefined;
  private readonly headCap: number;
  private readonly tailCap: number;
  private headWritten = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Bytes dropped between head and tail. */
  private cut = 0;

  /** Creates the log file (and the consoles directory, the first time). */
  static async open(files: VmFiles, path: string, maxBytes: number): Promise<ConsoleLog> {
    return new ConsoleLog(path, maxBytes, await files.create(path, FILE_MODE, DIR_MODE));
  }

  /** A log writing to `sink`, which it then owns. */
  constructor(path: string, maxBytes: number, sink: FileSink) {
    this.path = path;
    this.headCap = Math.floor(maxBytes / 2);
    this.tailCap = maxBytes - this.headCap;
    this.sink = sink;
  }

  /** Appends console bytes; never throws on a full disk (a log must not kill a VM). */
  write(chunk: Buffer): void {
    if (this.sink === undefined) return;
    let rest = chunk;
    if (this.headWritten < this.headCap) {
      const n = Math.min(this.headCap - this.headWritten, rest.length);
      this.sink.write(rest.subarray(0, n));
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
    const sink = this.sink;
    if (sink === undefined) return;
    if (this.cut > 0) {
      sink.write(Buffer.from(`\n[flint: ${this.cut} bytes of console output cut here; the log keeps the first and the last ${this.tailCap} bytes]\n`));
    }
    for (const b of this.tail) sink.write(b);
    this.tail = [];
    this.tailBytes = 0;
    sink.close();
    this.sink = undefined;
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
export async function pruneConsoleLogs(
  files: VmFiles, stateDir: string, instanceId: string, nowMs: number, retentionMs: number, keep: ReadonlySet<string>,
): Promise<string[]> {
  const dir = join(stateDir, CONSOLE_DIR);
  const removed: string[] = [];
  for (const name of await files.list(dir)) {
    if (!name.endsWith('.log')) continue;
    const id = name.slice(0, -'.log'.length);
    if (!id.startsWith(`${instanceId}-`) || keep.has(id)) continue;
    const path = join(dir, name);
    try {
      const mtime = await files.modifiedAt(path);
      if (mtime !== undefined && nowMs - mtime > retentionMs) {
        await files.removeFile(path);
        removed.push(id);
      }
    } catch {
      // Unreadable or vanished meanwhile: the next pass tries again.
    }
  }
  return removed;
}
