import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDiskProvisioner, CONFIG_FILE, SCRATCH_FILE, TEMPLATES_DIR } from './provisioner.ts';
import type { ScratchStrategy } from './scratch.ts';
import { encodeEnvFile } from './config-drive.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';

const GiB = 1024 ** 3;
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } });
const prereqs = [root, program('mkfs.ext4'), program('dumpe2fs'), program('fsck.ext4'), program('busybox')];

function stateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-disks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const owner = { uid: 123, gid: 100 };
const nasty = {
  FLINT_RUNNER_NAME: 'flint-h7k2-00001',
  FLINT_JITCONFIG: `it's "quoted" $HOME \`id\` \\n\nsecond line\n'`,
  FLINT_GITHUB_URL: 'http://10.0.0.1:8080/api/v3',
};

/** Sources flint/env from the archive with busybox sh, as the guest would, and prints each variable NUL-separated. */
function readBack(t: TestContext, drive: string, keys: string[]): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'flint-drive-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  run('busybox', ['tar', '-x', '-f', drive, '-C', dir]);
  const script = `. ${dir}/flint/env; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`;
  const values = run('busybox', ['sh', '-c', script]).split('\0');
  return Object.fromEntries(keys.map((k, i) => [k, values[i] ?? '']));
}

for (const strategy of ['clone', 'mkfs'] as ScratchStrategy[]) {
  test(`${strategy}: a 40 GiB scratch disk is sparse, clean ext4 without journal or lazy init left, owned by the VM uid`, async (t) => {
    if (!requirePrereqs(t, ...prereqs)) return;
    const state = stateDir(t);
    const disks = createDiskProvisioner({ stateDir: state, strategy });
    const work = join(state, 'vms', 'h7k2-00001');
    const got = await disks.prepare('h7k2-00001', work, 40 * GiB, nasty, owner);
    assert.deepEqual(got, { scratch: join(work, SCRATCH_FILE), config: join(work, CONFIG_FILE) });
    const st = statSync(got.scratch);
    assert.equal(st.size, 40 * GiB);
    assert.ok(st.blocks * 512 < 32 * 1024 ** 2, `allocated ${st.blocks * 512} bytes`);
    assert.equal(st.uid, 123);
    assert.equal(st.gid, 100);
    assert.equal(st.mode & 0o777, 0o600);
    run('fsck.ext4', ['-n', '-f', got.scratch]); // throws on a non-zero exit
    const dump = run('dumpe2fs', [got.scratch]);
    assert.doesNotMatch(dump, /has_journal/);
    assert.match(dump, /Reserved block count:\s+0\n/);
    const groups = dump.match(/^Group \d+:/gm)?.length ?? 0;
    assert.equal(dump.match(/ITABLE_ZEROED/g)?.length, groups, 'every group marked zeroed: no lazy inode-table init in the guest');
    assert.equal(existsSync(join(state, TEMPLATES_DIR)), strategy === 'clone', 'only the clone strategy keeps a template');
  });
}

test('the config drive is 0400, owned by the VM uid, whole sectors, and values with quotes, newlines and $ survive the shell', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const state = stateDir(t);
  const got = await createDiskProvisioner({ stateDir: state }).prepare('h7k2-00002', join(state, 'w'), 64 * 1024 ** 2, nasty, owner);
  const st = statSync(got.config);
  assert.equal(st.mode & 0o777, 0o400);
  assert.equal(st.uid, 123);
  assert.equal(st.gid, 100);
  assert.equal(st.size % 512, 0);
  assert.deepEqual(readBack(t, got.config, Object.keys(nasty)), nasty);
});

test('remove deletes both files and may run again; prepare over leftovers of a crash replaces them', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const state = stateDir(t);
  const disks = createDiskProvisioner({ stateDir: state });
  const work = join(state, 'w');
  await disks.prepare('h7k2-00003', work, 64 * 1024 ** 2, { A: '1' }, owner);
  const again = await disks.prepare('h7k2-00003', work, 64 * 1024 ** 2, { A: '2' }, owner);
  assert.deepEqual(readBack(t, again.config, ['A']), { A: '2' });
  await disks.remove('h7k2-00003', work);
  assert.deepEqual(readdirSync(work), []);
  await disks.remove('h7k2-00003', work);
  await disks.remove('h7k2-00003', join(state, 'never-made'));
});

test('concurrent VMs of one size share one template made once', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const state = stateDir(t);
  const disks = createDiskProvisioner({ stateDir: state });
  await Promise.all(Array.from({ length: 6 }, (_, i) => disks.prepare(`h7k2-0000${i}`, join(state, `w${i}`), 10 * GiB, {}, owner)));
  assert.equal(readdirSync(join(state, TEMPLATES_DIR)).length, 1, 'one template, no temporary leftovers');
});

test('an unusable template cache falls back to mkfs and still yields a good disk', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const state = stateDir(t);
  const blocker = join(state, 'not-a-dir');
  writeFileSync(blocker, '');
  const warnings: string[] = [];
  const disks = createDiskProvisioner({ stateDir: state, templatesDir: blocker, log: { warn: (_o, m) => warnings.push(m) } });
  const got = await disks.prepare('h7k2-00004', join(state, 'w'), 1 * GiB, {}, owner);
  run('fsck.ext4', ['-n', '-f', got.scratch]);
  assert.equal(warnings.length, 1);
});

test('a failure leaves no file behind and is a coded error that never quotes a config value', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const state = stateDir(t);
  const disks = createDiskProvisioner({ stateDir: state });
  const work = join(state, 'w');
  await assert.rejects(disks.prepare('h7k2-00005', work, 1 * GiB, { 'BAD KEY': 'secret-jit-value' }, owner), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_DISK_BAD_CONFIG_VALUE'));
    assert.doesNotMatch(e.message, /secret-jit-value/);
    return true;
  });
  assert.deepEqual(readdirSync(work), []);
  await assert.rejects(disks.prepare('h7k2-00005', work, 1 * GiB, { JIT: 'secret\0value' }, owner), (e: unknown) => isFlintError(e, 'FLINT_ERR_DISK_BAD_CONFIG_VALUE') && !e.message.includes('secret'));
  writeFileSync(join(state, 'file'), '');
  await assert.rejects(disks.prepare('h7k2-00005', join(state, 'file', 'w'), 1 * GiB, {}, owner), (e: unknown) => isFlintError(e, 'FLINT_ERR_DISK_PREPARE_FAILED') && e.message.includes('h7k2-00005'));
  await assert.rejects(disks.prepare('h7k2-00005', work, 1000, {}, owner), (e: unknown) => isFlintError(e, 'FLINT_ERR_DISK_PREPARE_FAILED') && /size/.test(e.message));
});

test('env file quoting: one KEY=\'value\' line per setting, single quotes escaped', () => {
  assert.equal(encodeEnvFile({ A: "it's", B: '' }), "A='it'\\''s'\nB=''\n");
});
