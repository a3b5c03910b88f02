import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FlintError } from '../core/errors/index.ts';
import type { JitRunnerRequest } from './ports/github.ts';
import type { RunnerRequest } from './ports/store.ts';
import { recordingRunnerRequests } from './runner-requests.ts';

const req = (name: string): JitRunnerRequest => ({ scope: { kind: 'organization' }, name, runnerGroupId: 1, labels: ['linux'] });

function rig(o: { failRecord?: boolean; failGitHub?: boolean; recordHangs?: boolean } = {}) {
  let now = 1000;
  const recorded: RunnerRequest[] = [];
  const warnings: string[] = [];
  const create = recordingRunnerRequests(async (r) => {
    now += 250; // GitHub takes its time
    if (o.failGitHub) throw new FlintError('FLINT_ERR_GITHUB_UNAVAILABLE', 'down');
    return { runnerId: 42, runnerName: r.name, encodedJitConfig: 'secret' };
  }, {
    clock: { now: () => now },
    records: {
      recordRunnerRequest: async (r) => {
        if (o.recordHangs) return new Promise<void>(() => undefined);
        if (o.failRecord) throw new FlintError('FLINT_ERR_STORE_WRITE_FAILED', 'disk full');
        recorded.push(r);
      },
    },
    logger: { warn: (_obj, msg) => { warnings.push(msg); } },
  });
  return { create, recorded, warnings };
}

test('a registration for a VM is recorded with the time Flint asked and GitHub\'s runner id', async () => {
  const { create, recorded } = rig();
  const jit = await create(req('flint-ab1-00007'));
  assert.equal(jit.runnerId, 42);
  assert.deepEqual(recorded, [{ runnerName: 'flint-ab1-00007', vmId: 'ab1-00007', requestedAt: 1000, githubRunnerId: 42 }]);
});

test('a registration GitHub refused is not recorded, and the error reaches the caller', async () => {
  const { create, recorded } = rig({ failGitHub: true });
  await assert.rejects(create(req('flint-ab1-00007')), { code: 'FLINT_ERR_GITHUB_UNAVAILABLE' });
  assert.deepEqual(recorded, []);
});

test('a store that cannot take the record costs a warning, not the launch', async () => {
  const { create, warnings } = rig({ failRecord: true });
  assert.equal((await create(req('flint-ab1-00007'))).encodedJitConfig, 'secret');
  await nextTurn();
  assert.equal(warnings.length, 1);
});

test('the launch does not wait for the record\'s commit', async () => {
  const { create, warnings } = rig({ recordHangs: true });
  assert.equal((await create(req('flint-ab1-00007'))).encodedJitConfig, 'secret');
  assert.deepEqual(warnings, []);
});

test('a runner name that is not a Flint VM\'s is registered but not recorded', async () => {
  const { create, recorded } = rig();
  await create(req('static-builder'));
  assert.deepEqual(recorded, []);
});
