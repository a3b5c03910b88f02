/**
 * `flint image build kernel|rootfs|all [options]` — builds guest images.
 */
import { parseArgs } from 'node:util';
import { arch as hostArch } from 'node:os';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrerequisites } from '../../images/prerequisites.ts';
import type { Purpose } from '../../images/prerequisites.ts';
import { FlintError } from '../../core/errors/index.ts';
import { buildKernel, type KernelArch } from '../../images/kernel.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../../images/paths.ts';
import { buildRootfs } from '../../images/rootfs.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint image build <kernel|rootfs|all> [options]

  kernel   Build the microVM kernel from Debian's linux-source package with
           Flint's configuration (images/kernel/microvm-<arch>.config).
           Cached by configuration hash: an unchanged kernel is not rebuilt.

  rootfs   Build the root filesystem (ext4): Debian via debootstrap, or an
           imported container image, with systemd, Docker, git, curl, the
           Flint guest agent and the GitHub Actions runner (pinned version,
           checksum verified).
  all      Both.

Options:
  --arch x86_64|arm64     target architecture (default: this host's)
  --kernel-config FILE    kernel configuration fragment (default: Flint's)
  --source FILE           linux-source tarball (default: newest in /usr/src)
  --cache-dir DIR         build cache (default: ${DEFAULT_CACHE_DIR})
  --jobs N                parallel compile jobs (default: CPU count)
  --output FILE           root filesystem image to write
                          (default: <cache-dir>/rootfs/flint-<suite>-<arch>.ext4)
  --suite NAME            debootstrap suite (default: bookworm)
  --mirror URL            debootstrap mirror (default: debootstrap's own; an
                          Ubuntu mirror works with an Ubuntu suite)
  --from-oci FILE         import the base system from an OCI/docker-save archive
  --runner-tarball FILE   the Actions runner tarball (hosts without GitHub access)
  --runner-sha256 HEX     expected checksum of a runner tarball that is not the
                          pinned release (custom builds)
  --headroom MIB          free space in the image (default: 1024)
  --packages A,B          more Debian packages to install
  --debug                 debug image: SSH server and runner:runner login.
                          Never use it for production runners.
  --no-install            do not install missing build tools; name them and stop.
                          (As root, the build otherwise installs the Debian
                          packages it needs through apt-get: see
                          src/prerequisites.json.)
`;

function defaultArch(): KernelArch {
  return hostArch() === 'arm64' ? 'arm64' : 'x86_64';
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      arch: { type: 'string' },
      'kernel-config': { type: 'string' },
      source: { type: 'string' },
      'cache-dir': { type: 'string' },
      jobs: { type: 'string' },
      output: { type: 'string' },
      suite: { type: 'string' },
      mirror: { type: 'string' },
      'from-oci': { type: 'string' },
      'runner-tarball': { type: 'string' },
      'runner-sha256': { type: 'string' },
      headroom: { type: 'string' },
      packages: { type: 'string' },
      debug: { type: 'boolean' },
      'no-install': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const what = positionals[0];
  if (positionals.length > 1) throw new FlintError('FLINT_ERR_USAGE', `build one target (kernel, rootfs or all), not ${positionals.join(' ')}`);
  if (what !== 'kernel' && what !== 'rootfs' && what !== 'all') {
    throw new FlintError('FLINT_ERR_USAGE', 'say what to build: kernel, rootfs or all');
  }
  const archValue = values.arch ?? defaultArch();
  if (archValue !== 'x86_64' && archValue !== 'arm64') throw new FlintError('FLINT_ERR_USAGE', `--arch must be x86_64 or arm64, not ${archValue}`);
  const arch: KernelArch = archValue;
  const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs >= 1)) throw new FlintError('FLINT_ERR_USAGE', '--jobs takes a whole number ≥ 1');
  const cacheDir = values['cache-dir'] ?? DEFAULT_CACHE_DIR;
  const progress = (m: string): void => { io.stderr.write(`flint image: ${m}\n`); };
  // Everything the build needs from the host, checked (and as root installed)
  // before anything is built, so a missing tool never fails a build halfway.
  const purposes: Purpose[] = [];
  if (what === 'kernel' || what === 'all') purposes.push('kernel-build', ...(values.source === undefined ? ['kernel-source' as const] : []));
  if (what === 'rootfs' || what === 'all') purposes.push('rootfs-build');
  ensurePrerequisites(purposes, { install: values['no-install'] !== true, progress });
  // `all` builds the root filesystem first: it checks the Actions runner
  // tarball in its first second, so a host that cannot reach GitHub learns
  // it needs --runner-tarball before the kernel's 20-minute compile, not after.
  if (what === 'rootfs' || what === 'all') {
    const suite = values.suite ?? 'bookworm';
    const opt = <T,>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
    const headroom = values.headroom === undefined ? undefined : Number(values.headroom);
    if (headroom !== undefined && !(Number.isInteger(headroom) && headroom >= 0)) throw new FlintError('FLINT_ERR_USAGE', '--headroom takes a whole number of MiB');
    const result = await buildRootfs({
      output: values.output ?? join(cacheDir, 'rootfs', `flint-${suite}-${arch}.ext4`),
      cacheDir,
      arch,
      suite,
      debug: values.debug ?? false,
      progress,
      ...opt('mirror', values.mirror),
      ...opt('ociArchive', values['from-oci']),
      ...opt('runnerTarball', values['runner-tarball']),
      ...opt('runnerSha256', values['runner-sha256']),
      ...opt('headroomMiB', headroom),
      ...opt('extraPackages', values.packages?.split(',').map((p) => p.trim()).filter(Boolean)),
    });
    io.stdout.write([
      `root filesystem built in ${Math.round(result.seconds)} s${result.baseCached ? ' (base system from cache)' : ''}`,
      `  image     ${result.image}  ${formatBytes(result.sizeBytes)} (content ${formatBytes(result.contentBytes)})`,
      `  runner    ${result.runnerVersion}${values.debug ? '\n  DEBUG IMAGE: SSH server and password login enabled' : ''}`,
      '',
    ].join('\n'));
  }
  if (what === 'kernel' || what === 'all') {
    const result = await buildKernel({
      configFile: values['kernel-config'] ?? join(packageRoot(), 'images', 'kernel', `microvm-${arch}.config`),
      cacheDir,
      arch,
      ...(values.source === undefined ? {} : { sourceTarball: values.source }),
      ...(jobs === undefined ? {} : { jobs }),
      progress,
    });
    io.stdout.write([
      `kernel ${result.cached ? 'reused from cache' : `built in ${Math.round(result.seconds)} s`} (config hash ${result.hash})`,
      `  vmlinux   ${result.vmlinux}  ${formatBytes(statSync(result.vmlinux).size)}  (Firecracker)`,
      `  ${arch === 'x86_64' ? 'bzImage' : 'Image  '}   ${result.bootImage}  ${formatBytes(statSync(result.bootImage).size)}  (QEMU)`,
      '',
    ].join('\n'));
  }
  return 0;
}
