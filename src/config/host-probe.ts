/** The real HostProbe: stat and permission bits of files on this host. */
import { accessSync, constants, statSync } from 'node:fs';
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
    if (need.kind === 'read-as') {
      // Permission bits as the kernel applies them to a non-root uid (no ACLs considered).
      const mode = st.mode;
      const readable = st.uid === need.uid ? (mode & 0o400) !== 0 : st.gid === need.gid ? (mode & 0o040) !== 0 : (mode & 0o004) !== 0;
      if (!readable) return `is not readable by uid ${need.uid} / gid ${need.gid}, which the jailer runs the VM as (chmod o+r or chgrp ${need.gid})`;
    }
    return undefined;
  },
};
