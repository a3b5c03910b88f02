/**
 * `flint image build kernel|rootfs|all [options]` — builds guest images.
 */
import { parseArgs } from 'node:util';
import { arch as hostArch } from 'node:os';
import { join } from 'node:path';
import { FlintError } from '../../core/errors/index.ts';
import { buildKernel, type KernelArch } from '../../images/kernel.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../../images/paths.ts';
import type { CommandIo } from '../io.ts';

const HELP = `Usage: flint image build <kernel|rootfs|all> [options]

  kernel   Build the microVM kernel from Debian's linux-source package with
           Flint's configuration (images/kernel/microvm-<arch>.config).
           Cached by configuration hash: an unchanged kernel is not rebuilt.

Options:
  --arch x86_64|arm64     target architecture (default: this host's)
  --kernel-config FILE    kernel configuration fragment (default: Flint's)
  --source FILE           linux-source tarball (default: newest in /usr/src)
  --cache-dir DIR         build cache (default: ${DEFAULT_CACHE_DIR})
  --jobs N                parallel compile jobs (default: CPU count)
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const what = positionals[0];
  if (what !== 'kernel' && what !== 'rootfs' && what !== 'all') {
    throw new FlintError('FLINT_ERR_USAGE', `flint image build: say what to build (kernel, rootfs or all)\n\n${HELP}`);
  }
  const arch = (values.arch ?? defaultArch()) as KernelArch;
  if (arch !== 'x86_64' && arch !== 'arm64') throw new FlintError('FLINT_ERR_USAGE', `--arch must be x86_64 or arm64, not ${String(values.arch)}`);
  const cacheDir = values['cache-dir'] ?? DEFAULT_CACHE_DIR;
  const progress = (m: string): void => { io.stderr.write(`flint image: ${m}\n`); };
  const { statSync } = await import('node:fs');
  if (what === 'kernel' || what === 'all') {
    const result = await buildKernel({
      configFile: values['kernel-config'] ?? join(packageRoot(), 'images', 'kernel', `microvm-${arch}.config`),
      cacheDir,
      arch,
      ...(values.source === undefined ? {} : { sourceTarball: values.source }),
      ...(values.jobs === undefined ? {} : { jobs: Number(values.jobs) }),
      progress,
    });
    io.stdout.write([
      `kernel ${result.cached ? 'reused from cache' : `built in ${Math.round(result.seconds)} s`} (config hash ${result.hash})`,
      `  vmlinux   ${result.vmlinux}  ${formatBytes(statSync(result.vmlinux).size)}  (Firecracker)`,
      `  ${arch === 'x86_64' ? 'bzImage' : 'Image  '}   ${result.bootImage}  ${formatBytes(statSync(result.bootImage).size)}  (QEMU)`,
      '',
    ].join('\n'));
  }
  if (what === 'rootfs' || what === 'all') {
    throw new FlintError('FLINT_ERR_USAGE', 'flint image build rootfs: not available yet in this version');
  }
  return 0;
}
