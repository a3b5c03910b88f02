/**
 * The test guest image (images/test/build.sh): a stock Debian cloud kernel,
 * a busybox initramfs and a busybox root filesystem with Flint's init shim
 * and test agent. `ensureTestImage()` builds it once into `testImageDir()`
 * and returns the paths; later calls, also from other test processes, find it cached (the build script compares a stamp
 * and serialises concurrent builds with a lock).
 *
 *   const img = await ensureTestImage();
 *   const kernelArgs = `${img.kernelArgs} ${networkKernelArgs(net)}`;
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Prerequisite } from './prereq.ts';
import { program } from './prereq.ts';
import { DEFAULT_CACHE_DIR } from '../../src/images/paths.ts';

const execFileP = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface TestImage {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  /** Base root filesystem (attach read-only as vda). */
  readonly rootfs: string;
  /** The kernel command line the image expects, without the network part. */
  readonly kernelArgs: string;
}

/** Programs the build needs (for `requirePrereqs`). */
export const testImagePrereqs: readonly Prerequisite[] = [
  program('busybox'),
  program('apt-get'),
  program('dpkg-deb'),
  program('depmod'),
  program('cpio'),
  program('mkfs.ext4'),
  program('flock'),
];

/**
 * Where the image lives: $FLINT_TEST_IMAGE_DIR (scripts/test.mjs sets it),
 * else as root Flint's cache directory, whose permissions the build sets so
 * the jailer's unprivileged uid can read the image whatever the mode of the
 * directory the checkout sits in; else the checkout (no VM test runs then).
 */
export function testImageDir(): string {
  return process.env.FLINT_TEST_IMAGE_DIR ?? (process.getuid?.() === 0 ? join(DEFAULT_CACHE_DIR, 'test-image') : join(repoRoot, '.cache', 'test-image'));
}

let pending: Promise<TestImage> | undefined;

/** Builds the test image when missing or stale; resolves to its paths. */
export function ensureTestImage(dir: string = testImageDir()): Promise<TestImage> {
  if (pending && dir === testImageDir()) return pending;
  const p = build(dir);
  if (dir === testImageDir()) {
    pending = p;
    // A failed build is retried by the next caller instead of being cached.
    p.catch(() => { pending = undefined; });
  }
  return p;
}

async function build(dir: string): Promise<TestImage> {
  const script = join(repoRoot, 'images', 'test', 'build.sh');
  try {
    await execFileP(script, [dir], { maxBuffer: 16 * 1024 * 1024, timeout: 10 * 60_000 });
  } catch (err) {
    // execFile's error carries the script's stderr, which says what is missing.
    const e = err as { stderr?: string; message: string }; // child_process error shape
    throw new Error(`building the test image failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
  const kernelArgs = (await readFile(join(dir, 'cmdline'), 'utf8')).trim();
  return {
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    rootfs: join(dir, 'rootfs.ext4'),
    kernelArgs,
  };
}
