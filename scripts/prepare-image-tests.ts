// Warms the caches the image tests use while the network is still
// reachable (the tests themselves run in a namespace without a way out):
// the debootstrap stage of the root filesystem always, and with --kernel
// Flint's own kernel (a long compile the first time) for the slow suite.
import { join } from 'node:path';
import { buildKernel } from '../src/images/kernel.ts';
import { ensureDebootstrapBase } from '../src/images/rootfs.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../src/images/paths.ts';

const progress = (m: string): void => { process.stderr.write(`prepare: ${m}\n`); };
const root = packageRoot();
if (process.argv.includes('--kernel')) {
  await buildKernel({ configFile: join(root, 'images', 'kernel', 'microvm-x86_64.config'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', progress });
}
const base = await ensureDebootstrapBase({ output: '/dev/null', cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', progress });
progress(`debootstrap stage ${base.cached ? 'cached' : 'built'} in ${base.dir}`);
