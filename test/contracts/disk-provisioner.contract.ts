/**
 * The behaviour every DiskProvisioner (daemon/vm/ports.ts) must have, as
 * the supervisor relies on it: both disks inside the VM's work dir, the
 * scratch disk sparse and of the asked size, neither readable by anyone
 * but the VM's owner, and removal idempotent, also on a work dir a crash
 * left half-made or never made. Each implementation's test file calls
 * `diskProvisionerContract` with a factory for a fresh provisioner and an
 * empty, existing directory under which the work dirs go.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DiskProvisioner } from '../../src/daemon/vm/ports.ts';

export interface DiskHarness {
  readonly disks: DiskProvisioner;
  /** An existing, empty directory; work dirs are made under it. */
  readonly root: string;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

/** The VM's uid/gid: another user's when the tests run as root (as they do in CI), else our own. */
function vmOwner(): { uid: number; gid: number } {
  return process.getuid?.() === 0 ? { uid: 123, gid: 100 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

export function diskProvisionerContract(name: string, make: (t: TestContext) => Promise<DiskHarness | undefined>): void {
  const workDir = (h: DiskHarness, id: string): string => {
    const dir = join(h.root, 'vms', id);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    return dir;
  };
  const setup = async (t: TestContext): Promise<DiskHarness | undefined> => {
    const h = await make(t);
    if (h !== undefined) t.after(() => h.close());
    return h;
  };

  test(`${name}: prepare makes two distinct disks in the work dir, the scratch sparse and of the asked size, both the VM owner's alone`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const dir = workDir(h, 'ab1-00001');
    const owner = vmOwner();
    const got = await h.disks.prepare('ab1-00001', dir, SIZE, { FLINT_RUNNER_NAME: 'flint-ab1-00001', FLINT_JITCONFIG: 'secret' }, owner);
    assert.notEqual(got.scratch, got.config);
    for (const path of [got.scratch, got.config]) {
      assert.equal(dirname(path), dir, `${path} is in the work dir`);
      const st = statSync(path);
      assert.ok(st.isFile());
      assert.equal(st.mode & 0o077, 0, `${path} is readable by its owner only (mode ${(st.mode & 0o777).toString(8)})`);
      assert.deepEqual({ uid: st.uid, gid: st.gid }, owner, `${path} belongs to the VM's uid/gid`);
    }
    const scratch = statSync(got.scratch);
    assert.equal(scratch.size, SIZE);
    assert.ok(scratch.blocks * 512 < SIZE / 2, `the scratch disk is sparse (${scratch.blocks * 512} bytes allocated)`);
    assert.ok(statSync(got.config).size > 0, 'the config drive holds the settings');
  });

  test(`${name}: remove deletes both disks, again is no error, and another VM's disks stay`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const a = workDir(h, 'ab1-00002');
    const b = workDir(h, 'ab1-00003');
    const owner = vmOwner();
    const disksA = await h.disks.prepare('ab1-00002', a, SIZE, { K: 'a' }, owner);
    const disksB = await h.disks.prepare('ab1-00003', b, SIZE, { K: 'b' }, owner);
    writeFileSync(join(a, 'console.out'), 'not a disk');
    await h.disks.remove('ab1-00002', a);
    await h.disks.remove('ab1-00002', a);
    assert.ok(!existsSync(disksA.scratch) && !existsSync(disksA.config));
    assert.deepEqual(readdirSync(a), ['console.out'], 'only the disks go: the driver and the supervisor own the rest');
    assert.ok(existsSync(disksB.scratch) && existsSync(disksB.config));
  });

  test(`${name}: remove on a work dir that never had disks, or never existed, is no error (the sweep after a crash)`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    await h.disks.remove('ab1-00004', workDir(h, 'ab1-00004'));
    await h.disks.remove('ab1-00005', join(h.root, 'vms', 'ab1-00005'));
    assert.ok(!existsSync(join(h.root, 'vms', 'ab1-00005')), 'removal makes nothing');
  });

  test(`${name}: preparing a VM again after its removal gives fresh disks`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const dir = workDir(h, 'ab1-00006');
    const owner = vmOwner();
    await h.disks.prepare('ab1-00006', dir, SIZE, { K: 'one' }, owner);
    await h.disks.remove('ab1-00006', dir);
    const again = await h.disks.prepare('ab1-00006', dir, 2 * SIZE, { K: 'two' }, owner);
    assert.equal(statSync(again.scratch).size, 2 * SIZE);
  });
}
