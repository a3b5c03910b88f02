/**
 * The behaviour every VmFiles (daemon/vm/ports.ts) must have: what the
 * supervisor relies on for work dirs, console logs and the sweep. Each
 * implementation's test file calls `vmFilesContract` with a factory that
 * gives a fresh, empty root directory and ways to look at it from outside
 * the port (content, permission bits, setting a modification time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { VmFiles } from '../../src/daemon/vm/ports.ts';

export interface VmFilesHarness {
  readonly files: VmFiles;
  /** An existing, empty directory to work in. */
  readonly root: string;
  read(path: string): Buffer | undefined;
  modeOf(path: string): number | undefined;
  touch(path: string, mtimeMs: number): void;
  close(): Promise<void>;
}

export function vmFilesContract(name: string, make: () => Promise<VmFilesHarness>): void {
  test(`${name}: a work dir is made with its parents and its mode, twice without harm, and listed by name`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const dir = join(h.root, 'vms', 'ab1-00001');
    await h.files.makeDir(dir, 0o711);
    await h.files.makeDir(dir, 0o711);
    assert.equal(h.modeOf(dir), 0o711);
    assert.deepEqual(await h.files.list(join(h.root, 'vms')), ['ab1-00001']);
    assert.deepEqual(await h.files.list(join(h.root, 'missing')), [], 'a missing dir lists as empty');
  });

  test(`${name}: removing a work dir takes everything in it, and again is no error`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const vms = join(h.root, 'vms');
    const dir = join(vms, 'ab1-00002');
    await h.files.makeDir(join(dir, 'jail', 'root'), 0o700);
    const sink = await h.files.create(join(dir, 'jail', 'root', 'api.sock.log'), 0o600, 0o700);
    sink.write(Buffer.from('x'));
    sink.close();
    await h.files.makeDir(join(vms, 'ab1-00003'), 0o711);
    await h.files.removeDir(dir);
    await h.files.removeDir(dir);
    assert.deepEqual(await h.files.list(vms), ['ab1-00003'], 'the neighbour is untouched');
    await h.files.removeDir(join(vms, 'ab1-00003'));
    assert.deepEqual(await h.files.list(vms), [], 'an empty dir goes too');
  });

  test(`${name}: a created file gets its mode and its directory's, holds exactly the bytes written in order, and close is idempotent`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const path = join(h.root, 'consoles', 'ab1-00004.log');
    const sink = await h.files.create(path, 0o640, 0o750);
    sink.write(Buffer.from('booted\n'));
    sink.write(Buffer.alloc(0));
    sink.write(Buffer.from('runner started\n'));
    assert.equal(h.read(path)?.toString(), 'booted\nrunner started\n', 'writes are in the file at once');
    sink.close();
    sink.close();
    sink.write(Buffer.from('after close'));
    assert.equal(h.read(path)?.toString(), 'booted\nrunner started\n', 'nothing is written after close');
    assert.equal(h.modeOf(path), 0o640);
    assert.equal(h.modeOf(join(h.root, 'consoles')), 0o750);
  });

  test(`${name}: creating an existing file starts it empty (an adopted VM's log is rewritten)`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const path = join(h.root, 'ab1-00005.log');
    const first = await h.files.create(path, 0o640, 0o750);
    first.write(Buffer.from('old output that is longer'));
    first.close();
    const again = await h.files.create(path, 0o640, 0o750);
    again.write(Buffer.from('new'));
    again.close();
    assert.equal(h.read(path)?.toString(), 'new');
  });

  test(`${name}: a file's modification time is read back, a missing file has none, and removing a file twice is no error`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const path = join(h.root, 'ab1-00006.log');
    (await h.files.create(path, 0o640, 0o750)).close();
    h.touch(path, 1_700_000_000_000);
    assert.equal(await h.files.modifiedAt(path), 1_700_000_000_000);
    await h.files.removeFile(path);
    await h.files.removeFile(path);
    assert.equal(await h.files.modifiedAt(path), undefined);
    assert.deepEqual(await h.files.list(h.root), []);
  });

  test(`${name}: a file cannot be created where a directory is`, async (t) => {
    const h = await make();
    t.after(() => h.close());
    const dir = join(h.root, 'taken');
    await h.files.makeDir(dir, 0o700);
    await assert.rejects(h.files.create(dir, 0o640, 0o750));
  });
}
