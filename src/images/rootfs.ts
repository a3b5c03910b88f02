/**
 * Builds the root filesystem of Flint's guests: Debian (or any suite a
 * debootstrap mirror carries, Ubuntu included) by default, or imported from
 * an OCI/Docker image archive. It holds systemd, the Flint guest agent, the
 * GitHub Actions runner (version pinned, checksum verified), Docker, git,
 * curl and a `runner` user allowed to use sudo. No password login and no
 * SSH server unless a debug image is asked for.
 *
 * The result is an ext4 image sized to its content plus headroom, readable
 * by the jailer's uid/gid. The debootstrap stage is cached by a hash of its
 * inputs, so rebuilding after a change to the Flint files is quick.
 */
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlintError } from '../core/errors/index.ts';
import { runProgram } from './process.ts';
import { packageRoot } from './paths.ts';

export type RootfsArch = 'x86_64' | 'arm64';

export interface RootfsBuildOptions {
  readonly output: string;
  readonly cacheDir: string;
  readonly arch: RootfsArch;
  /** debootstrap suite (default bookworm). */
  readonly suite?: string;
  /** debootstrap mirror; default: debootstrap's own default for the suite. */
  readonly mirror?: string;
  /** Import the base system from an OCI/Docker image archive instead of debootstrap. */
  readonly ociArchive?: string;
  /** The Actions runner tarball, for hosts that cannot download it. */
  readonly runnerTarball?: string;
  /** Expected SHA-256 of a runner tarball other than the pinned release (custom builds, tests). */
  readonly runnerSha256?: string;
  /** Free space left in the image, MiB (default 1024). */
  readonly headroomMiB?: number;
  /** Debug image: SSH server and a `runner:runner` password login. Never for production. */
  readonly debug?: boolean;
  readonly extraPackages?: readonly string[];
  readonly progress?: (message: string) => void;
  /** Replaces the download of the pinned runner (tests). */
  readonly fetchRunner?: (url: string, dest: string) => Promise<void>;
}

export interface RootfsBuildResult {
  readonly image: string;
  readonly sizeBytes: number;
  readonly contentBytes: number;
  readonly runnerVersion: string;
  readonly baseCached: boolean;
  readonly seconds: number;
}

interface RunnerPin {
  readonly version: string;
  readonly assets: Record<RootfsArch, { readonly file: string; readonly sha256: string }>;
  readonly urlTemplate: string;
}

export function runnerPin(): RunnerPin {
  // The pin is a file of this repository, checked by the tests that read it; not operator input.
  return JSON.parse(readFileSync(join(packageRoot(), 'images', 'rootfs', 'runner.json'), 'utf8')) as RunnerPin;
}

/** Runtime libraries of the Actions runner (.NET) by suite: the ICU library's name changes per release. */
const ICU_BY_SUITE: Readonly<Record<string, string>> = {
  bullseye: 'libicu67', bookworm: 'libicu72', trixie: 'libicu76', focal: 'libicu66', jammy: 'libicu70', noble: 'libicu74',
};

export function basePackages(suite: string, debug: boolean): string[] {
  const pkgs = [
    'systemd', 'systemd-sysv', 'dbus', 'udev', 'iproute2', 'iputils-ping', 'ca-certificates', 'curl', 'git', 'sudo',
    'docker.io', 'iptables', 'nftables', 'procps', 'tar', 'gzip', 'xz-utils', 'unzip', 'jq', 'less',
    'libkrb5-3', 'zlib1g', 'libssl3', 'liblttng-ust1',
  ];
  const icu = ICU_BY_SUITE[suite];
  if (icu !== undefined) pkgs.push(icu);
  if (debug) pkgs.push('openssh-server');
  return pkgs;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  // A stream opened without an encoding yields Buffers.
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function obtainRunner(opts: RootfsBuildOptions, workDir: string): Promise<{ path: string; version: string }> {
  const pin = runnerPin();
  const asset = pin.assets[opts.arch];
  let path = opts.runnerTarball;
  const url = pin.urlTemplate.replace('{version}', pin.version).replace('{file}', asset.file);
  // What to pass instead, for hosts without access to GitHub.
  const offlineHint = `Download ${asset.file} from ${url} on a machine that can, copy it here and pass --runner-tarball PATH (its SHA-256 must be ${asset.sha256}); for a runner of your own build add --runner-sha256 HEX.`;
  if (path === undefined) {
    path = join(workDir, asset.file);
    opts.progress?.(`downloading the Actions runner ${pin.version}`);
    try {
      await (opts.fetchRunner ?? download)(url, path);
    } catch (err) {
      throw new FlintError('FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE', `could not download the Actions runner ${pin.version} from ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, hint: offlineHint });
    }
  } else if (!existsSync(path)) {
    throw new FlintError('FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE', `--runner-tarball ${path} does not exist`, { hint: offlineHint });
  }
  const want = opts.runnerSha256 ?? asset.sha256;
  const have = await sha256File(path);
  if (have !== want) {
    throw new FlintError('FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE',
      `the runner tarball ${path} has SHA-256 ${have}, but ${opts.runnerSha256 ? '--runner-sha256 says' : `the published checksum of ${asset.file} is`} ${want}`,
      { hint: opts.runnerSha256 ? 'Check the file and the checksum you passed.' : `Use the release tarball ${asset.file} unchanged, or pass --runner-sha256 with the checksum of your own build.` });
  }
  return { path, version: opts.runnerSha256 ? 'custom' : pin.version };
}

async function download(url: string, dest: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
  writeFileSync(dest, Buffer.from(await res.arrayBuffer()));
}

async function requireTool(tool: string, pkg: string): Promise<void> {
  await runProgram('sh', ['-c', `command -v ${tool}`]).catch(() => {
    throw new FlintError('FLINT_ERR_IMAGE_TOOL_MISSING', `${tool} is not installed (as root: apt-get install ${pkg})`);
  });
}

/** The debootstrap stage, cached under cacheDir by a hash of its inputs. */
async function baseTree(opts: RootfsBuildOptions, suite: string, packages: readonly string[]): Promise<{ dir: string; cached: boolean }> {
  const debArch = opts.arch === 'x86_64' ? 'amd64' : 'arm64';
  const key = createHash('sha256').update(JSON.stringify({ v: 1, suite, mirror: opts.mirror ?? '', debArch, packages })).digest('hex').slice(0, 16);
  const dir = join(opts.cacheDir, 'rootfs', `base-${suite}-${debArch}-${key}`);
  if (existsSync(join(dir, '.flint-complete'))) return { dir, cached: true };
  await requireTool('debootstrap', 'debootstrap');
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(opts.cacheDir, 'rootfs'), { recursive: true });
  opts.progress?.(`debootstrap ${suite} (${debArch}) with ${packages.length} packages — several minutes`);
  let fetched = 0;
  const args = ['--variant=minbase', `--arch=${debArch}`, `--include=${packages.join(',')}`, suite, tmp];
  if (opts.mirror) args.push(opts.mirror);
  try {
    await runProgram('debootstrap', args, {
      tailLines: 25,
      onLine: (line) => {
        if (/^I: Retrieving /.test(line)) fetched += 1;
        if (/^I: (Extracting|Installing|Configuring) (base|core|required)/.test(line) || (fetched > 0 && fetched % 50 === 0 && /^I: Retrieving/.test(line))) {
          opts.progress?.(`  ${line.slice(3)}${fetched ? ` (${fetched} files fetched)` : ''}`);
        }
      },
    });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/Failed getting release file|Couldn't download|Failed getting|unable to resolve|Temporary failure/i.test(text)) {
      throw new FlintError('FLINT_ERR_ROOTFS_MIRROR_UNREACHABLE', `debootstrap could not use the mirror ${opts.mirror ?? '(debootstrap default)'} for ${suite}:\n${text}`, { cause: err });
    }
    throw err;
  }
  // apt's downloaded packages are not part of the image.
  rmSync(join(tmp, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
  mkdirSync(join(tmp, 'var', 'cache', 'apt', 'archives', 'partial'), { recursive: true });
  writeFileSync(join(tmp, '.flint-complete'), `${new Date().toISOString()}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { dir, cached: false };
}

/** Only the debootstrap stage (cached): lets a caller fetch packages while it has network. */
export async function ensureDebootstrapBase(opts: RootfsBuildOptions): Promise<{ dir: string; cached: boolean }> {
  const suite = opts.suite ?? 'bookworm';
  return baseTree(opts, suite, [...basePackages(suite, opts.debug ?? false), ...(opts.extraPackages ?? [])]);
}

async function importOci(archive: string, tree: string, arch: RootfsArch): Promise<void> {
  await runProgram(process.execPath, [join(packageRoot(), 'images', 'rootfs', 'oci-import.mjs'), archive, tree, arch === 'x86_64' ? 'amd64' : 'arm64']);
}

/** Files Flint adds to every image (guest agent, units, sudoers), from images/rootfs/overlay and guest/. */
function installFlintFiles(tree: string, debug: boolean): void {
  const root = packageRoot();
  cpSync(join(root, 'images', 'rootfs', 'overlay'), tree, { recursive: true, force: true });
  // The init shim of every Flint image (docs/guest-contract.md): the kernel
  // runs it as init=/sbin/flint-init; it assembles the overlay root and then
  // starts systemd. Debian's /sbin is /usr/sbin (merged /usr).
  mkdirSync(join(tree, 'usr', 'sbin'), { recursive: true });
  cpSync(join(root, 'guest', 'init-shim'), join(tree, 'usr', 'sbin', 'flint-init'));
  chmodSync(join(tree, 'usr', 'sbin', 'flint-init'), 0o755);
  for (const f of ['usr/lib/flint/agent']) chmodSync(join(tree, f), 0o755);
  chmodSync(join(tree, 'etc', 'sudoers.d', 'flint-runner'), 0o440);
  writeFileSync(join(tree, 'etc', 'hostname'), 'flint\n');
  writeFileSync(join(tree, 'etc', 'fstab'), '# The root is an overlay the init shim assembles; nothing to mount here.\n');
  if (!debug) {
    // No login on any console: the guest is a job sandbox, not a machine.
    rmSync(join(tree, 'etc', 'systemd', 'system', 'getty.target.wants'), { recursive: true, force: true });
  }
}

export async function buildRootfs(opts: RootfsBuildOptions): Promise<RootfsBuildResult> {
  const started = process.hrtime.bigint();
  const say = opts.progress ?? (() => {});
  const suite = opts.suite ?? 'bookworm';
  const debug = opts.debug ?? false;
  await requireTool('mkfs.ext4', 'e2fsprogs');
  await requireTool('chroot', 'coreutils');
  const work = join(opts.cacheDir, 'rootfs', `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // The runner first: a missing or wrong tarball fails before minutes of debootstrap.
    const runner = await obtainRunner(opts, work);
    const packages = [...basePackages(suite, debug), ...(opts.extraPackages ?? [])];
    const tree = join(work, 'tree');
    let baseCached = false;
    if (opts.ociArchive) {
      say(`importing ${opts.ociArchive}`);
      mkdirSync(tree);
      await importOci(opts.ociArchive, tree, opts.arch);
    } else {
      const base = await baseTree(opts, suite, packages);
      baseCached = base.cached;
      say(base.cached ? `base system reused from ${base.dir}` : 'base system built');
      await runProgram('cp', ['-a', '--reflink=auto', base.dir, tree]);
      rmSync(join(tree, '.flint-complete'), { force: true });
    }
    say('adding the runner user, the Actions runner and the Flint agent');
    await runProgram('chroot', [tree, 'sh', '-c', [
      'id runner >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --uid 1001 runner',
      'getent group docker >/dev/null && usermod -aG docker runner || true',
      'passwd -l root >/dev/null',
      debug ? 'echo runner:runner | chpasswd' : 'passwd -l runner >/dev/null',
    ].join(' && ')]);
    const runnerDir = join(tree, 'home', 'runner', 'actions-runner');
    mkdirSync(runnerDir, { recursive: true });
    await runProgram('tar', ['-xzf', runner.path, '-C', runnerDir]);
    await runProgram('chroot', [tree, 'chown', '-R', 'runner:runner', '/home/runner']);
    installFlintFiles(tree, debug);
    await runProgram('chroot', [tree, 'sh', '-c', 'systemctl enable flint-agent.service flint-docker-storage.service >/dev/null 2>&1; ' +
      (debug ? 'true' : 'systemctl disable ssh.service >/dev/null 2>&1; rm -f /etc/ssh/ssh_host_*; true')]);
    writeFileSync(join(tree, 'etc', 'flint-image.json'), `${JSON.stringify({ suite, arch: opts.arch, runner: runner.version, debug, builtAt: new Date().toISOString() })}\n`);

    const contentBytes = Number((await capture('du', ['-sb', tree])).split(/\s/)[0]);
    const headroom = (opts.headroomMiB ?? 1024) * 1024 * 1024;
    // ext4 metadata (inode tables, journal) takes ~6 % of a small image.
    const size = Math.ceil(((contentBytes * 1.1 + headroom) / (1 << 20))) * (1 << 20);
    say(`writing the ext4 image (${Math.round(size / (1 << 20))} MiB)`);
    const tmpImage = `${opts.output}.tmp`;
    rmSync(tmpImage, { force: true });
    await runProgram('mkfs.ext4', ['-q', '-F', '-L', 'flint-root', '-m', '0', '-d', tree, tmpImage, `${size / 1024}k`]);
    // The jailer runs Firecracker as an unprivileged uid (123 by default): the shared base image must be readable by it.
    chmodSync(tmpImage, 0o644);
    renameSync(tmpImage, opts.output);
    return { image: opts.output, sizeBytes: statSync(opts.output).size, contentBytes, runnerVersion: runner.version, baseCached, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function capture(cmd: string, args: readonly string[]): Promise<string> {
  let out = '';
  await runProgram(cmd, args, { onLine: (l) => { out += `${l}\n`; } });
  return out;
}
