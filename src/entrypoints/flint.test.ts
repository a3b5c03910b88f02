/**
 * Flint end to end, in-process: the GitHub simulator sends webhooks, Flint
 * stores them, schedules microVMs (QEMU, test image) with JIT runners, the
 * fake runner in each VM takes a job and finishes it, every VM is torn down.
 * Runs in the test runner's private network namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { demoConfig } from '../config/demo.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../adapters/store/intake-store.ts';
import { createSqliteJobRecords } from '../adapters/store/job-records.ts';
import { JOB_RECORD_STEPS } from '../daemon/ports/store.ts';
import { packageRoot } from '../images/paths.ts';
import { startFlint } from './flint.ts';
import { fakeRunnerCommand } from './commands/demo.ts';
import { startSimulator } from '../../tools/github-sim/index.ts';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import { ensureTestImage } from '../../test/helpers/test-image.ts';

const GATEWAY = '10.214.0.1';

async function until(what: string, deadlineMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('queued jobs run in their own microVMs end to end: a dropped webhook is recovered, a duplicate changes nothing, ubuntu-latest is ignored, nothing is left', { timeout: 600_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'), program('nft'))) return;
  const image = await ensureTestImage();
  const work = mkdtempSync(join(tmpdir(), 'flint-e2e-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const sim = await startSimulator({ host: '0.0.0.0', org: 'flint-e2e' });
  t.after(() => sim.close());
  const secret = 'e2e-webhook-secret';
  const base = demoConfig({
    apiUrl: sim.apiUrl.replace('0.0.0.0', '127.0.0.1'), appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: secret,
    organization: 'flint-e2e', stateDir: join(work, 'state'), kernel: image.kernel, initrd: image.initrd, filesystem: image.rootfs,
    address: '127.0.0.1:0', network: { name: 'br-flint-e2e', v4: `${GATEWAY}/24`, create: true }, instanceId: 'e2e', maxRunners: 2,
  });
  const kernelArgs = image.kernelArgs.split(/\s+/).filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');
  const config = { ...base, runners: base.runners.map((r) => ({ ...r, kernelArgs })) };
  let logText = '';
  const logSink = new Writable({ write(chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb(); } });
  const logger = createLogger({ level: 'info', destination: logSink, secrets: new Set([secret]) });
  const flint = await startFlint({
    config, logger, tickMs: 300, reconcileMs: 2000,
    guestExtras: { FLINT_RUNNER_COMMAND: fakeRunnerCommand(packageRoot()), FLINT_GITHUB_URL: `http://${GATEWAY}:${new URL(sim.apiUrl).port}` },
  });
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  sim.setWebhook({ url: `${flint.url}/webhook`, secret });

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
  closed = true;
  await flint.close();

  for (const id of [dropped.jobId, duplicated.jobId]) assert.equal(sim.jobs().find((j) => j.id === id)?.conclusion, 'success');
  assert.equal(sim.jobs().find((j) => j.id === ignored.jobId)?.status, 'queued', 'nobody runs the ubuntu-latest job');
  // The dropped delivery is repaired by whichever loop gets there first: the
  // redeliver loop (GitHub sends it again) or missed-webhooks (the scan finds the job).
  assert.match(logText, /missed-webhooks: recorded queued jobs|redeliver: asked GitHub to redeliver/);
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
  assert.doesNotMatch(logText, new RegExp(secret), 'the webhook secret never reaches a log line');
});
