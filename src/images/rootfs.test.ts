/**
 * The production root filesystem, end to end: built with debootstrap (the
 * debootstrap stage is cached by `npm test`'s preparation), its "Actions
 * runner" a stub that talks to the GitHub simulator with the JIT config it
 * was given; booted in a real VM under QEMU with Debian's cloud kernel and
 * the test initramfs (the fast kernel path). systemd starts the Flint agent,
 * the stub takes the queued job and finishes it, the VM powers off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVmSystem } from '../entrypoints/vm-system.ts';
import { createGitHubClient } from '../adapters/github/client.ts';
import { runnerName } from '../core/ids.ts';
import { startSimulator, type Simulator } from '../../tools/github-sim/index.ts';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import { ensureTestImage } from '../../test/helpers/test-image.ts';
import { bootAndWait, buildStubRunnerRootfs, GUEST_GATEWAY, imageTestConfig, quietLogger } from '../../test/helpers/guest-image.ts';
import type { TestContext } from 'node:test';
import type { VmSystem } from '../entrypoints/vm-system.ts';
import type { RunnerConfig } from '../config/types.ts';

let work: string;
let sim: Simulator | undefined;
let rootfsBuild: Promise<string> | undefined;
/** One image for every test here, built on first use (after the prerequisite check). */
const stubRootfs = (): Promise<string> => (rootfsBuild ??= buildStubRunnerRootfs(work));

// 0711: the VMM runs as the definition's uid and opens its files below here by path.
before(() => { work = mkdtempSync(join(tmpdir(), 'flint-rootfs-test-')); chmodSync(work, 0o711); });
after(async () => {
  await sim?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a debootstrapped image with a stub runner takes a queued job from the simulator with its JIT config, finishes it and powers off', { timeout: 900_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('debootstrap'), program('qemu-system-x86_64'))) return;
  const [rootfs, image] = await Promise.all([stubRootfs(), ensureTestImage()]);
  sim ??= await startSimulator({ host: '0.0.0.0', org: 'flint-test' });
  // The cloud kernel's initramfs hands over to /sbin/flint-init on vda, which then starts systemd.
  const config = imageTestConfig(sim, join(work, 'state'), { kernel: image.kernel, initrd: image.initrd, rootfs, kernelArgs: image.kernelArgs }, 1024);
  const vms = await buildVmSystem(config, quietLogger);
  t.after(async () => { await vms.supervisor.shutdown(); vms.close(); });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'] });
  const github = createGitHubClient({ github: config.github });
  const runner = config.runners[0];
  assert.ok(runner);
  const port = new URL(sim.apiUrl).port;
  let jitConfig = '';
  const result = await bootAndWait(vms, runner, async (vmId) => {
    const jit = await github.createJitRunner({ scope: { kind: 'organization' }, name: runnerName(vmId), runnerGroupId: 1, labels: ['self-hosted', 'linux'] });
    jitConfig = jit.encodedJitConfig;
    return { FLINT_JITCONFIG: jit.encodedJitConfig, FLINT_RUNNER_NAME: jit.runnerName, FLINT_GITHUB_URL: `http://${GUEST_GATEWAY}:${port}`, FLINT_JOB_TIMEOUT: '300' };
  });
  const outcome = await result.vm.ended;
  const r = outcome.record;
  if (r.startedAt !== null && r.bootedAt !== null && r.endedAt !== null) {
    t.diagnostic(`VM start → booted ${r.bootedAt - r.startedAt} ms, → runner started ${(r.runnerStartedAt ?? r.endedAt) - r.startedAt} ms, → ended ${r.endedAt - r.startedAt} ms (TCG)`);
  }
  assert.match(result.console, /FLINT-MARKER booted/, `VM ${outcome.record.state} (${outcome.code ?? ''} ${JSON.stringify(outcome.record)})`);
  assert.equal(result.code, 0, `runner exit code; console tail:\n${result.console.slice(-3000)}`);
  assert.match(result.console, /stub-runner: job \d+ done/, 'the stub ran as the runner, its output on the console');
  assert.ok(jitConfig.length > 20);
  assert.equal(result.console.includes(jitConfig), false, 'the JIT config never reaches the console');
  const job = sim.jobs().find((j) => j.id === jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success');
  assert.equal((await result.vm.ended).record.state, 'stopped');
});

/** The VM system and runner definition for one more VM of the production image on the fast kernel path. */
async function productionVms(t: TestContext, stateName: string): Promise<{ vms: VmSystem; runner: RunnerConfig } | undefined> {
  if (!requirePrereqs(t, root, program('debootstrap'), program('qemu-system-x86_64'))) return undefined;
  const [rootfs, image] = await Promise.all([stubRootfs(), ensureTestImage()]);
  sim ??= await startSimulator({ host: '0.0.0.0', org: 'flint-test' });
  const config = imageTestConfig(sim, join(work, stateName), { kernel: image.kernel, initrd: image.initrd, rootfs, kernelArgs: image.kernelArgs }, 1024);
  const vms = await buildVmSystem(config, quietLogger);
  t.after(async () => { await vms.supervisor.shutdown(); vms.close(); });
  const runner = config.runners[0];
  assert.ok(runner);
  return { vms, runner };
}

test('a job that outlives FLINT_JOB_TIMEOUT is stopped inside the guest: runner-exited code=143 and the VM powers off', { timeout: 900_000 }, async (t) => {
  const setup = await productionVms(t, 'state-timeout');
  if (setup === undefined) return;
  const result = await bootAndWait(setup.vms, setup.runner, { FLINT_RUNNER_COMMAND: 'echo job-sleeps; exec sleep 600', FLINT_JOB_TIMEOUT: '5' });
  assert.match(result.console, /job-sleeps/);
  assert.match(result.console, /the job timeout of 5s ran out/, `console tail:\n${result.console.slice(-3000)}`);
  assert.equal(result.code, 143, 'SIGTERM ended the job: 128 + 15');
  const outcome = await result.vm.ended;
  assert.equal(outcome.record.vmmExitCode !== null || outcome.record.vmmSignal !== null, true);
});

test("a host stop while the job runs (Ctrl-Alt-Del): systemd stops the agent, which stops the runner and still reports its exit", { timeout: 900_000 }, async (t) => {
  const setup = await productionVms(t, 'state-stop');
  if (setup === undefined) return;
  let text = '';
  let code: number | undefined;
  const vm = await setup.vms.supervisor.launch(setup.runner, { FLINT_RUNNER_COMMAND: 'echo job-sleeps; exec sleep 600', FLINT_JOB_TIMEOUT: '600' }, { bootTimeoutMs: 300_000, maxLifetimeMs: 600_000 });
  vm.onConsole((c) => { text += c.toString('utf8'); });
  vm.onMarker((m) => {
    if (m.kind === 'runner-started') setTimeout(() => { void vm.stop('test: host stop while the job runs'); }, 1000);
    if (m.kind === 'runner-exited') code = m.code;
  });
  const outcome = await vm.ended;
  assert.match(text, /stop requested; stopping the runner/, `console tail:\n${text.slice(-3000)}`);
  assert.equal(code, 143);
  assert.equal(outcome.record.state, 'stopped');
});
