import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tscKhzFromCpuinfo } from './qemu-host.ts';

test('the TSC frequency is read from the first "cpu MHz" line', () => {
  assert.equal(tscKhzFromCpuinfo('processor\t: 0\ncpu MHz\t\t: 2596.122\nprocessor\t: 1\ncpu MHz\t\t: 1800.000\n'), 2596122);
});

test('cpuinfo without a frequency (some arm64 hosts) gives undefined', () => {
  assert.equal(tscKhzFromCpuinfo('processor\t: 0\nBogoMIPS\t: 50.00\n'), undefined);
  assert.equal(tscKhzFromCpuinfo('cpu MHz\t\t: 0\n'), undefined);
});
