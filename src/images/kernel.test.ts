import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel, parseKconfig, unmetOptions } from './kernel.ts';
import { isFlintError } from '../core/errors/index.ts';
import { declaredFor, requirePrereqs } from '../../test/helpers/prereq.ts';

test('kconfig lines parse into values, "is not set" into n', () => {
  const m = parseKconfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n# a comment\n');
  assert.equal(m.get('CONFIG_A'), 'y');
  assert.equal(m.get('CONFIG_B'), 'n');
  assert.equal(m.get('CONFIG_C'), '"x y"');
});

test('an option that lost its value to a missing dependency is reported', () => {
  const unmet = unmetOptions(parseKconfig('CONFIG_A=y\nCONFIG_B=y\n# CONFIG_MODULES is not set\n'), parseKconfig('CONFIG_A=y\n'));
  assert.deepEqual(unmet, ['CONFIG_B (wanted y, got n)']);
});

test("Flint's kernel configuration asks for what Docker in the guest needs", () => {
  const cfg = parseKconfig(readFileSync(new URL('../../images/kernel/microvm-x86_64.config', import.meta.url), 'utf8'));
  for (const key of ['CONFIG_VIRTIO_MMIO', 'CONFIG_VIRTIO_BLK', 'CONFIG_VIRTIO_NET', 'CONFIG_VIRTIO_VSOCKETS', 'CONFIG_HW_RANDOM_VIRTIO',
    'CONFIG_EXT4_FS', 'CONFIG_OVERLAY_FS', 'CONFIG_CGROUPS', 'CONFIG_MEMCG', 'CONFIG_PID_NS', 'CONFIG_NET_NS', 'CONFIG_USER_NS',
    'CONFIG_NF_TABLES', 'CONFIG_IP_NF_IPTABLES', 'CONFIG_IP_NF_NAT', 'CONFIG_BRIDGE', 'CONFIG_VETH', 'CONFIG_BRIDGE_NETFILTER', 'CONFIG_SERIO_I8042',
    'CONFIG_IKCONFIG_PROC', 'CONFIG_BLK_DEV_THROTTLING', 'CONFIG_CGROUP_PERF', 'CONFIG_CGROUP_HUGETLB', 'CONFIG_NET_CLS_CGROUP', 'CONFIG_BRIDGE_VLAN_FILTERING']) {
    assert.equal(cfg.get(key), 'y', key);
  }
  assert.equal(cfg.get('CONFIG_MODULES'), 'n', 'no loadable modules');
});

test('a missing kernel source tarball fails with what to install', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-kernel-'));
  try {
    await assert.rejects(
      buildKernel({ configFile: '/dev/null', cacheDir: dir, arch: 'x86_64', sourceTarball: join(dir, 'missing.tar.xz') }),
      (err) => isFlintError(err, 'FLINT_ERR_KERNEL_SOURCE_MISSING') && /apt-get install linux-source/.test(err.hint),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A stand-in for Debian's linux-source tarball: its Makefile answers
 * `allnoconfig` (copying the fragment, minus the symbols it "cannot
 * provide") and the image targets (writing small files), and counts the
 * compiles in the unpacked tree so a test can tell a cache hit from a build.
 */
function fakeLinuxSource(dir: string): string {
  const tree = join(dir, 'pkg', 'linux-source-9.9');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'Makefile'), [
    '.PHONY: allnoconfig vmlinux bzImage',
    'allnoconfig:',
    '\tgrep -v CONFIG_NEEDS_MISSING_DEPENDENCY $(KCONFIG_ALLCONFIG) > .config',
    'vmlinux:',
    '\techo "vmlinux of $$(cat .config | tr \'\\n\' \' \')" > vmlinux',
    'bzImage:',
    '\tmkdir -p arch/x86/boot && echo bzImage > arch/x86/boot/bzImage && echo compile >> compiles.log',
    '',
  ].join('\n'));
  const tarball = join(dir, 'linux-source-9.9.tar.xz');
  execFileSync('tar', ['-cJf', tarball, '-C', join(dir, 'pkg'), 'linux-source-9.9']);
  return tarball;
}

function compiles(cacheDir: string): number {
  const log = join(cacheDir, 'kernel', 'src', 'linux-source-9.9', 'compiles.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
}

test('building the same kernel twice reuses the cached one; a changed configuration builds again', async (t) => {
  if (!requirePrereqs(t, ...declaredFor('kernel-build'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'flint-kernel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sourceTarball = fakeLinuxSource(dir);
  const configFile = join(dir, 'flint.config');
  writeFileSync(configFile, 'CONFIG_64BIT=y\n# CONFIG_MODULES is not set\n');
  const cacheDir = join(dir, 'cache');
  const opts = { configFile, cacheDir, arch: 'x86_64' as const, sourceTarball, jobs: 1 };

  const first = await buildKernel(opts);
  assert.equal(first.cached, false);
  assert.equal(compiles(cacheDir), 1);
  assert.match(readFileSync(first.vmlinux, 'utf8'), /CONFIG_64BIT=y/);
  assert.equal(readFileSync(first.bootImage, 'utf8'), 'bzImage\n');
  assert.match(readFileSync(join(first.dir, 'config'), 'utf8'), /CONFIG_64BIT=y/);
  assert.equal(JSON.parse(readFileSync(join(first.dir, 'build.json'), 'utf8')).hash, first.hash);

  const second = await buildKernel(opts);
  assert.equal(second.cached, true);
  assert.deepEqual([second.dir, second.hash, second.vmlinux, second.bootImage], [first.dir, first.hash, first.vmlinux, first.bootImage]);
  assert.equal(compiles(cacheDir), 1, 'the cached kernel is not compiled again');

  writeFileSync(configFile, 'CONFIG_64BIT=y\nCONFIG_SMP=y\n# CONFIG_MODULES is not set\n');
  const third = await buildKernel(opts);
  assert.equal(third.cached, false);
  assert.notEqual(third.hash, first.hash);
  assert.equal(compiles(cacheDir), 2);
  assert.match(readFileSync(third.vmlinux, 'utf8'), /CONFIG_SMP=y/);
  assert.ok(existsSync(first.vmlinux), 'the kernel of the other configuration stays cached');
});

test('an option the kernel source drops fails the build naming it, and nothing is cached', async (t) => {
  if (!requirePrereqs(t, ...declaredFor('kernel-build'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'flint-kernel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'flint.config');
  writeFileSync(configFile, 'CONFIG_64BIT=y\nCONFIG_NEEDS_MISSING_DEPENDENCY=y\n');
  const cacheDir = join(dir, 'cache');
  await assert.rejects(
    buildKernel({ configFile, cacheDir, arch: 'x86_64', sourceTarball: fakeLinuxSource(dir), jobs: 1 }),
    (err) => isFlintError(err, 'FLINT_ERR_KERNEL_CONFIG_UNMET') && /CONFIG_NEEDS_MISSING_DEPENDENCY \(wanted y, got n\)/.test(err.message),
  );
  assert.equal(compiles(cacheDir), 0);
  assert.deepEqual(readdirSync(join(cacheDir, 'kernel')), ['src'], 'no kernel directory that could look cached');
});
