/**
 * VmFiles (daemon/vm/ports.ts) in memory: a tree of directories and files
 * with modes and modification times from an injected clock. A real
 * implementation of the port, held to the same contract suite as the
 * adapter on the local file system (test/contracts/vm-files.contract.ts).
 */
import { dirname } from 'node:path';
import type { FileSink, VmFiles } from '../../src/daemon/vm/ports.ts';

interface MemFile { data: Buffer; mode: number; mtimeMs: number }

export class MemoryVmFiles implements VmFiles {
  private readonly dirs = new Map<string, number>([['/', 0o755]]);
  private readonly files = new Map<string, MemFile>();
  private readonly now: () => number;

  constructor(now: () => number = () => 0) {
    this.now = now;
  }

  async makeDir(dir: string, mode: number): Promise<void> {
    this.mkdirs(dir, mode);
  }

  async removeDir(dir: string): Promise<void> {
    const under = (p: string) => p === dir || p.startsWith(`${dir}/`);
    for (const p of [...this.dirs.keys()]) if (under(p)) this.dirs.delete(p);
    for (const p of [...this.files.keys()]) if (under(p)) this.files.delete(p);
  }

  async list(dir: string): Promise<string[]> {
    if (!this.dirs.has(dir)) return [];
    return [...this.dirs.keys(), ...this.files.keys()].filter((p) => p !== dir && dirname(p) === dir).map((p) => p.slice(dir.length + 1)).sort();
  }

  async modifiedAt(path: string): Promise<number | undefined> {
    return this.files.get(path)?.mtimeMs;
  }

  async removeFile(path: string): Promise<void> {
    this.files.delete(path);
  }

  async create(path: string, mode: number, dirMode: number): Promise<FileSink> {
    if (this.dirs.has(path)) throw Object.assign(new Error(`EISDIR: ${path} is a directory`), { code: 'EISDIR' });
    this.mkdirs(dirname(path), dirMode);
    const existing = this.files.get(path);
    // As open(2) with O_TRUNC: an existing file keeps its mode.
    const file: MemFile = { data: Buffer.alloc(0), mode: existing?.mode ?? mode, mtimeMs: this.now() };
    this.files.set(path, file);
    let open = true;
    return {
      write: (chunk) => {
        if (!open || chunk.length === 0 || this.files.get(path) !== file) return;
        file.data = Buffer.concat([file.data, chunk]);
        file.mtimeMs = this.now();
      },
      close: () => { open = false; },
    };
  }

  /** A file's content (tests look at what was written). */
  read(path: string): Buffer | undefined {
    return this.files.get(path)?.data;
  }

  /** A file's or directory's permission bits. */
  modeOf(path: string): number | undefined {
    return this.files.get(path)?.mode ?? this.dirs.get(path);
  }

  /** Sets a file's modification time, as utimes(2) does. */
  touch(path: string, mtimeMs: number): void {
    const f = this.files.get(path);
    if (f !== undefined) f.mtimeMs = mtimeMs;
  }

  private mkdirs(dir: string, mode: number): void {
    if (this.files.has(dir)) throw Object.assign(new Error(`EEXIST: ${dir} is a file`), { code: 'EEXIST' });
    if (this.dirs.has(dir)) return;
    this.mkdirs(dirname(dir), mode);
    this.dirs.set(dir, mode);
  }
}
