/**
 * Secrets never leak: Flint in a child process (its children are real: the
 * QEMU wrapper shell and QEMU) runs a real job in a real VM against the
 * GitHub simulator, which tells afterwards every installation token and
 * JIT config it handed out. While the VM runs, and again after it is gone
 * and Flint has stopped, no secret — the App's private key, the webhook
 * secret, a token, a JIT config or its decoded content — is on any
 * process's command line, in the environment of Flint's process tree, in
 * Flint's log, in a console log, in an answer of the admin socket, the
 * status page or /metrics, or in a file of the state or run directory
 * that other users may read. The VM's config drive (the one file that
 * holds its JIT config) is readable by its owner alone while it lives and
 * gone after. The scanner is test/helpers/secret-scan.ts.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { e2eSetup, until } from '../../test/helpers/e2e-flint.ts';
import { exited, startChildFlint } from '../../test/helpers/child-flint.ts';
import { describeFinding, processTree, scanCommandLines, scanEnvirons, scanText, scanTree, secretNeedles } from '../../test/helpers/secret-scan.ts';
import type { Finding, Needle } from '../../test/helpers/secret-scan.ts';
import { CONFIG_FILE } from '../adapters/disks/provisioner.ts';
import type { RunnerConfig } from '../config/types.ts';
import { EMULATED_FIRECRACKER, EMULATED_JAILER } from '../../test/vm/real-system.ts';
import { CONSOLE_DIR } from '../daemon/vm/console-log.ts';
import { VMS_DIR } from '../daemon/vm/supervisor-types.ts';

const MINUTES = 60_000;
/** Long enough to look at everything while the job runs. */
const JOB_SECONDS = 25;

/** GET over a unix socket (the admin socket) or TCP; the body as text whatever the status. */
function get(target: { socketPath: string } | { url: string }, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = 'socketPath' in target ? { socketPath: target.socketPath, path, agent: false } : { agent: false };
    const req = 'socketPath' in target ? request(opts) : request(`${target.url}${path}`, opts);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(`${res.statusCode ?? 0} ${body}`));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every path under `dir` named `name` (the config drives of the VMs), symbolic links not followed. */
function filesNamed(dir: string, name: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const path = join(dir, n);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory() === true) out.push(...filesNamed(path, name));
    else if (n === name) out.push(path);
  }
  return out;
}

/** The processes that name `vmId` on their command line: the VMM, wherever it was reparented (the jailer's Firecracker is not Flint's child). */
function pidsNaming(vmId: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(vmId); } catch { return false; }
  });
}

interface Scenario {
  readonly org: string;
  readonly instanceId: string;
  readonly bridge: string;
  readonly gateway: string;
  readonly runner?: Partial<Omit<RunnerConfig, 'name' | 'network'>>;
}

async function noSecretsLeak(t: TestContext, sc: Scenario): Promise<void> {
  const setup = await e2eSetup(t, {
    org: sc.org, instanceId: sc.instanceId, bridge: sc.bridge, gateway: sc.gateway, jobSeconds: JOB_SECONDS,
    status: { address: '127.0.0.1:0' }, ...(sc.runner === undefined ? {} : { runner: sc.runner }),
  });
  if (setup === undefined) return;
  const { sim, config, secret, guestExtras } = setup;
  const logFile = join(config.stateDir, '..', 'flint.log');
  // The secrets in Flint's environment too, as an operator's `{env: VARIABLE}` keeps them: its children must not inherit them.
  const env = { FLINT_WEBHOOK_SECRET: secret, FLINT_PRIVATE_KEY: sim.privateKeyPem };
  const child = await startChildFlint(setup.closeFirst, { config, guestExtras, logFile, secret, env });
  assert.ok(child.proc.pid !== undefined);
  const flintPid = child.proc.pid;
  sim.setWebhook({ url: `${child.url}/webhook`, secret });
  const adminSocket = join(config.runDir, 'admin.sock');
  const log = (): string => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };

  const needles = (): Needle[] => {
    const issued = sim.issuedSecrets();
    return secretNeedles({
      privateKeyPem: sim.privateKeyPem, webhookSecrets: [secret, ...(issued.webhookSecret === null ? [] : [issued.webhookSecret])],
      installationTokens: issued.installationTokens, jitConfigs: issued.jitConfigs,
    });
  };

  const isTsxTranspiler = (pid: number): boolean => {
    try {
      return /\/node_modules\/@esbuild\/[^/]+\/bin\/esbuild$/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0] ?? '')
        && Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ')[1]) === flintPid;
    } catch {
      return false;
    }
  };

  /** Everything one looks at, at one moment. */
  const sweep = async (when: string, vmId: string | undefined, running: boolean): Promise<Finding[]> => {
    // `vmId` while its VM runs; `running` while Flint does.
    const n = needles();
    const found: Finding[] = [...scanCommandLines(n), ...scanText('Flint\'s log', log(), n)];
    if (running) {
      const started = new Set([...processTree(flintPid), ...(vmId === undefined ? [] : pidsNaming(vmId).flatMap(processTree))]);
      started.delete(flintPid);
      // Run from source, Flint's node has tsx's esbuild service as a child: a
      // part of Flint's own runtime (its transpiler), started with Flint's
      // environment before any config is read. A built Flint (dist/, what
      // `flint service install` runs) has no such child.
      for (const pid of [...started]) if (isTsxTranspiler(pid)) started.delete(pid);
      if (vmId !== undefined) {
        assert.ok(started.size >= 1, 'Flint has started the VMM');
        t.diagnostic(`${when}: environments of ${[...started].map((pid) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return '?'; } }).join(', ')}`);
      }
      // Flint itself holds them (it was given them); no process it started may.
      found.push(...scanEnvirons([...started], n));
      for (const path of ['/status', '/vms', '/jobs', ...(vmId === undefined ? [] : [`/vms/${vmId}/log`])]) {
        found.push(...scanText(`admin socket GET ${path}`, await get({ socketPath: adminSocket }, path), n));
      }
      found.push(...scanText('GET /metrics', await get({ url: child.url }, '/metrics'), n));
      found.push(...scanText('GET /healthz', await get({ url: child.url }, '/healthz'), n));
      assert.ok(child.statusUrl !== undefined, 'the status page is configured');
      for (const path of ['/', '/api/status']) found.push(...scanText(`status page GET ${path}`, await get({ url: child.statusUrl }, path), n));
    }
    // The console logs as a whole (whatever their mode), then every file others may read.
    const consoles = scanTree(join(config.stateDir, CONSOLE_DIR), n, { all: true });
    const state = scanTree(config.stateDir, n);
    // The run directory on its own only when it is not inside the state directory (the demo's is).
    const run = relative(config.stateDir, config.runDir).startsWith('..') ? scanTree(config.runDir, n) : { findings: [], scanned: [] };
    found.push(...consoles.findings, ...state.findings, ...run.findings);
    const scanned = [...state.scanned, ...run.scanned].map((p) => relative(config.stateDir, p));
    t.diagnostic(`${when}: ${n.length} needles; ${consoles.scanned.length} console logs; files others may read: ${scanned.join(', ')}`);
    return found;
  };

  const queued = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'holds secrets' });
  await until('the job to be in progress', 5 * MINUTES, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'in_progress');
  const runnerName = sim.jobs().find((j) => j.id === queued.jobId)?.runnerName ?? '';
  const vmId = runnerName.replace(/^flint-/, '');
  const issued = sim.issuedSecrets();
  assert.ok(issued.installationTokens.length >= 1 && issued.jitConfigs.length >= 1, `the simulator handed out a token and a JIT config: ${issued.installationTokens.length}, ${issued.jitConfigs.length}`);

  // While the VM runs.
  const drives = [config.stateDir, config.runDir].flatMap((d) => filesNamed(d, CONFIG_FILE));
  assert.ok(drives.length >= 1, 'the running VM has its config drive');
  for (const d of drives) {
    const mode = statSync(d).mode & 0o777;
    assert.equal(mode & 0o077, 0, `${d} is readable by its owner only (mode ${mode.toString(8)})`);
  }
  // Everything in the VM's work directory (disks, config drive, console output, sockets, pid file) is its owner's alone.
  const workDir = join(config.stateDir, VMS_DIR, vmId);
  const open = readdirSync(workDir).map((f) => [f, lstatSync(join(workDir, f)).mode & 0o777] as const).filter(([, m]) => (m & 0o077) !== 0);
  assert.deepEqual(open.map(([f, m]) => `${f} ${m.toString(8)}`), [], `no file in ${workDir} is open to others`);
  const during = await sweep('while the job runs', vmId, true);
  assert.deepEqual(during.map(describeFinding), [], 'no secret anywhere while the job runs');

  // After the job: the VM is gone, with its config drive.
  await until('the job to complete', 5 * MINUTES, () => sim.jobs().find((j) => j.id === queued.jobId)?.status === 'completed');
  assert.equal(sim.jobs().find((j) => j.id === queued.jobId)?.conclusion, 'success');
  await until('the VM to be gone', 2 * MINUTES, () => pidsNaming(vmId).length === 0);
  await until('its config drive to be removed', MINUTES, () => [config.stateDir, config.runDir].flatMap((d) => filesNamed(d, CONFIG_FILE)).length === 0);
  const after = await sweep('after the job', undefined, true);
  assert.match(await get({ socketPath: adminSocket }, `/vms/${vmId}/log`), /^200 /, 'the ended VM\'s console log is kept');
  assert.deepEqual(scanText('the ended VM\'s console log', await get({ socketPath: adminSocket }, `/vms/${vmId}/log`), needles()).map(describeFinding), []);
  assert.deepEqual(after.map(describeFinding), [], 'no secret anywhere after the job');

  // After Flint stopped: what it leaves on disk and its whole log.
  child.proc.kill('SIGTERM');
  await exited(child.proc);
  assert.equal(child.proc.exitCode, 0, 'Flint closed cleanly');
  const stopped = await sweep('after Flint stopped', undefined, false);
  assert.deepEqual(stopped.map(describeFinding), [], 'no secret anywhere after Flint stopped');
  assert.deepEqual([config.stateDir, config.runDir].flatMap((d) => filesNamed(d, CONFIG_FILE)), [], 'no config drive is left');
  const stateMode = statSync(config.stateDir).mode & 0o777;
  // Others may pass through (0711: the VMs' unprivileged uid opens its files by path), never list or write.
  assert.equal(stateMode & 0o066, 0, `no one else may list or write the state directory (mode ${stateMode.toString(8)})`);
}

test('QEMU: no secret on a command line, in an environment, a log, a status answer or a file others may read, while a job runs and after; the config drive is owner-only and gone after', { timeout: 12 * MINUTES }, async (t) => {
  await noSecretsLeak(t, { org: 'flint-secrets', instanceId: 'sec', bridge: 'br-flint-sec', gateway: '10.216.6.1' });
});

test('Firecracker (emulated, through the jailer): no secret on a command line, in an environment, a log, a status answer or a file others may read; the config drive is owner-only and gone after', { timeout: 12 * MINUTES }, async (t) => {
  await noSecretsLeak(t, {
    org: 'flint-secrets-fc', instanceId: 'secfc', bridge: 'br-flint-secfc', gateway: '10.216.8.1',
    runner: { hypervisor: 'firecracker', jailer: EMULATED_JAILER, firecracker: EMULATED_FIRECRACKER },
  });
});
