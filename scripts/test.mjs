#!/usr/bin/env node
// Runs Flint's tests with node's test runner.
//
//   node scripts/test.mjs              every fast suite (what `npm test` runs)
//   node scripts/test.mjs --slow       also the slow suites (*.slow.test.ts)
//   node scripts/test.mjs FILE...      only these files
//
// As root, the whole run happens inside a fresh, private network namespace
// (`unshare -n`, loopback brought up): tests that create bridges, taps and
// addresses can never touch the host's own network, and the namespace
// vanishes with the run, taking anything a crashed test left with it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNodeModules, ensureSystemPackages, ensureTestImage } from './ensure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const slow = args.includes('--slow');
const onlySlow = args.includes('--only-slow');
const explicit = args.filter((a) => !a.startsWith('--'));

if (!args.includes('--no-install')) {
  // The slow suite compiles Flint's real kernel and builds its real root filesystem.
  ensureSystemPackages(slow || onlySlow ? ['tests', 'kernel-build', 'kernel-source', 'rootfs-build'] : ['tests']);
  ensureNodeModules(root);
}
// What the tests download (the test image's kernel package, the slow suite's
// Debian packages) is fetched here, before the run enters its network
// namespace, which has no way out.
if (process.getuid?.() === 0 && !args.includes('--no-prepare')) {
  ensureTestImage(root);
  prepare(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'prepare-image-tests.ts'), ...(slow || onlySlow ? ['--kernel'] : [])]);
}

function prepare(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`test preparation failed: ${cmd} ${argv.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

let files = explicit;
if (files.length === 0) {
  files = ['src', 'tools', 'guest', 'images', 'test', 'bench']
    .flatMap((d) => { try { return walk(join(root, d), []); } catch { return []; } })
    .filter((f) => (f.endsWith('.slow.test.ts') ? slow || onlySlow : !onlySlow))
    .sort();
}
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

// The linger guard fails a test file whose process outlives its tests (a
// timer, server or child process left behind holds up the whole run).
const nodeArgs = ['--import', 'tsx', '--import', join(root, 'test', 'helpers', 'linger-guard.mjs'), '--test', '--test-reporter=spec', '--test-timeout=900000', ...files];
const isRoot = process.getuid?.() === 0;
const inPrivateNetns = process.env.FLINT_TEST_NETNS === '1';
let result;
if (isRoot && !inPrivateNetns) {
  const script = 'ip link set lo up && exec "$@"';
  result = spawnSync('unshare', ['-n', '--', 'sh', '-c', script, 'sh', process.execPath, ...nodeArgs], {
    cwd: root, stdio: 'inherit', env: { ...process.env, FLINT_TEST_NETNS: '1' },
  });
} else {
  if (!isRoot) console.error('note: not root; tests that need network namespaces, taps or VMs will skip (and fail under CI=true)');
  result = spawnSync(process.execPath, nodeArgs, { cwd: root, stdio: 'inherit' });
}
if (result.error) {
  console.error(`could not start the test run: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
