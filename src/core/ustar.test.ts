import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { BLOCK, encodeUstar } from './ustar.ts';
import { program, requirePrereqs } from '../../test/helpers/prereq.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-ustar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const enc = new TextEncoder();

test('an archive is whole 512-byte blocks, ends with two zero blocks, and carries a valid checksum', () => {
  const bytes = encodeUstar([{ name: 'a', type: 'file', mode: 0o644, mtime: 0, content: enc.encode('hi') }]);
  assert.equal(bytes.length, 4 * BLOCK); // header, one content block, two end blocks
  assert.ok(bytes.subarray(2 * BLOCK).every((b) => b === 0));
  const header = bytes.subarray(0, BLOCK);
  const stored = parseInt(new TextDecoder().decode(header.subarray(148, 154)), 8);
  let sum = 0;
  header.forEach((b, i) => { sum += i >= 148 && i < 156 ? 0x20 : b; });
  assert.equal(stored, sum);
  assert.equal(new TextDecoder().decode(header.subarray(257, 263)), 'ustar\0');
});

test('names that tar would put outside the target directory, or that are not plain ASCII, are refused', () => {
  for (const name of ['/etc/passwd', '../x', 'a/../../x', '', 'a b', 'é', 'x'.repeat(101)]) {
    assert.throws(() => encodeUstar([{ name, type: 'file', mode: 0o600, mtime: 0 }]), RangeError, name);
  }
});

for (const [label, tar] of [['GNU tar', ['tar']], ['busybox tar', ['busybox', 'tar']]] as const) {
  test(`${label} lists and extracts what the encoder wrote, byte for byte`, (t) => {
    if (!requirePrereqs(t, program(tar[0]))) return;
    const dir = tempDir(t);
    const files = fc.sample(fc.uint8Array({ maxLength: 3000 }), { numRuns: 5, seed: 7 });
    const entries = [
      { name: 'd/', type: 'directory' as const, mode: 0o755, mtime: 1_700_000_000 },
      ...files.map((content, i) => ({ name: `d/f${i}`, type: 'file' as const, mode: 0o640, mtime: 1_700_000_000, content })),
      { name: 'd/empty', type: 'file' as const, mode: 0o600, mtime: 0 },
    ];
    const archive = join(dir, 'a.tar');
    writeFileSync(archive, encodeUstar(entries));
    const [cmd, ...pre] = tar;
    const listing = execFileSync(cmd, [...pre, '-t', '-f', archive], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing, entries.map((e) => e.name));
    const out = join(dir, 'out');
    execFileSync('mkdir', [out]);
    execFileSync(cmd, [...pre, '-x', '-f', archive, '-C', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    files.forEach((content, i) => assert.deepEqual(new Uint8Array(readFileSync(join(out, `d/f${i}`))), content));
    assert.equal(readFileSync(join(out, 'd/empty')).length, 0);
  });
}
