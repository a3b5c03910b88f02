/**
 * A drain with real VMs: a busy runner's job finishes during the drain and
 * nothing is left. QEMU, test image, the simulator; runs in the test
 * runner's private network namespace.
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
import { packageRoot } from '../images/paths.ts';
import { startFlint } from './flint.ts';
import { fakeRunnerCommand } from './commands/demo.ts';
import { startSimulator } from '../../tools/github-sim/index.ts';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import { ensureTestImage } from '../../test/helpers/test-image.ts';

const GATEWAY = '10.215.0.1';
const JOB_SECONDS = 15;

async function until(what: string, deadlineMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('SIGTERM with a busy runner: the drain waits for its job, which succeeds, and nothing is left', { timeout: 600_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'), program('nft'))) return;
  const image = await ensureTestImage();
  const work = mkdtempSync(join(tmpdir(), 'flint-drain-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const sim = await startSimulator({ host: '0.0.0.0', org: 'flint-drain' });
  t.after(() => sim.close());
  const secret = 'drain-webhook-secret';
  const base = demoConfig({
    apiUrl: sim.apiUrl.replace('0.0.0.0', '127.0.0.1'), appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: secret,
    organization: 'flint-drain', stateDir: join(work, 'state'), kernel: image.kernel, initrd: image.initrd, filesystem: image.rootfs,
    address: '127.0.0.1:0', network: { name: 'br-flint-drn', v4: `${GATEWAY}/24`, create: true }, instanceId: 'drn', maxRunners: 2,
  });
  const kernelArgs = image.kernelArgs.split(/\s+/).filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');
  const config = { ...base, runners: base.runners.map((r) => ({ ...r, kernelArgs })) };
  let logText = '';
  const logSink = new Writable({ write(chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb(); } });
  const logger = createLogger({ level: 'info', destination: logSink, secrets: new Set([secret]) });
  // The fake runner "runs" its job for JOB_SECONDS: long enough to be busy when the drain starts.
  const runnerCommand = fakeRunnerCommand(packageRoot()).replace(/ 120 success \d+$/, ` 120 success ${JOB_SECONDS}`);
  assert.match(runnerCommand, new RegExp(` success ${JOB_SECONDS}$`));
  const flint = await startFlint({
    config, logger, tickMs: 300, reconcileMs: 2000, drainProgressMs: 2000,
    guestExtras: { FLINT_RUNNER_COMMAND: runnerCommand, FLINT_GITHUB_URL: `http://${GATEWAY}:${new URL(sim.apiUrl).port}` },
  });
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  sim.setWebhook({ url: `${flint.url}/webhook`, secret });

  const queued = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'long job' });
  await until('the job to be in progress', 300_000, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'in_progress');
  await until('Flint to see the runner busy', 30_000, () => flint.scheduler.snapshot().demo?.busy === 1);

  closed = true;
  const outcome = await flint.drain(300_000);
  assert.equal(outcome.end, 'finished', `the drain waited for the busy runner: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.finished, 1);
  const job = sim.jobs().find((j) => j.id === queued.jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success', 'the job in flight was not killed');
  assert.match(logText, /drain: idle runners removed; waiting for busy runners/);
  assert.match(logText, /drain: every busy runner finished/);
  await sim.settled();
  assert.deepEqual(sim.runners().filter((r) => r.name.startsWith('flint-drn-')), [], 'no runner registration is left in GitHub');
  assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show']).toString(), /fdrn-/, 'no tap is left');
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args']).toString(), /qemu-system.*drn-/, 'no VM process is left');
});
