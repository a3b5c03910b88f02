/**
 * Builds Flint's microVM kernel from Debian's `linux-source-*` package with
 * the configuration kept in the repository (images/kernel/*.config).
 *
 * Cache: the output directory is named by a hash of the configuration, the
 * source package version and this builder's version, so an unchanged kernel
 * is never rebuilt; the source tree is kept between builds so a changed
 * configuration recompiles only what it must.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { ensurePrerequisites } from './prerequisites.ts';
import { FlintError } from '../core/errors/index.ts';
import { runProgram } from './process.ts';

/** Bump when the build steps change in a way that changes the output. */
const BUILDER_VERSION = '1';

export type KernelArch = 'x86_64' | 'arm64';

export interface KernelBuildOptions {
  /** The configuration fragment applied on top of `make allnoconfig`. */
  readonly configFile: string;
  /** Root of Flint's build cache, e.g. /var/cache/flint. */
  readonly cacheDir: string;
  /** A linux-source tarball; default: the newest /usr/src/linux-source-*.tar.xz. */
  readonly sourceTarball?: string;
  readonly arch: KernelArch;
  readonly jobs?: number;
  readonly progress?: (message: string) => void;
  /** Install missing build tools through apt-get (as root); default: only name them. */
  readonly installPrerequisites?: boolean;
}

export interface KernelBuildResult {
  readonly cached: boolean;
  readonly dir: string;
  /** Uncompressed ELF kernel: what Firecracker boots on x86_64. */
  readonly vmlinux: string;
  /** Compressed kernel: what QEMU boots on x86_64 (bzImage) / arm64 (Image). */
  readonly bootImage: string;
  readonly seconds: number;
  readonly hash: string;
}

/** Parses `CONFIG_X=v` and `# CONFIG_X is not set` lines into a map (unset = 'n'). */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set?.[1] !== undefined && set[2] !== undefined) out.set(set[1], set[2]);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset?.[1] !== undefined) out.set(unset[1], 'n');
  }
  return out;
}

/** The options of `wanted` that the resolved `.config` does not carry with the wanted value. */
export function unmetOptions(wanted: ReadonlyMap<string, string>, resolved: ReadonlyMap<string, string>): string[] {
  const unmet: string[] = [];
  for (const [key, value] of wanted) {
    const have = resolved.get(key) ?? 'n';
    if (have !== value) unmet.push(`${key} (wanted ${value}, got ${have})`);
  }
  return unmet;
}

export function findSourceTarball(dir = '/usr/src'): string | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  const tarballs = names.filter((n) => /^linux-source-[\d.]+\.tar\.(xz|bz2|gz)$/.test(n)).sort();
  const newest = tarballs.at(-1);
  return newest === undefined ? undefined : join(dir, newest);
}

export async function buildKernel(opts: KernelBuildOptions): Promise<KernelBuildResult> {
  const started = process.hrtime.bigint();
  const say = opts.progress ?? (() => {});
  const tarball = opts.sourceTarball ?? findSourceTarball();
  if (tarball === undefined || !existsSync(tarball)) {
    throw new FlintError('FLINT_ERR_KERNEL_SOURCE_MISSING', `no linux-source tarball found${opts.sourceTarball ? ` at ${opts.sourceTarball}` : ' in /usr/src'}`);
  }
  ensurePrerequisites(['kernel-build'], { install: opts.installPrerequisites ?? false, progress: say });
  const fragment = readFileSync(opts.configFile, 'utf8');
  const tarballStat = statSync(tarball);
  const hash = createHash('sha256')
    .update(BUILDER_VERSION).update('\0')
    .update(opts.arch).update('\0')
    .update(basename(tarball)).update(String(tarballStat.size)).update('\0')
    .update(fragment)
    .digest('hex')
    .slice(0, 16);
  const dir = join(opts.cacheDir, 'kernel', hash);
  const bootName = opts.arch === 'x86_64' ? 'bzImage' : 'Image';
  const vmlinux = join(dir, 'vmlinux');
  const bootImage = join(dir, bootName);
  if (existsSync(join(dir, 'build.json')) && existsSync(vmlinux) && existsSync(bootImage)) {
    say(`kernel ${hash} is cached in ${dir}`);
    return { cached: true, dir, vmlinux, bootImage, seconds: Number(process.hrtime.bigint() - started) / 1e9, hash };
  }

  const srcRoot = join(opts.cacheDir, 'kernel', 'src');
  const treeName = basename(tarball).replace(/\.tar\.(xz|bz2|gz)$/, '');
  const tree = join(srcRoot, treeName);
  if (!existsSync(join(tree, 'Makefile'))) {
    say(`unpacking ${basename(tarball)}`);
    mkdirSync(srcRoot, { recursive: true });
    await runProgram('tar', ['-xaf', tarball, '-C', srcRoot]);
  }
  const karch = opts.arch === 'x86_64' ? 'x86' : 'arm64';
  const makeEnv = { ARCH: karch };
  say('configuring (allnoconfig + Flint options)');
  await runProgram('make', ['allnoconfig', `KCONFIG_ALLCONFIG=${opts.configFile}`], { cwd: tree, env: makeEnv });
  const unmet = unmetOptions(parseKconfig(fragment), parseKconfig(readFileSync(join(tree, '.config'), 'utf8')));
  if (unmet.length > 0) {
    throw new FlintError('FLINT_ERR_KERNEL_CONFIG_UNMET', `${opts.configFile}: ${unmet.length} option(s) did not keep their value:\n  ${unmet.join('\n  ')}`);
  }
  const jobs = opts.jobs ?? cpus().length;
  const targets = opts.arch === 'x86_64' ? ['bzImage', 'vmlinux'] : ['Image', 'vmlinux'];
  say(`compiling with ${jobs} job(s) — this takes a while`);
  let compiled = 0;
  let lastReport = Date.now();
  await runProgram('make', [`-j${jobs}`, ...targets], {
    cwd: tree,
    env: makeEnv,
    nice: true,
    tailLines: 40,
    onLine: (line) => {
      if (/^\s+CC\s/.test(line)) compiled += 1;
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        say(`  … ${compiled} files compiled`);
      }
    },
  });
  // Publish atomically: a build killed half-way never looks cached.
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  copyFileSync(join(tree, 'vmlinux'), join(tmp, 'vmlinux'));
  copyFileSync(join(tree, 'arch', karch, 'boot', bootName), join(tmp, bootName));
  copyFileSync(join(tree, '.config'), join(tmp, 'config'));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  writeFileSync(join(tmp, 'build.json'), `${JSON.stringify({ hash, arch: opts.arch, source: basename(tarball), configFile: opts.configFile, seconds: Math.round(seconds), builtAt: new Date().toISOString() }, null, 2)}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { cached: false, dir, vmlinux, bootImage, seconds, hash };
}
