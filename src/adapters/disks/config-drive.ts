/**
 * The config drive (vdc): a ustar archive holding `flint/env`, written raw
 * onto a file the VM gets as a read-only block device
 * (src/core/guest-contract.ts). The guest runs `tar -x -f /dev/vdc` and
 * sources `flint/env`.
 *
 * `flint/env` is POSIX shell: one `KEY='value'` line per setting. Inside
 * single quotes nothing is special except the quote itself, which is written
 * as '\'' — so quotes, `$`, backticks, backslashes and newlines in a value
 * reach the guest unchanged. NUL cannot be carried by a shell variable and
 * is refused.
 *
 * The values include the JIT config, a secret: nothing here logs a value,
 * and errors name keys only.
 */
import { open, rm } from 'node:fs/promises';
import { FlintError } from '../../core/errors/index.ts';
import { encodeUstar } from '../../core/ustar.ts';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function encodeEnvFile(values: Readonly<Record<string, string>>): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (!KEY.test(key)) throw new FlintError('FLINT_ERR_DISK_BAD_CONFIG_VALUE', `config drive: ${JSON.stringify(key)} is not a shell variable name`);
    if (value.includes('\0')) throw new FlintError('FLINT_ERR_DISK_BAD_CONFIG_VALUE', `config drive: the value of ${key} contains a NUL byte`);
    lines.push(`${key}='${value.replaceAll("'", "'\\''")}'`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** The archive bytes: directory `flint/` and `flint/env` (mode 0600, root-owned inside the guest). mtime 0 keeps it reproducible. */
export function configDriveImage(values: Readonly<Record<string, string>>): Uint8Array {
  return encodeUstar([
    { name: 'flint/', type: 'directory', mode: 0o700, mtime: 0 },
    { name: 'flint/env', type: 'file', mode: 0o600, mtime: 0, content: new TextEncoder().encode(encodeEnvFile(values)) },
  ]);
}

/**
 * Writes the drive to `path`: created with mode 0400 from the first byte on
 * (never a moment readable by others), owned by the VM's uid/gid, replacing
 * a leftover file of an earlier attempt.
 */
export async function writeConfigDrive(path: string, values: Readonly<Record<string, string>>, owner: { uid: number; gid: number }): Promise<void> {
  const bytes = configDriveImage(values);
  await rm(path, { force: true });
  const fh = await open(path, 'wx', 0o400);
  try {
    await fh.writeFile(bytes);
    await fh.chown(owner.uid, owner.gid);
    await fh.chmod(0o400); // the umask may have taken bits away; never added any
  } finally {
    await fh.close();
  }
}
