/**
 * Flint end to end in its network topology (test/helpers/topology.ts): the
 * GitHub simulator in a namespace of its own playing the internet, Flint
 * and its bridge in the test's namespace, guests reaching the simulator
 * through the bridge and Flint's NAT. Real VMs (QEMU, test image). Each
 * test starts its own Flint and simulator; none depends on another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startE2eFlint, until, type E2e } from '../../test/helpers/e2e-flint.ts';
import { ensureTestImage } from '../../test/helpers/test-image.ts';

const LABELS = ['self-hosted', 'linux'];
const MINUTES = 60_000;

function jobOf(e2e: E2e, jobId: number): ReturnType<E2e['sim']['jobs']>[number] | undefined {
  return e2e.sim.jobs().find((j) => j.id === jobId);
}

function jitRegistrations(e2e: E2e): number {
  return e2e.sim.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/actions/runners/generate-jitconfig')).length;
}

/** The one VM Flint runs now (fails when there are more or none). */
function onlyVm(e2e: E2e): string {
  const vms = e2e.flint.supervisor.list();
  assert.equal(vms.length, 1, `one VM: ${JSON.stringify(vms.map((v) => v.id))}`);
  return vms[0]?.id ?? '';
}

/** No VM for `ms`: a phantom would be started by the next scheduler tick (every 300 ms here). */
async function staysWithoutVms(e2e: E2e, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assert.deepEqual(e2e.flint.supervisor.list().map((v) => v.id), [], 'no VM is started again');
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a warm-pool job starts without a boot: the idle VM is up before the job is queued, runs it, and a replacement is started', { timeout: 10 * MINUTES }, async (t) => {
  const e2e = await startE2eFlint(t, {
    org: 'flint-warm', instanceId: 'warm', bridge: 'br-flint-warm', gateway: '10.216.1.1', jobSeconds: 1,
    runner: { minIdle: 1, maxRunners: 2 },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  await until('the warm runner to be idle', 4 * MINUTES, () => flint.scheduler.snapshot().demo?.idle === 1);
  const warm = onlyVm(e2e);
  assert.deepEqual(sim.jobs(), [], 'no job was queued: the VM is the warm pool');

  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'on a warm runner' });
  await until('the job to complete', 3 * MINUTES, () => jobOf(e2e, jobId)?.status === 'completed');
  assert.equal(jobOf(e2e, jobId)?.conclusion, 'success');
  assert.equal(jobOf(e2e, jobId)?.runnerName, `flint-${warm}`, 'the warm VM took the job');

  await until('the record of the job to be complete', MINUTES, async () => (await flint.records.getJobRecord(jobId))?.status === 'completed');
  const rec = await flint.records.getJobRecord(jobId);
  assert.equal(rec?.vmId, warm);
  const at = rec?.at;
  assert.ok(at?.queued != null && at.vmStarted != null && at.runnerOnline != null, `steps on record: ${JSON.stringify(at)}`);
  assert.ok(at.vmStarted < at.queued, `the VM started before the job was queued: ${JSON.stringify(at)}`);
  assert.ok(at.runnerOnline < at.queued, `its runner was online before the job was queued: ${JSON.stringify(at)}`);

  await until('a replacement warm runner to be idle', 4 * MINUTES, () =>
    flint.scheduler.snapshot().demo?.idle === 1 && flint.supervisor.list().some((vm) => vm.id !== warm));
  assert.notEqual(onlyVm(e2e), warm, 'the used VM is gone, a new one is warm');
});

test('static runners are kept: a static definition of size 1 has its VM with no job queued, and a new one replaces it after its job', { timeout: 10 * MINUTES }, async (t) => {
  const e2e = await startE2eFlint(t, {
    org: 'flint-static', instanceId: 'stat', bridge: 'br-flint-stat', gateway: '10.216.2.1', jobSeconds: 1,
    runner: { static: true, minIdle: 1, maxRunners: 1 },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  await until('the static runner to be idle', 4 * MINUTES, () => flint.scheduler.snapshot().demo?.idle === 1);
  const first = onlyVm(e2e);
  assert.deepEqual(sim.jobs(), [], 'the static runner is up with no job queued');

  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'on a static runner' });
  await until('the job to complete', 3 * MINUTES, () => jobOf(e2e, jobId)?.status === 'completed');
  assert.equal(jobOf(e2e, jobId)?.conclusion, 'success');
  assert.equal(jobOf(e2e, jobId)?.runnerName, `flint-${first}`, 'the static VM took the job');

  await until('the replacement static runner to be idle', 4 * MINUTES, () =>
    flint.scheduler.snapshot().demo?.idle === 1 && flint.supervisor.list().every((vm) => vm.id !== first));
  onlyVm(e2e);
  assert.equal(sim.runners().filter((r) => r.name.startsWith('flint-stat-')).length, 1, 'one registration: the replacement');
});

test('a broken kernel backs off and marks its definition unhealthy for a few JIT registrations; fixed, it recovers and the queued job runs', { timeout: 10 * MINUTES }, async (t) => {
  const image = await ensureTestImage();
  const dir = mkdtempSync(join(tmpdir(), 'flint-kernel-'));
  // The VMM runs as the definition's uid, not root: it must be able to read the kernel here.
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = join(dir, 'vmlinuz');
  writeFileSync(kernel, 'this is not a kernel\n'.repeat(64));
  const e2e = await startE2eFlint(t, {
    org: 'flint-kernel', instanceId: 'kern', bridge: 'br-flint-kern', gateway: '10.216.3.1', jobSeconds: 1,
    runner: { kernel, unhealthyAfter: 2 },
    // Seconds, not minutes: 1 s, 2 s, then 3 s between probes while unhealthy.
    flint: { backoff: { initialMs: 1000, maxMs: 3000, jitter: 0 } },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'waits for a good kernel' });

  await until('the definition to be unhealthy', 3 * MINUTES, () => flint.scheduler.health().demo?.state === 'unhealthy');
  const health = flint.scheduler.health().demo;
  assert.equal(typeof health?.lastError?.code, 'string', `the launch error is on record: ${JSON.stringify(health)}`);
  assert.match(e2e.logText(), /FLINT_ERR_RUNNER_UNHEALTHY/);
  const atUnhealthy = jitRegistrations(e2e);
  // Two failed rounds; each round registers at most maxRunners (2) runners.
  assert.ok(atUnhealthy >= 1 && atUnhealthy <= 4, `JIT registrations until unhealthy: ${atUnhealthy}`);
  assert.equal(jobOf(e2e, jobId)?.status, 'queued');

  // While unhealthy: one probe per 3 s, not one per 300 ms tick.
  await new Promise((r) => setTimeout(r, 7000));
  const probes = jitRegistrations(e2e) - atUnhealthy;
  assert.ok(probes <= 3, `JIT registrations in 7 s of back-off: ${probes}`);
  // A probe may be starting at any moment; what matters is that none stays.
  await until('no VM of a broken kernel to stay', MINUTES, () => flint.supervisor.list().length === 0);

  copyFileSync(image.kernel, kernel);
  await until('the queued job to complete on the fixed kernel', 5 * MINUTES, () => jobOf(e2e, jobId)?.status === 'completed');
  assert.equal(jobOf(e2e, jobId)?.conclusion, 'success');
  assert.equal(flint.scheduler.health().demo?.state, 'healthy', 'a runner came online: healthy again');
  assert.match(e2e.logText(), /healthy again/);
  assert.ok(jitRegistrations(e2e) <= atUnhealthy + probes + 6, `JIT registrations in all: ${jitRegistrations(e2e)}`);
});

test('lost in_progress and completed deliveries leave no phantom VM: job truth records the job completed and nothing is started for it', { timeout: 10 * MINUTES }, async (t) => {
  const e2e = await startE2eFlint(t, {
    org: 'flint-lost', instanceId: 'lost', bridge: 'br-flint-lost', gateway: '10.216.4.1', jobSeconds: 8,
    flint: {
      jobTruth: { intervalMs: 1000, queuedAfterMs: 2000, inProgressAfterMs: 2000 },
      // Only job truth may repair: no redelivery of the dropped deliveries, no scan.
      redeliver: { intervalMs: 60 * MINUTES }, reconcileMs: 60 * MINUTES,
    },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'news lost' });
  // The queued delivery went through (queueJob waits for it); the two after it never arrive.
  sim.faults.set({ webhooks: { drop: 2 } });
  await until('the job to complete', 4 * MINUTES, () => jobOf(e2e, jobId)?.status === 'completed');
  await sim.settled();
  sim.faults.clear();
  const mine = sim.deliveries().filter((d) => d.event === 'workflow_job');
  assert.deepEqual(mine.map((d) => [d.action, d.statusCode === 0 ? 'failed' : 'ok']), [['queued', 'ok'], ['in_progress', 'failed'], ['completed', 'failed']]);

  await until('Flint to record the job completed', 2 * MINUTES, async () => (await flint.records.getJobRecord(jobId))?.status === 'completed');
  assert.equal((await flint.records.getJobRecord(jobId))?.conclusion, 'success');
  // The log line follows the commit the record shows: wait for it rather than read it at one instant.
  await until('job truth to say it recorded the end', MINUTES, () => /job-truth: GitHub says this job is completed/.test(e2e.logText()));
  await until('every VM to be gone', 2 * MINUTES, () => flint.supervisor.list().length === 0);
  await staysWithoutVms(e2e, 5000);
  assert.equal(flint.scheduler.snapshot().demo, undefined, 'no runner of the definition is live');
});

test('a failed queued delivery is redelivered by the redeliver loop and the job runs', { timeout: 10 * MINUTES }, async (t) => {
  const e2e = await startE2eFlint(t, {
    org: 'flint-redeliver', instanceId: 'redl', bridge: 'br-flint-redl', gateway: '10.216.5.1', jobSeconds: 1,
    // Only the redeliver loop may repair: the missed-webhooks scan does not run.
    flint: { redeliver: { intervalMs: 2000 }, reconcileMs: 60 * MINUTES },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  sim.faults.set({ webhooks: { drop: 1 } });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'delivery failed' });
  sim.faults.clear();
  const failed = sim.deliveries().find((d) => d.action === 'queued');
  assert.equal(failed?.statusCode, 0, 'the simulator marked the queued delivery failed');

  await until('the job to complete', 4 * MINUTES, () => jobOf(e2e, jobId)?.status === 'completed');
  assert.equal(jobOf(e2e, jobId)?.conclusion, 'success');
  assert.match(e2e.logText(), /redeliver: asked GitHub to redeliver/);
  assert.doesNotMatch(e2e.logText(), /missed-webhooks: recorded queued jobs/);
  const again = sim.deliveries().find((d) => d.redelivery && d.guid === failed?.guid);
  assert.ok(again !== undefined && again.statusCode >= 200 && again.statusCode < 300, `the redelivery reached Flint: ${JSON.stringify(again)}`);
  await until('every VM to be gone', 2 * MINUTES, () => flint.supervisor.list().length === 0);
});
