import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeVmFiles } from '../../adapters/host/node-vm-files.ts';
import { MemoryVmFiles } from '../../../test/fakes/memory-vm-files.ts';
import { ConsoleLog, consoleLogPath, LineSplitter, pruneConsoleLogs } from './console-log.ts';

const files = new NodeVmFiles();

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a console log under the cap is kept byte for byte', async (t) => {
  const path = consoleLogPath(tempDir(t), 'ab1-00001');
  const log = await ConsoleLog.open(files, path, 1000);
  log.write(Buffer.from('hello\n'));
  log.write(Buffer.from('world\n'));
  log.close();
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'hello\nworld\n');
  assert.equal(statSync(path).mode & 0o777, 0o640);
});

test('ConsoleLog.open makes the consoles directory and a log only root and Flint\'s group can read', async (t) => {
  const path = consoleLogPath(tempDir(t), 'ab1-00003');
  const log = await ConsoleLog.open(files, path, 1000);
  log.write(Buffer.from('booted\n'));
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'booted\n');
  assert.equal(statSync(path).mode & 0o777, 0o640);
  assert.equal(statSync(join(path, '..')).mode & 0o777, 0o750);
});

test('a console log over the cap keeps the first and the last part and says what was cut', async (t) => {
  const path = consoleLogPath(tempDir(t), 'ab1-00002');
  const log = await ConsoleLog.open(files, path, 100);
  // 1000 numbered bytes in odd-sized chunks: the cut must be exact whatever the chunking.
  const all = Buffer.from(Array.from({ length: 1000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join(''));
  for (let off = 0; off < all.length; off += 37) log.write(all.subarray(off, off + 37));
  log.close();
  const text = readFileSync(path, 'latin1');
  const head = all.subarray(0, 50).toString('latin1');
  const tail = all.subarray(950).toString('latin1');
  assert.ok(text.startsWith(head), 'first half of the cap is the start of the output');
  assert.ok(text.endsWith(tail), 'second half of the cap is the end of the output');
  assert.match(text, /\[flint: 900 bytes of console output cut here; the log keeps the first and the last 50 bytes\]/);
  assert.ok(text.length <= 100 + 120);
});

test('the line splitter yields whole lines across chunks and bounds an endless line', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.feed('FLINT-MAR'), []);
  assert.deepEqual(s.feed('KER booted\r\nnext'), ['FLINT-MARKER booted\r']);
  assert.deepEqual(s.feed('x'.repeat(100)), []);
  assert.deepEqual(s.feed('\n'), ['x'.repeat(16)]);
});

test('console logs of this instance older than the retention are deleted, except those of live VMs', async (t) => {
  const dir = tempDir(t);
  const consoles = join(dir, 'consoles');
  mkdirSync(consoles);
  const now = Date.now();
  for (const [id, ageH] of [['ab1-00001', 30], ['ab1-00002', 1], ['ab1-00003', 48], ['cd2-00001', 48]] as const) {
    const p = join(consoles, `${id}.log`);
    writeFileSync(p, 'x');
    const when = (now - ageH * 3600_000) / 1000;
    utimesSync(p, when, when);
  }
  writeFileSync(join(consoles, 'README'), 'not a log');
  const removed = await pruneConsoleLogs(files, dir, 'ab1', now, 24 * 3600_000, new Set(['ab1-00003']));
  assert.deepEqual(removed, ['ab1-00001']);
  assert.ok(existsSync(join(consoles, 'ab1-00002.log')));
  assert.ok(existsSync(join(consoles, 'ab1-00003.log')), 'a live VM keeps its log whatever its age');
  assert.ok(existsSync(join(consoles, 'README')));
  assert.ok(existsSync(join(consoles, 'cd2-00001.log')), 'another instance\'s log is not ours to delete');
  assert.deepEqual(await pruneConsoleLogs(files, join(dir, 'missing'), 'ab1', now, 1, new Set()), []);
});

test('property: whatever the chunking, a closed log is the exact head, one cut line, and the exact tail, within the cap', async () => {
  const fc = (await import('fast-check')).default;
  // The capping is ConsoleLog's own logic: checked on the in-memory files port, so 150 runs touch no disk.
  const mem = new MemoryVmFiles();
  let n = 0;
  await fc.assert(fc.asyncProperty(
    fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 30 }),
    fc.integer({ min: 2, max: 400 }),
    async (chunks, cap) => {
      const path = `/state/consoles/p${n++}.log`;
      const log = await ConsoleLog.open(mem, path, cap);
      for (const c of chunks) log.write(Buffer.from(c));
      log.close();
      const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
      const got = mem.read(path) ?? Buffer.alloc(0);
      await mem.removeFile(path);
      if (all.length <= cap) {
        assert.deepEqual(got, all);
        return;
      }
      const head = Math.floor(cap / 2);
      const tail = cap - head;
      assert.deepEqual(got.subarray(0, head), all.subarray(0, head));
      assert.deepEqual(got.subarray(got.length - tail), all.subarray(all.length - tail));
      const middle = got.subarray(head, got.length - tail).toString('latin1');
      assert.equal(middle, `\n[flint: ${all.length - cap} bytes of console output cut here; the log keeps the first and the last ${tail} bytes]\n`);
    },
  ), { numRuns: 150 });
});
