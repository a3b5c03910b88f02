import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirePrereqs, program } from '../../test/helpers/prereq.ts';
import { startSimulator, signJwt, type Simulator } from './index.ts';

const script = fileURLToPath(new URL('./fake-runner.sh', import.meta.url));

interface Run { readonly code: number; readonly stdout: string; readonly stderr: string }

/** Runs fake-runner.sh under busybox's own shell, so its applets (wget, sed, mktemp) are what a busybox guest has. */
function runScript(args: string[]): Promise<Run> {
  // An empty PATH: every command the script runs must be a busybox applet, as in a minimal guest.
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  return new Promise((resolve) => {
    execFile(busybox, ['sh', script, ...args], { timeout: 60_000, env: { PATH: '/nonexistent' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function setup(t: TestContext): Promise<{ sim: Simulator; dir: string; jitFile: (name: string, labels: string[]) => Promise<string> }> {
  const sim = await startSimulator();
  const dir = mkdtempSync(join(tmpdir(), 'flint-fake-runner-'));
  t.after(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const now = Math.floor(Date.now() / 1000);
  const jwt = signJwt({ iat: now - 30, exp: now + 500, iss: sim.appId }, sim.privateKeyPem);
  const tokRes = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
  const { token } = await tokRes.json() as { token: string }; // REST contract, validated by contract.test.ts
  const jitFile = async (name: string, labels: string[]): Promise<string> => {
    const res = await fetch(`${sim.apiUrl}/orgs/${sim.org}/actions/runners/generate-jitconfig`, {
      method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, runner_group_id: 1, labels }),
    });
    const { encoded_jit_config: jit } = await res.json() as { encoded_jit_config: string }; // as above
    const path = join(dir, `${name}.jit`);
    writeFileSync(path, `${jit}\n`, { mode: 0o600 });
    return path;
  };
  return { sim, dir, jitFile };
}

test('fake-runner.sh under busybox connects with its JIT config, runs one job and reports its conclusion', async (t) => {
  if (!requirePrereqs(t, program('busybox'))) return;
  const { sim, jitFile } = await setup(t);
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'flint'] });
  const r = await runScript([sim.apiUrl, await jitFile('sh-1', ['self-hosted', 'flint']), '10', 'failure']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^fake-runner: connected runner_id=\d+$/m);
  assert.match(r.stdout, new RegExp(`^fake-runner: job job_id=${jobId}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^fake-runner: completed job_id=${jobId} conclusion=failure$`, 'm'));
  const job = sim.jobs().find((j) => j.id === jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'failure');
  assert.equal(job?.runnerName, 'sh-1');
  assert.deepEqual(sim.runners(), []);
});

test('fake-runner.sh waits for a job queued after it connected, and a second use of its JIT config fails', async (t) => {
  if (!requirePrereqs(t, program('busybox'))) return;
  const { sim, jitFile } = await setup(t);
  const file = await jitFile('sh-2', ['flint']);
  const running = runScript([sim.apiUrl, file, '20']);
  // Queue once the runner is online: the long-poll must pick it up.
  for (let i = 0; i < 200 && sim.runners()[0]?.status !== 'online'; i++) await new Promise((r) => setTimeout(r, 50));
  const { jobId } = await sim.queueJob({ repo: 'web', labels: ['FLINT'] });
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`completed job_id=${jobId} conclusion=success`));
  const again = await runScript([sim.apiUrl, file, '1']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /connect failed/);
});

test('fake-runner.sh without a matching job disconnects and exits 3', async (t) => {
  if (!requirePrereqs(t, program('busybox'))) return;
  const { sim, jitFile } = await setup(t);
  await sim.queueJob({ repo: 'app', labels: ['gpu'] });
  const r = await runScript([sim.apiUrl, await jitFile('sh-3', ['flint']), '1']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /no job within 1s/);
  assert.deepEqual(sim.runners(), [], 'the runner went away');
  assert.equal(sim.jobs()[0]?.status, 'queued');
});
