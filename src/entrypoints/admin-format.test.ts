import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatus } from '../daemon/status.ts';
import { statusInputs as inputs } from '../../test/fixtures/status-inputs.ts';
import { age, formatStatus, table } from './admin-format.ts';

test('ages read like 850ms, 45s, 3m12s, 2h05m, 3d04h; tables align their columns', () => {
  assert.deepEqual([850, 45_000, 192_000, 7_500_000, 273_600_000, null].map(age), ['850ms', '45s', '3m12s', '2h05m', '3d04h', '-']);
  assert.equal(table(['A', 'LONGER'], [['xxxx', 'y'], ['z', '']]), 'A     LONGER\nxxxx  y\nz\n');
  const out = formatStatus(buildStatus(inputs()));
  assert.match(out, /^Flint ab: running; free for VMs 12\/16 vCPUs, 21808\/30000 MiB$/m);
  assert.match(out, /^big +backing-off +0 +0 +0 +0 +0\/2 +backing-off \(2 failed, FLINT_ERR_VM_BOOT_TIMEOUT, retry in 25s\)$/m);
  assert.match(out, /^ab-00001 +small +running +busy +3m20s +10\.0\.0\.2 +2s +acme\/widgets #11 build 11$/m);
});
