/** The real HostProbe: stat and permission bits of files on this host. */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { FileNeed, HostProbe } from './usable.ts';

export const nodeHostProbe: HostProbe = {
  check(path: string, need: FileNeed): string | undefined {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : '';
      return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be examined (${code || 'error'})`;
    }
    if (st.isDirectory()) return 'is a directory';
    try {
      accessSync(path, need.kind === 'exec' ? constants.X_OK : constants.R_OK);
    } catch {
      return need.kind === 'exec' ? 'is not executable' : 'is not readable by Flint';
    }
    if (need.kind === 'read-as' && need.uid !== 0) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (!allows(st, need.uid, need.gid, 0o4)) return `is not readable by uid ${need.uid} / gid ${need.gid} (owner ${st.uid}:${st.gid}, mode ${mode})`;
      if (need.via === 'path') {
        const blocked = blockingDirectory(path, need.uid, need.gid);
        if (blocked !== undefined) return `cannot be reached by uid ${need.uid} / gid ${need.gid}: ${blocked} does not let them pass`;
      }
    }
    return undefined;
  },
};

/**
 * Whether a process with exactly this uid/gid and no supplementary groups
 * gets `bit` (0o4 read, 0o1 execute/search) from the permission bits, as
 * the kernel applies them to a non-root uid (no ACLs considered).
 */
function allows(st: { uid: number; gid: number; mode: number }, uid: number, gid: number, bit: number): boolean {
  const shift = st.uid === uid ? 6 : st.gid === gid ? 3 : 0;
  return ((st.mode >> shift) & bit) !== 0;
}

/** The first directory above `path` that uid/gid may not search, as "DIR (owner U:G, mode M)", or undefined. */
function blockingDirectory(path: string, uid: number, gid: number): string | undefined {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      return undefined; // the file itself was found: a directory above it that vanished since is no permission problem
    }
    if (!allows(st, uid, gid, 0o1)) return `${dir} (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
    if (dir === dirname(dir)) return undefined;
  }
}
