// Warms the caches the slow image tests use — Flint's kernel and the
// debootstrap stage of the root filesystem — while the network is still
// reachable (the tests themselves run in a namespace without a way out).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel } from '../src/images/kernel.ts';
import { buildRootfs } from '../src/images/rootfs.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../src/images/paths.ts';

const progress = (m: string): void => { process.stderr.write(`prepare: ${m}\n`); };
const root = packageRoot();
await buildKernel({ configFile: join(root, 'images', 'kernel', 'microvm-x86_64.config'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', progress });
const work = mkdtempSync(join(tmpdir(), 'flint-prepare-'));
try {
  const tarball = join(work, 'stub.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', join(root, 'test', 'fixtures', 'stub-runner'), 'run.sh']);
  const sha = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  await buildRootfs({ output: join(work, 'rootfs.ext4'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', runnerTarball: tarball, runnerSha256: sha, headroomMiB: 64, progress });
} finally {
  rmSync(work, { recursive: true, force: true });
}
