import type { CatalogueEntry } from './entry.ts';

/** Error codes of guest image building. Keys are stable; never rename or reuse one. */
export const imageErrors = {
  FLINT_ERR_IMAGE_STEP_FAILED: {
    title: 'A step of the image build failed',
    hint: 'Read the program output quoted in the message; fix the cause (disk space, mirror, package names) and run the build again — finished steps are cached.',
  },
  FLINT_ERR_KERNEL_SOURCE_MISSING: {
    title: 'The Linux kernel source package is not installed',
    hint: 'Install it and the build tools: `apt-get install linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev xz-utils`, or pass --source PATH to a linux-source tarball.',
  },
  FLINT_ERR_KERNEL_CONFIG_UNMET: {
    title: 'The kernel configuration asks for options the kernel source cannot provide',
    hint: 'The message lists the options that did not keep their value: add the options they depend on to the configuration file, or remove them.',
  },
  FLINT_ERR_IMAGE_TOOL_MISSING: {
    title: 'A program the image build needs is not installed',
    hint: 'Install the Debian package the message names (as root: apt-get install PACKAGE) and run the build again.',
  },
  FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE: {
    title: 'The GitHub Actions runner could not be obtained',
    hint: 'On a host without access to GitHub, download the runner tarball elsewhere and pass it with --runner-tarball PATH; the checksum is verified either way.',
  },
  FLINT_ERR_ROOTFS_MIRROR_UNREACHABLE: {
    title: 'The package mirror for the root filesystem could not be used',
    hint: 'Check --mirror (and --suite): the mirror must be reachable from this host and carry that suite; use a local mirror or proxy if the host has no internet.',
  },
} as const satisfies Record<string, CatalogueEntry>;
