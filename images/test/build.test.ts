/**
 * The test image build: outputs, caching, and what the jailer's uid needs.
 * Booting it is tested by src/adapters/hypervisor/qemu.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import { ensureTestImage, testImagePrereqs } from '../../test/helpers/test-image.ts';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

test('the guest scripts are valid POSIX sh for busybox', async (t) => {
  if (!requirePrereqs(t, program('busybox'))) return;
  for (const f of ['guest/init-shim', 'guest/test-agent', 'images/test/initramfs-init', 'images/test/build.sh']) {
    await execFileP('busybox', ['sh', '-n', join(repo, f)]);
  }
});

test('a second build of an unchanged image is a cache hit', async (t) => {
  if (!requirePrereqs(t, ...testImagePrereqs)) return;
  const img = await ensureTestImage();
  const before = statSync(img.rootfs).mtimeMs;
  const t0 = performance.now();
  const { stdout } = await execFileP(join(repo, 'images/test/build.sh'), [img.dir]);
  t.diagnostic(`cached build check: ${Math.round(performance.now() - t0)} ms`);
  assert.match(stdout, /up to date/);
  assert.equal(statSync(img.rootfs).mtimeMs, before, 'nothing was rebuilt');
  assert.match(img.kernelArgs, /root=\/dev\/vda ro init=\/sbin\/flint-init/);
  assert.doesNotMatch(img.kernelArgs, /i8042\.nopnp/, 'Ctrl-Alt-Del needs the ACPI-described keyboard controller');
});

test('the jailer uid 123 / gid 100 can read the image and every file in it', async (t) => {
  if (!requirePrereqs(t, root, program('setpriv'), program('debugfs'), ...testImagePrereqs)) return;
  const img = await ensureTestImage();
  for (const f of [img.kernel, img.initrd, img.rootfs]) {
    await execFileP('setpriv', ['--reuid', '123', '--regid', '100', '--clear-groups', '--', 'head', '-c', '1', f]);
  }
  // Every inode in the filesystem: "others" may read, and may enter directories.
  const { stdout } = await execFileP('debugfs', ['-R', 'ls -l -p /', img.rootfs]);
  assert.ok(stdout.includes('/bin/'), stdout);
  const check = async (dir: string): Promise<void> => {
    const out = (await execFileP('debugfs', ['-R', `ls -p ${dir}`, img.rootfs])).stdout;
    for (const line of out.split('\n')) {
      // -p format: /inode/mode/uid/gid/name/size/
      const parts = line.split('/');
      const mode = parts[2];
      const name = parts[5];
      // lost+found is mke2fs's own, empty and root-only by design.
      if (!mode || name === undefined || name === '.' || name === '..' || name === '' || name === 'lost+found') continue;
      const m = parseInt(mode, 8);
      const isDir = (m & 0o170000) === 0o040000;
      const isLink = (m & 0o170000) === 0o120000;
      if (!isLink) assert.ok((m & 0o004) !== 0, `${dir}/${name} is not world-readable (mode ${mode})`);
      if (isDir) {
        assert.ok((m & 0o001) !== 0, `${dir}/${name} is not world-searchable`);
        await check(`${dir === '/' ? '' : dir}/${name}`);
      }
    }
  };
  await check('/');
});
