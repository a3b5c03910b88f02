/**
 * Flint end to end, in-process: the GitHub simulator sends webhooks, Flint
 * stores them, schedules microVMs (QEMU, test image) with JIT runners, the
 * fake runner in each VM takes a job and finishes it, every VM is torn down.
 * Runs in the test runner's private network namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { openDatabase } from '../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../adapters/store/intake-store.ts';
import { createSqliteJobRecords } from '../adapters/store/job-records.ts';
import { JOB_RECORD_STEPS } from '../daemon/ports/store.ts';
import { startE2eFlint, until } from '../../test/helpers/e2e-flint.ts';

const GATEWAY = '10.214.0.1';

test('queued jobs run in their own microVMs end to end: a dropped webhook is recovered, a duplicate changes nothing, ubuntu-latest is ignored, nothing is left', { timeout: 600_000 }, async (t) => {
  const e2e = await startE2eFlint(t, { org: 'flint-e2e', instanceId: 'e2e', bridge: 'br-flint-e2e', gateway: GATEWAY });
  if (e2e === undefined) return;
  const { sim, flint, config } = e2e;

  sim.faults.set({ webhooks: { drop: 1 } });
  const dropped = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'webhook lost' });
  sim.faults.set({ webhooks: { duplicate: 1 } });
  const duplicated = await sim.queueJob({ repo: 'web', labels: ['Self-Hosted', 'LINUX'], name: 'webhook twice' });
  sim.faults.clear();
  const ignored = await sim.queueJob({ repo: 'app', labels: ['ubuntu-latest'], name: 'hosted' });

  await until('both self-hosted jobs to complete', 300_000, () =>
    [dropped.jobId, duplicated.jobId].every((id) => sim.jobs().find((j) => j.id === id)?.status === 'completed'));
  await until('every VM to be torn down', 60_000, () => flint.supervisor.list().length === 0);
  await sim.settled();
  await flint.close();

  for (const id of [dropped.jobId, duplicated.jobId]) assert.equal(sim.jobs().find((j) => j.id === id)?.conclusion, 'success');
  assert.equal(sim.jobs().find((j) => j.id === ignored.jobId)?.status, 'queued', 'nobody runs the ubuntu-latest job');
  // The dropped delivery is repaired by whichever loop gets there first: the
  // redeliver loop (GitHub sends it again) or missed-webhooks (the scan finds the job).
  assert.match(e2e.logText(), /missed-webhooks: recorded queued jobs|redeliver: asked GitHub to redeliver/);
  const db = openDatabase(config.stateDir);
  try {
    const store = createSqliteIntakeStore(db);
    assert.equal((await store.getJob(dropped.jobId))?.status, 'completed');
    assert.equal((await store.getJob(duplicated.jobId))?.status, 'completed');
    assert.equal(await store.getJob(ignored.jobId), undefined, 'an unservable job is not recorded as work');
    // The per-job record: every step on record, and in order. The job whose
    // queued webhook arrived is queued before any runner was asked for (the
    // VMs are started for demand); the one recovered by the reconciler may
    // have been taken by a runner registered before Flint knew of it.
    const records = createSqliteJobRecords(db);
    for (const id of [dropped.jobId, duplicated.jobId]) {
      const rec = await records.getJobRecord(id);
      assert.equal(rec?.conclusion, 'success');
      assert.match(rec?.runnerName ?? '', /^flint-e2e-/);
      assert.equal(rec?.runnerName, `flint-${rec?.vmId}`, 'the VM that ran it is the one behind its runner');
      assert.equal(typeof rec?.githubRunnerId, 'number');
      for (const step of JOB_RECORD_STEPS) assert.equal(typeof rec?.at[step], 'number', `job ${id}: ${step} is on record`);
      const vmWay = JOB_RECORD_STEPS.slice(1).map((step) => rec?.at[step] ?? NaN);
      assert.deepEqual(vmWay, [...vmWay].sort((a, b) => a - b), `job ${id}: runner requested → … → finished in order: ${JSON.stringify(rec?.at)}`);
    }
    const dup = await records.getJobRecord(duplicated.jobId);
    const all = JOB_RECORD_STEPS.map((step) => dup?.at[step] ?? NaN);
    assert.deepEqual(all, [...all].sort((a, b) => a - b), `queued → … → finished in order: ${JSON.stringify(dup?.at)}`);
  } finally {
    db.close();
  }
  assert.deepEqual(sim.runners().filter((r) => r.name.startsWith('flint-e2e-')), [], 'no runner registration is left in GitHub');
  const links = execFileSync('ip', ['-o', 'link', 'show']).toString();
  assert.doesNotMatch(links, /fe2e-/, 'no tap is left');
  const procs = execFileSync('ps', ['-eo', 'args']).toString();
  assert.doesNotMatch(procs, /qemu-system.*e2e-/, 'no VM process is left');
  assert.doesNotMatch(e2e.logText(), new RegExp(e2e.secret), 'the webhook secret never reaches a log line');
});
