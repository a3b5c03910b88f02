/**
 * How `buildRootfs` fails before any long step: a missing tool names its
 * Debian package; a runner tarball that is missing, unreachable or not the
 * pinned release says what to pass instead. Fast: every case stops before
 * debootstrap (an empty cache directory of its own, never the shared one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRootfs, runnerPin, sha256File, type RootfsBuildOptions } from './rootfs.ts';
import { packageRoot } from './paths.ts';
import { isFlintError } from '../core/errors/index.ts';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-rootfs-build-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function options(dir: string, extra: Partial<RootfsBuildOptions>): RootfsBuildOptions {
  return { output: join(dir, 'out.ext4'), cacheDir: join(dir, 'cache'), arch: 'x86_64', ...extra };
}

test('a runner tarball whose checksum is not the one passed fails before debootstrap, naming both checksums', async (t) => {
  const dir = tempDir(t);
  const tarball = join(dir, 'runner.tar.gz');
  writeFileSync(tarball, 'not the runner you think\n');
  const have = await sha256File(tarball);
  await assert.rejects(buildRootfs(options(dir, { runnerTarball: tarball, runnerSha256: '0'.repeat(64) })), (err) =>
    isFlintError(err, 'FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE') && err.message.includes(have) && err.message.includes('0'.repeat(64))
      && /--runner-sha256 says/.test(err.message) && /checksum you passed/.test(err.hint));
  assert.deepEqual(readdirSync(join(dir, 'cache', 'rootfs')), [], 'the work directory is removed');
});

test('a tarball that is not the pinned release says to pass --runner-sha256 for a custom build', async (t) => {
  const dir = tempDir(t);
  const tarball = join(dir, 'runner.tar.gz');
  writeFileSync(tarball, 'a custom runner build\n');
  const pin = runnerPin();
  await assert.rejects(buildRootfs(options(dir, { runnerTarball: tarball })), (err) =>
    isFlintError(err, 'FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE') && err.message.includes(pin.assets.x86_64.sha256)
      && /--runner-sha256/.test(err.hint) && err.hint.includes(pin.assets.x86_64.file));
});

test('a --runner-tarball that does not exist says which file to download and pass', async (t) => {
  const dir = tempDir(t);
  const pin = runnerPin();
  await assert.rejects(buildRootfs(options(dir, { runnerTarball: join(dir, 'nowhere.tar.gz') })), (err) =>
    isFlintError(err, 'FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE') && /nowhere\.tar\.gz does not exist/.test(err.message)
      && err.hint.includes(pin.assets.x86_64.file) && err.hint.includes(pin.assets.x86_64.sha256) && /--runner-tarball PATH/.test(err.hint));
});

test('a host that cannot download the runner is told to pass --runner-tarball, with the file and its URL', async (t) => {
  const dir = tempDir(t);
  const pin = runnerPin();
  const urls: string[] = [];
  await assert.rejects(buildRootfs(options(dir, { fetchRunner: async (url) => { urls.push(url); throw new Error('getaddrinfo ENOTFOUND'); } })), (err) =>
    isFlintError(err, 'FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE') && /ENOTFOUND/.test(err.message) && /--runner-tarball PATH/.test(err.hint)
      && urls.length === 1 && err.hint.includes(urls[0] ?? '?') && urls[0]?.endsWith(`/v${pin.version}/${pin.assets.x86_64.file}`) === true);
});

test('a host without debootstrap is told which package to install, after the runner checked out and before anything is built', async (t) => {
  if (!requirePrereqs(t, root, program('unshare'), program('debootstrap'))) return;
  const dir = tempDir(t);
  const tarball = join(dir, 'runner.tar.gz');
  writeFileSync(tarball, 'stub\n');
  const script = join(dir, 'build.mts');
  writeFileSync(script, [
    `import { buildRootfs } from ${JSON.stringify(join(packageRoot(), 'src', 'images', 'rootfs.ts'))};`,
    `const opts = ${JSON.stringify(options(dir, { runnerTarball: tarball, runnerSha256: await sha256File(tarball) }))};`,
    'try { await buildRootfs(opts); console.log(JSON.stringify({ ok: true })); }',
    'catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message, hint: err.hint })); }',
  ].join('\n'));
  // A private mount namespace in which debootstrap is an empty, non-executable file: a host without it.
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /dev/null "$(command -v debootstrap || echo /usr/sbin/debootstrap)" && exec "$0" --import tsx "$1"', process.execPath, script],
    { cwd: packageRoot(), encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { code?: string; message?: string; hint?: string };
  assert.equal(result.code, 'FLINT_ERR_IMAGE_TOOL_MISSING', r.stdout);
  assert.match(result.message ?? '', /debootstrap is not installed \(as root: apt-get install debootstrap\)/);
  assert.deepEqual(readdirSync(join(dir, 'cache', 'rootfs')), [], 'no half-built base system is left');
});
