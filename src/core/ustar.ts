/**
 * A minimal POSIX ustar archive encoder (IEEE Std 1003.1 "ustar" format),
 * pure: entries in, bytes out. Used for the config drive, which is a raw
 * archive written onto a block device and read by `tar -x -f /dev/vdc` in
 * the guest (busybox or GNU tar). Only regular files and directories, names
 * up to 100 bytes (no prefix splitting is needed for Flint's fixed names),
 * numeric ids only.
 *
 * Layout: per entry a 512-byte header, then the content padded with zeros
 * to a multiple of 512; the archive ends with two zero blocks. The result is
 * therefore always a whole number of 512-byte sectors.
 */

export const BLOCK = 512;

export interface UstarEntry {
  /** Relative path; directories may end with "/". ASCII, at most 100 bytes. */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Permission bits, e.g. 0o600. */
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Seconds since the epoch; a caller that wants reproducible bytes passes a constant. */
  readonly mtime: number;
  /** File content (files only). */
  readonly content?: Uint8Array;
}

const ascii = new TextEncoder();

function put(header: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = ascii.encode(text);
  if (bytes.length > length) throw new RangeError(`ustar field too long: ${text}`);
  header.set(bytes, offset);
}

/** An octal number field: `length - 1` zero-padded digits and a NUL. */
function octal(header: Uint8Array, offset: number, length: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`ustar numeric field out of range: ${value}`);
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new RangeError(`ustar numeric field too large: ${value}`);
  put(header, offset, length, `${digits.padStart(length - 1, '0')}\0`);
}

function header(e: UstarEntry, size: number): Uint8Array {
  const name = e.type === 'directory' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  // Printable ASCII only: tar implementations disagree on everything else.
  if (name.length === 0 || !/^[\x21-\x7e]+$/.test(name) || name.startsWith('/') || name.split('/').includes('..')) {
    throw new RangeError(`ustar name not allowed: ${JSON.stringify(name)}`);
  }
  const h = new Uint8Array(BLOCK);
  put(h, 0, 100, name);
  octal(h, 100, 8, e.mode & 0o7777);
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtime);
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as eight spaces
  put(h, 156, 1, e.type === 'directory' ? '5' : '0');
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

export function encodeUstar(entries: readonly UstarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const e of entries) {
    const content = e.type === 'file' ? (e.content ?? new Uint8Array(0)) : new Uint8Array(0);
    const h = header(e, content.length);
    const padded = Math.ceil(content.length / BLOCK) * BLOCK;
    parts.push(h, content);
    total += BLOCK + padded;
    if (padded > content.length) parts.push(new Uint8Array(padded - content.length));
  }
  total += 2 * BLOCK; // end-of-archive marker
  const out = new Uint8Array(total); // zero-filled: padding and the end marker come for free
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
