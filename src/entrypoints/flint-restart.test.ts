/**
 * `kill -9` of Flint never kills a running job: a Flint in a child process
 * is killed with SIGKILL while its VM runs a job; a new Flint on the same
 * state directory adopts that VM, the job completes in it, no second VM is
 * started, and after the new Flint closes nothing is left. Real VMs (QEMU,
 * test image), the GitHub simulator; runs in the test runner's private
 * network namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../adapters/store/db.ts';
import { e2eSetup, until } from '../../test/helpers/e2e-flint.ts';
import { exited, startChildFlint } from '../../test/helpers/child-flint.ts';

const GATEWAY = '10.216.0.1';
/** Long enough for Flint to be killed and restarted while the job runs. */
const JOB_SECONDS = 40;
test('flint killed with SIGKILL while a job runs: the restarted Flint adopts the VM, the job completes in it, no second VM, nothing left', { timeout: 900_000 }, async (t) => {
  const setup = await e2eSetup(t, { org: 'flint-restart', instanceId: 'rst', bridge: 'br-flint-rst', gateway: GATEWAY, jobSeconds: JOB_SECONDS });
  if (setup === undefined) return;
  const { sim, config, secret, guestExtras } = setup;
  const logFile = join(config.stateDir, '..', 'flint.log');
  const args = { config, guestExtras, logFile, secret };
  const log = (): string => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };

  const first = await startChildFlint(setup.closeFirst, args);
  sim.setWebhook({ url: `${first.url}/webhook`, secret });
  const queued = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'survives a crash' });
  await until('the job to be in progress', 300_000, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'in_progress');
  const runnerName = sim.jobs().find((j) => j.id === queued.jobId)?.runnerName;
  assert.ok(runnerName !== null && runnerName !== undefined);
  const vmId = runnerName.replace(/^flint-/, '');
  // QEMU itself (its wrapper shell names QEMU too, but starts with `sh`).
  const qemuBefore = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.startsWith('qemu-system') && l.includes(vmId));
  assert.equal(qemuBefore.length, 1, 'one QEMU runs the job');

  const killedAt = Date.now();
  first.proc.kill('SIGKILL');
  await exited(first.proc);
  assert.match(execFileSync('ps', ['-eo', 'args']).toString(), new RegExp(`qemu-system.*${vmId}`), 'the VM outlived Flint');

  const second = await startChildFlint(setup.closeFirst, args);
  t.diagnostic(`SIGKILL to the restarted Flint serving (VM adopted): ${Date.now() - killedAt} ms`);
  sim.setWebhook({ url: `${second.url}/webhook`, secret });
  assert.match(log(), new RegExp(`"vmId":"${vmId}"[^\\n]*vm of a previous Flint process adopted`), 'the restarted Flint adopted the VM');
  await until('the job to complete', 300_000, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'completed');
  const job = sim.jobs().find((j) => j.id === queued.jobId);
  assert.equal(job?.conclusion, 'success', 'the job in flight was not killed');
  assert.equal(job?.runnerName, runnerName, 'it ran to the end in the same VM');
  await until('the adopted VM to end and its runner to be removed', 120_000, async () => {
    await sim.settled();
    return !execFileSync('ps', ['-eo', 'args']).toString().includes(vmId) && sim.runners().every((r) => !r.name.startsWith('flint-rst-'));
  });

  second.proc.kill('SIGTERM');
  await exited(second.proc);
  assert.equal(second.proc.exitCode, 0, 'the restarted Flint closed cleanly');
  const db = openDatabase(config.stateDir);
  try {
    const vms = db.prepare('SELECT id, state FROM vms').all() as Array<{ id: string; state: string }>; // the vms table's columns
    assert.deepEqual(vms, [{ id: vmId, state: 'stopped' }], 'one VM in all, the adopted one, ended normally: no second VM was started');
    assert.deepEqual(db.prepare('SELECT vm_id FROM net_leases').all(), [], 'no lease is left');
    assert.deepEqual(db.prepare('SELECT vm_id FROM runner_states').all(), [], 'no runner state is left');
  } finally {
    db.close();
  }
  await sim.settled();
  assert.deepEqual(sim.runners().filter((r) => r.name.startsWith('flint-rst-')), [], 'no runner registration is left in GitHub');
  assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show']).toString(), /frst-/, 'no tap is left');
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args']).toString(), /qemu-system.*rst-/, 'no VM process is left');
});
