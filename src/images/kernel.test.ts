import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel, parseKconfig, unmetOptions } from './kernel.ts';
import { isFlintError } from '../core/errors/index.ts';

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
    'CONFIG_NF_TABLES', 'CONFIG_IP_NF_IPTABLES', 'CONFIG_IP_NF_NAT', 'CONFIG_BRIDGE', 'CONFIG_VETH', 'CONFIG_BRIDGE_NETFILTER', 'CONFIG_SERIO_I8042']) {
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
