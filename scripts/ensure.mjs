// Installs what Flint's development commands need, so that `npm test` and
// `npm run demo` work on a fresh Debian machine without other steps:
//  - the system packages (as root, through apt-get) when a program is missing;
//  - the npm dependencies from the lockfile when node_modules is missing or
//    older than the lockfile.
// Plain JavaScript with no dependencies: it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Program → Debian package that provides it. */
export const SYSTEM_PACKAGES = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  'mkfs.ext4': 'e2fsprogs',
  'debugfs': 'e2fsprogs',
  ip: 'iproute2',
  nft: 'nftables',
  busybox: 'busybox-static',
  cpio: 'cpio',
  debootstrap: 'debootstrap',
  unshare: 'util-linux',
  zstd: 'zstd',
  depmod: 'kmod',
  'dpkg-deb': 'dpkg',
  script: 'bsdutils',
};

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

function have(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore', env: { ...process.env, PATH } }).status === 0;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`ensure: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

export function ensureSystemPackages(programs = Object.keys(SYSTEM_PACKAGES)) {
  const missing = [...new Set(programs.filter((p) => !have(p)).map((p) => SYSTEM_PACKAGES[p]))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(`ensure: missing system packages: ${missing.join(' ')} (run as root, or: sudo apt-get install ${missing.join(' ')})`);
    return;
  }
  console.error(`ensure: installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env });
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
}

export function ensureNodeModules(root) {
  const lock = join(root, 'package-lock.json');
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.error('ensure: installing npm dependencies (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root });
}
