// Installs what Flint's development commands need, so that `npm test`,
// `npm run demo`, `npm run bench` and `.ci/run` work on a fresh Debian
// machine without other steps:
//  - the system packages (as root, through apt-get) that the purposes asked
//    for need, from the one list of prerequisites, src/prerequisites.json;
//  - the npm dependencies from the lockfile when node_modules is missing or
//    older than the lockfile.
// Plain JavaScript with no dependencies: it runs before anything is installed.
// It first turns away a node older than package.json's engines.node
// (scripts/node-version.mjs), naming the version needed.
//
//   node scripts/ensure.mjs PURPOSE...      install the packages of these purposes
//   node scripts/ensure.mjs --node-modules  install the npm dependencies
import './node-version.mjs'; // first: a node too old stops here, with the version it needs
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** @type {{ purposes: Record<string, string>, prerequisites: Array<{ program?: string, file?: string, package: string, for: string[] }> }} */
export const PREREQUISITES = JSON.parse(readFileSync(join(root, 'src', 'prerequisites.json'), 'utf8'));

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

export function haveProgram(program) {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program], { stdio: 'ignore', env: { ...process.env, PATH } }).status === 0;
}

/** A file, or a pattern with one `*` in its last component (`/usr/src/linux-source-*.tar.xz`). */
export function haveFile(pattern) {
  const name = basename(pattern);
  const star = name.indexOf('*');
  if (star === -1) return existsSync(pattern);
  const [head, tail] = [name.slice(0, star), name.slice(star + 1)];
  try {
    return readdirSync(dirname(pattern)).some((n) => n.startsWith(head) && n.endsWith(tail) && n.length >= head.length + tail.length);
  } catch {
    return false;
  }
}

/** The declared prerequisites that `purposes` need and this host lacks. */
export function missingPrerequisites(purposes) {
  for (const p of purposes) {
    if (!(p in PREREQUISITES.purposes)) throw new Error(`ensure: unknown purpose "${p}" (known: ${Object.keys(PREREQUISITES.purposes).join(', ')})`);
  }
  return PREREQUISITES.prerequisites
    .filter((e) => e.for.some((p) => purposes.includes(p)))
    .filter((e) => (e.program !== undefined ? !haveProgram(e.program) : !haveFile(e.file)));
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`ensure: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

/** Installs the Debian packages of what `purposes` need and this host lacks (as root). */
export function ensureSystemPackages(purposes) {
  const missing = missingPrerequisites(purposes);
  const packages = [...new Set(missing.map((e) => e.package))];
  if (packages.length === 0) return;
  const what = missing.map((e) => e.program ?? e.file).join(', ');
  if (process.getuid?.() !== 0) {
    console.error(`ensure: missing ${what} (as root: apt-get install ${packages.join(' ')})`);
    return;
  }
  console.error(`ensure: installing ${packages.join(' ')} (for ${what})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env });
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env });
  const still = missingPrerequisites(purposes);
  if (still.length > 0) {
    console.error(`ensure: still missing after apt-get install: ${still.map((e) => `${e.program ?? e.file} (${e.package})`).join(', ')}`);
    process.exit(1);
  }
}

/**
 * The directory whose `include/node/` holds the headers of exactly the node
 * that runs this script (Debian's and NodeSource's packages install them
 * beside the binary: /usr/include/node), or undefined. better-sqlite3 is
 * compiled when no prebuilt binary can be downloaded from GitHub, and
 * node-gyp then downloads the headers from the Node.js site unless it is
 * given a `nodedir`: with these, the compile needs nothing beyond the
 * package registry.
 */
export function localNodeHeaders(execPath = process.execPath, version = process.versions.node) {
  const prefix = dirname(dirname(execPath));
  const header = join(prefix, 'include', 'node', 'node_version.h');
  let text;
  try {
    text = readFileSync(header, 'utf8');
  } catch {
    return undefined;
  }
  const part = (name) => new RegExp(`^#define NODE_${name}_VERSION (\\d+)\\s*$`, 'm').exec(text)?.[1];
  const found = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  if (found !== version || !existsSync(join(prefix, 'include', 'node', 'common.gypi'))) return undefined;
  return prefix;
}

export function ensureNodeModules(dir = root) {
  const lock = join(dir, 'package-lock.json');
  const marker = join(dir, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.error('ensure: installing npm dependencies (npm ci)');
  const env = { ...process.env };
  const headers = localNodeHeaders();
  if (env.npm_config_nodedir === undefined && headers !== undefined) env.npm_config_nodedir = headers;
  run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, env });
}

/**
 * The test guest image (Debian's cloud kernel from the package archive, a
 * busybox root filesystem), built or found cached. Its directory is where the
 * tests and benchmarks control its permissions — the jailer's unprivileged
 * uid must read it whatever the mode of the directory the checkout sits in:
 * as root Flint's cache directory, shared with the demo; otherwise (no VM
 * runs then) the checkout. Sets FLINT_TEST_IMAGE_DIR for the processes this
 * one starts. Call it before entering a network namespace: the build
 * downloads.
 */
export function ensureTestImage(dir = root) {
  process.env.FLINT_TEST_IMAGE_DIR ??= process.getuid?.() === 0 ? '/var/cache/flint/test-image' : join(dir, '.cache', 'test-image');
  run('sh', [join(dir, 'images', 'test', 'build.sh'), process.env.FLINT_TEST_IMAGE_DIR], { cwd: dir });
  return process.env.FLINT_TEST_IMAGE_DIR;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const purposes = args.filter((a) => !a.startsWith('--'));
  if (args.length === 0 || args.includes('--help')) {
    console.error(`usage: node scripts/ensure.mjs [--node-modules] PURPOSE...\npurposes:\n${Object.entries(PREREQUISITES.purposes).map(([k, v]) => `  ${k.padEnd(14)} ${v}`).join('\n')}`);
    process.exit(args.length === 0 ? 2 : 0);
  }
  if (purposes.length > 0) ensureSystemPackages(purposes);
  if (args.includes('--node-modules')) ensureNodeModules(root);
}
