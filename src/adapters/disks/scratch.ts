/**
 * Per-VM scratch disks: sparse ext4 files of the runner's `diskSize`.
 *
 * Two ways to make one (bench/scratch-disk.ts measures both; docs/disks.md
 * has the numbers):
 *   - "clone" (the default): a pre-formatted template of that size is made
 *     once and cached under the state directory; each VM gets a copy with
 *     `cp --reflink=auto --sparse=always` — a reflink on filesystems that
 *     have them (XFS, btrfs), else a copy of the data extents only (a few
 *     MiB of metadata), holes stay holes;
 *   - "mkfs": `truncate` + `mkfs.ext4` per VM (the fallback when the template
 *     cannot be made or copied).
 * Neither is proportional to the disk size or to the base image.
 *
 * Format options and why:
 *   -O ^has_journal      the disk dies with the VM, a journal buys nothing and costs guest writes;
 *   -E lazy_itable_init=0 on a fresh sparse file mke2fs punches the whole file (discard is on by
 *                        default), knows the inode tables read as zeros and marks every group
 *                        ITABLE_ZEROED — without writing them. The guest kernel then has no lazy
 *                        inode-table zeroing to do (which would write ~640 MiB into a 40 GiB disk);
 *   -m 0                 the runner is the only user; no blocks reserved for root;
 *   -L flint-scratch     the guest's init shim may mount by label.
 * Clones share the template's filesystem UUID; each VM only ever sees its own.
 */
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from '../network/command.ts';

export type ScratchStrategy = 'clone' | 'mkfs';

/** Bump when MKFS_ARGS change: old templates are then ignored (and may be deleted). */
const FORMAT_VERSION = 1;
export const MKFS_ARGS = ['-q', '-F', '-O', '^has_journal', '-m', '0', '-E', 'lazy_itable_init=0', '-L', 'flint-scratch'] as const;

/** ext4 needs a few MiB for its metadata; below this mkfs fails or the disk is useless. */
export const MIN_SCRATCH_BYTES = 16 * 1024 * 1024;

export function checkScratchSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < MIN_SCRATCH_BYTES) {
    throw new RangeError(`scratch disk size must be a whole number of bytes ≥ ${MIN_SCRATCH_BYTES}, got ${sizeBytes}`);
  }
}

/** Makes `path` a sparse file of `sizeBytes` (no data written) and formats it. */
export async function mkfsScratch(commands: CommandRunner, path: string, sizeBytes: number): Promise<void> {
  checkScratchSize(sizeBytes);
  await rm(path, { force: true });
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.truncate(sizeBytes);
  } finally {
    await fh.close();
  }
  await commands.run('mkfs.ext4', [...MKFS_ARGS, path]);
}

export function templatePath(templatesDir: string, sizeBytes: number): string {
  return join(templatesDir, `scratch-v${FORMAT_VERSION}-${sizeBytes}.ext4`);
}

/**
 * Templates of scratch disks, one per size, made on first use. Concurrent
 * requests for one size in this process share one mkfs; across processes
 * each makes its own under a unique name and renames it into place (rename
 * is atomic, the loser's identical file just replaces the winner's).
 */
export function scratchTemplates(commands: CommandRunner, templatesDir: string, uniq: () => string) {
  const pending = new Map<number, Promise<string>>();

  async function make(sizeBytes: number): Promise<string> {
    const path = templatePath(templatesDir, sizeBytes);
    try {
      // A template exists only after its rename, i.e. complete; the size check guards against a hand-edited one.
      if ((await stat(path)).size === sizeBytes) return path;
    } catch {
      // missing: make it
    }
    await mkdir(templatesDir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${uniq()}`;
    try {
      await mkfsScratch(commands, tmp, sizeBytes);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return path;
  }

  return {
    /** The template for this size, made now if missing. */
    get(sizeBytes: number): Promise<string> {
      checkScratchSize(sizeBytes);
      let p = pending.get(sizeBytes);
      if (p === undefined) {
        p = make(sizeBytes);
        pending.set(sizeBytes, p);
        // A failure is not cached: the next VM tries again.
        p.catch(() => pending.delete(sizeBytes));
      }
      return p;
    },
  };
}

export type ScratchTemplates = ReturnType<typeof scratchTemplates>;

/** Copies the template to `path` keeping it sparse (reflink when the filesystem can). */
export async function cloneScratch(commands: CommandRunner, template: string, path: string): Promise<void> {
  await rm(path, { force: true });
  await commands.run('cp', ['--reflink=auto', '--sparse=always', '--no-preserve=all', '--', template, path]);
}
