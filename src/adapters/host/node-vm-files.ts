/**
 * VmFiles (daemon/vm/ports.ts) on the local file system. Creating and
 * removing do not block the event loop (they can wait on the file system's
 * journal, and a busy host starts and tears down many VMs at once); a
 * file's writes are synchronous, so a console log keeps the guest's order
 * and is complete the moment its VM is recorded as ended.
 */
import { closeSync, open, writeSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FileSink, VmFiles } from '../../daemon/vm/ports.ts';

export class NodeVmFiles implements VmFiles {
  async makeDir(dir: string, mode: number): Promise<void> {
    await mkdir(dir, { recursive: true, mode });
  }

  async removeDir(dir: string): Promise<void> {
    // Teardown has removed the disks and the driver's files by now, so the
    // dir is usually empty: one rmdir, not a recursive walk (which costs a
    // stat and a listing more per VM).
    try {
      await rmdir(dir);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(dir, { recursive: true, force: true });
    }
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return [];
      throw err;
    }
  }

  async modifiedAt(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).mtimeMs;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async removeFile(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
  }

  async create(path: string, mode: number, dirMode: number): Promise<FileSink> {
    let fd: number;
    try {
      fd = await openForWriting(path, mode);
    } catch (err) {
      // The directory is made once, by the first file (or again if someone removed it).
      if (errCode(err) !== 'ENOENT') throw err;
      await mkdir(dirname(path), { recursive: true, mode: dirMode });
      fd = await openForWriting(path, mode);
    }
    return new FdSink(fd);
  }
}

/** A plain descriptor (not a FileHandle, which would close it again when collected). */
function openForWriting(path: string, mode: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    open(path, 'w', mode, (err, fd) => { if (err === null) resolve(fd); else reject(err); });
  });
}

class FdSink implements FileSink {
  private fd: number | undefined;

  constructor(fd: number) {
    this.fd = fd;
  }

  write(chunk: Buffer): void {
    if (this.fd === undefined || chunk.length === 0) return;
    try {
      let off = 0;
      while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    } catch {
      // Full disk or similar: best effort, the caller goes on.
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

function errCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
}
