#!/usr/bin/env node
// `npm run demo`: installs what the demo needs, then runs `flint demo` —
// Flint's main job on embedded defaults (GitHub simulator, QEMU, test image) —
// inside a private network namespace, so the demo's bridge, taps and NAT
// never touch this host's network and vanish with the run.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureNodeModules, ensureSystemPackages, ensureTestImage } from './ensure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.getuid?.() !== 0) {
  console.error('npm run demo: run it as root (it creates a network namespace, a bridge, taps and VMs): sudo npm run demo');
  process.exit(2);
}
ensureSystemPackages(['demo']);
ensureNodeModules(root);
// The test guest image downloads Debian's cloud kernel: do it before the demo
// enters its network namespace, which has no way out.
ensureTestImage(root);
const args = process.argv.slice(2);
const script = 'ip link set lo up && exec "$@"';
const result = spawnSync('unshare', ['-n', '--', 'sh', '-c', script, 'sh', process.execPath, `${root}bin/flint.mjs`, 'demo', ...args], {
  cwd: root, stdio: 'inherit',
  // From the sources: a dist/ built before the last `git pull` (npm ci
  // rebuilds it only when the lockfile changes) would run old code.
  env: { ...process.env, FLINT_IN_PRIVATE_NETNS: '1', FLINT_FROM_SOURCE: '1' },
});
if (result.error) {
  console.error(`npm run demo: could not start: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
