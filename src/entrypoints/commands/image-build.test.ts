import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './image-build.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { declaredFor, requirePrereqs } from '../../../test/helpers/prereq.ts';

function io(): { out: string[]; err: string[]; io: Parameters<typeof run>[1] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (c: string) => out.push(c) }, stderr: { write: (c: string) => err.push(c) }, env: {} } };
}

test('flint image build --help lists the offline options', async () => {
  const s = io();
  assert.equal(await run(['--help'], s.io), 0);
  assert.match(s.out.join(''), /--runner-tarball FILE/);
  assert.match(s.out.join(''), /--from-oci FILE/);
});

test('flint image build without a target, with an unknown --arch or a bad --jobs is a usage error', async () => {
  for (const argv of [[], ['everything'], ['kernel', '--arch', 'riscv64'], ['kernel', '--jobs', 'many'], ['kernel', '--jobs', '0'], ['rootfs', '--headroom=-5'], ['rootfs', '--headroom', '1.5']]) {
    await assert.rejects(run(argv, io().io), (err) => isFlintError(err, 'FLINT_ERR_USAGE'), argv.join(' '));
  }
});

test('flint image build kernel twice: built, then reported as reused from the cache', async (t) => {
  if (!requirePrereqs(t, ...declaredFor('kernel-build'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'flint-image-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tree = join(dir, 'pkg', 'linux-source-9.9');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'Makefile'), '.PHONY: allnoconfig vmlinux bzImage\nallnoconfig:\n\tcp $(KCONFIG_ALLCONFIG) .config\nvmlinux:\n\techo vmlinux > vmlinux\nbzImage:\n\tmkdir -p arch/x86/boot && echo bzImage > arch/x86/boot/bzImage\n');
  const source = join(dir, 'linux-source-9.9.tar.xz');
  execFileSync('tar', ['-cJf', source, '-C', join(dir, 'pkg'), 'linux-source-9.9']);
  writeFileSync(join(dir, 'k.config'), 'CONFIG_64BIT=y\n');
  const argv = ['kernel', '--arch', 'x86_64', '--source', source, '--kernel-config', join(dir, 'k.config'), '--cache-dir', join(dir, 'cache'), '--jobs', '1'];
  const first = io();
  assert.equal(await run(argv, first.io), 0);
  assert.match(first.out.join(''), /^kernel built in \d+ s \(config hash [0-9a-f]{16}\)/);
  const bzImage = /bzImage\s+(\S+)/.exec(first.out.join(''))?.[1];
  assert.ok(bzImage !== undefined);
  assert.equal(readFileSync(bzImage, 'utf8'), 'bzImage\n');
  const second = io();
  assert.equal(await run(argv, second.io), 0);
  assert.match(second.out.join(''), /^kernel reused from cache/);
  assert.match(second.err.join(''), /is cached in/);
});

test('flint image build all without a runner tarball on a host that cannot fetch one fails before compiling the kernel', async (t) => {
  if (!requirePrereqs(t, ...declaredFor('kernel-build'), ...declaredFor('rootfs-build'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'flint-image-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tree = join(dir, 'pkg', 'linux-source-9.9');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'Makefile'), 'allnoconfig vmlinux bzImage:\n\ttouch $@\n');
  const source = join(dir, 'linux-source-9.9.tar.xz');
  execFileSync('tar', ['-cJf', source, '-C', join(dir, 'pkg'), 'linux-source-9.9']);
  const cache = join(dir, 'cache');
  const argv = ['all', '--no-install', '--source', source, '--cache-dir', cache, '--runner-tarball', join(dir, 'no-such-runner.tar.gz')];
  const s = io();
  await assert.rejects(run(argv, s.io), (err) => isFlintError(err, 'FLINT_ERR_RUNNER_TARBALL_UNAVAILABLE'));
  assert.doesNotMatch(s.err.join(''), /unpacking|compiling/, 'the kernel was not started');
  assert.throws(() => readdirSync(join(cache, 'kernel')), { code: 'ENOENT' });
});
