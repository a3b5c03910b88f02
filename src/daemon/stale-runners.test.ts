import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeStaleRunners } from './stale-runners.ts';
import type { SelfHostedRunner } from './ports/github.ts';

const r = (id: number, name: string, busy = false): SelfHostedRunner => ({ id, name, os: 'linux', status: 'offline', busy, ephemeral: true, runnerGroupId: 1, labels: [] });
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('only this instance’s runners without a live VM are removed; busy, live, foreign and other-instance runners stay', async () => {
  const deleted: number[] = [];
  const removed = await removeStaleRunners({
    github: {
      listRunners: async () => [r(1, 'flint-h7-00001'), r(2, 'flint-h7-00002'), r(3, 'flint-h7-00003', true), r(4, 'flint-h7x-00001'), r(5, 'build-box'), r(6, 'flint-h8-00001')],
      deleteRunner: async (_s, id) => { deleted.push(id); },
    },
    instanceId: 'h7',
    liveVmIds: () => new Set(['h7-00002']),
    logger: quiet,
  });
  assert.deepEqual(deleted, [1]);
  assert.deepEqual(removed, ['flint-h7-00001']);
});
