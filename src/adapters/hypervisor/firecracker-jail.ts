/**
 * Putting a VM's files into its jail. The jailed Firecracker sees only its
 * chroot, so every file it opens must be inside `<jail>/root`:
 *
 *   - hard link when source and jail share a file system (instant, no
 *     space; the reason the chroot base is `<stateDir>/jail`);
 *   - otherwise a reflink (FICLONE: instant on btrfs/XFS), and only as a
 *     last resort a full copy — logged, since copying a base image is slow.
 *
 * Shared files (kernel, initrd, base rootfs) are never chowned or chmodded:
 * a hard link shares the inode, so that would change the operator's image.
 * They must already be readable by the jail's uid/gid; if not, the VM does
 * not start and the error says how to fix the image's permissions.
 * Per-VM files (scratch disk, config drive) become owned by uid/gid; the
 * config drive is 0400 (it holds the JIT config).
 */
import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, stat } from 'node:fs/promises';
import { FlintError } from '../../core/errors/index.ts';

export type Placement = 'hardlink' | 'reflink' | 'copy';

/** Access as a process with exactly this uid/gid and no supplementary groups sees it (uid 0 reads anything). */
export function modeAllows(st: { uid: number; gid: number; mode: number }, uid: number, gid: number, write: boolean): boolean {
  if (uid === 0) return true;
  const shift = st.uid === uid ? 6 : st.gid === gid ? 3 : 0;
  const bits = (st.mode >> shift) & 0o7;
  return (bits & 0o4) !== 0 && (!write || (bits & 0o2) !== 0);
}

/** Fails with FLINT_ERR_VM_IMAGE_NOT_READABLE unless uid/gid can read the shared file. */
export async function checkSharedReadable(what: string, path: string, uid: number, gid: number): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new FlintError('FLINT_ERR_VM_START_FAILED', `the runner's ${what} ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new FlintError('FLINT_ERR_VM_START_FAILED', `the runner's ${what} ${path} is not a regular file`);
  if (!modeAllows(st, uid, gid, false)) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new FlintError(
      'FLINT_ERR_VM_IMAGE_NOT_READABLE',
      `the runner's ${what} ${path} (owner ${st.uid}:${st.gid}, mode ${mode}) is not readable by the jailer's uid ${uid} / gid ${gid}`,
      {
        hint: `Make it readable without changing who owns it, e.g. \`chmod o+r ${path}\`, or \`chgrp ${gid} ${path} && chmod g+r ${path}\`. Flint never changes the permissions of a shared image.`,
        details: { path, uid, gid, fileUid: st.uid, fileGid: st.gid, mode },
      },
    );
  }
}

function isCrossDevice(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code; // node:fs errors carry a string code
  return code === 'EXDEV' || code === 'EPERM' || code === 'EMLINK';
}

/** Puts `src` at `dest` (which must not exist), cheapest way first. */
export async function placeFile(src: string, dest: string): Promise<Placement> {
  try {
    await link(src, dest);
    return 'hardlink';
  } catch (err) {
    if (!isCrossDevice(err)) throw err;
  }
  try {
    await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
    return 'reflink';
  } catch {
    // No reflink support on this file system pair: fall through to a plain copy.
  }
  await copyFile(src, dest, constants.COPYFILE_EXCL);
  return 'copy';
}

/** Hands a per-VM file to the VM's uid/gid with the given mode. */
export async function ownPerVmFile(path: string, uid: number, gid: number, mode: number): Promise<void> {
  await chown(path, uid, gid);
  await chmod(path, mode);
}
