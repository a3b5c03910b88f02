/**
 * A drain with real VMs: a busy runner's job finishes during the drain and
 * nothing is left. QEMU, test image, the simulator; runs in the test
 * runner's private network namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startE2eFlint, until } from '../../test/helpers/e2e-flint.ts';

const GATEWAY = '10.215.0.1';
const JOB_SECONDS = 15;

test('SIGTERM with a busy runner: the drain waits for its job, which succeeds, and nothing is left', { timeout: 600_000 }, async (t) => {
  // The fake runner "runs" its job for JOB_SECONDS: long enough to be busy when the drain starts.
  const e2e = await startE2eFlint(t, { org: 'flint-drain', instanceId: 'drn', bridge: 'br-flint-drn', gateway: GATEWAY, jobSeconds: JOB_SECONDS, flint: { drainProgressMs: 2000 } });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;

  const queued = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'long job' });
  await until('the job to be in progress', 300_000, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'in_progress');
  await until('Flint to see the runner busy', 30_000, () => flint.scheduler.snapshot().demo?.busy === 1);

  const outcome = await flint.drain(300_000);
  assert.equal(outcome.end, 'finished', `the drain waited for the busy runner: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.finished, 1);
  const job = sim.jobs().find((j) => j.id === queued.jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success', 'the job in flight was not killed');
  assert.match(e2e.logText(), /drain: idle runners removed; waiting for busy runners/);
  assert.match(e2e.logText(), /drain: every busy runner finished/);
  await sim.settled();
  assert.deepEqual(sim.runners().filter((r) => r.name.startsWith('flint-drn-')), [], 'no runner registration is left in GitHub');
  assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show']).toString(), /fdrn-/, 'no tap is left');
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args']).toString(), /qemu-system.*drn-/, 'no VM process is left');
});
