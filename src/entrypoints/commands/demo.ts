/**
 * `flint demo` — Flint's main job on embedded defaults, end to end, with no
 * GitHub account and no Firecracker: the GitHub simulator plays GitHub (as
 * a separate program), QEMU plays the hypervisor, and the test guest image
 * runs a fake Actions runner that takes its job from the simulator.
 *
 * What happens: jobs are queued at the simulator, which sends signed
 * `workflow_job` webhooks to Flint; Flint stores them, its scheduler starts
 * one microVM per queued job with a single-use JIT runner, each runner takes
 * a job and finishes it, its VM powers off and is torn down. A job for
 * `ubuntu-latest` shows what Flint ignores.
 *
 * It creates a bridge, taps and addresses, so it runs only inside a private
 * network namespace — `npm run demo` provides one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { demoConfig } from '../../config/demo.ts';
import { FlintError } from '../../core/errors/index.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../../images/paths.ts';
import { runProgram } from '../../images/process.ts';
import type { VmHandle } from '../../daemon/vm/supervisor.ts';
import { startFlint } from '../flint.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint demo [--jobs N] [--timeout SECONDS] [--keep]

Runs Flint end to end on embedded defaults: a GitHub simulator, QEMU, and a
small test guest image. Use \`npm run demo\` (as root), which installs what is
needed and gives the demo a private network namespace.

  --jobs N          jobs to queue (default 3)
  --timeout SECONDS give up after this long (default 600)
  --keep            keep the state directory (database, console logs) afterwards
`;

const GATEWAY = '10.213.0.1';

interface SimInfo { apiUrl: string; port: number; appId: string; privateKey: string; proc: ChildProcess }

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Starts the simulator as its own program and reads what it prints (key=value lines). */
async function startSimulatorProcess(root: string): Promise<SimInfo> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'tools', 'github-sim', 'main.ts'), '--host', '0.0.0.0', '--port', '0', '--org', 'flint-demo'], {
    cwd: root, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = new Map<string, string>();
  const lines = createInterface({ input: proc.stdout! }); // stdio 'pipe' guarantees stdout
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the GitHub simulator exited (${code}) before it was ready`)));
    lines.on('line', (line) => {
      const eq = line.indexOf('=');
      if (eq > 0) info.set(line.slice(0, eq), line.slice(eq + 1));
      if (info.has('api_url') && info.has('private_key_file') && info.has('app_id')) resolve();
    });
  });
  const apiUrl = (info.get('api_url') ?? '').replace('0.0.0.0', '127.0.0.1');
  return { apiUrl, port: Number(new URL(apiUrl).port), appId: info.get('app_id') ?? '', privateKey: readFileSync(info.get('private_key_file') ?? '', 'utf8'), proc };
}

async function control(sim: SimInfo, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${sim.apiUrl}${path}`, {
    method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`simulator ${method} ${path}: HTTP ${res.status}`);
  return res.status === 204 ? undefined : res.json();
}

/** The fake runner, carried to the guest in its config drive: the test image has no runner of its own. */
export function fakeRunnerCommand(root: string): string {
  const script = readFileSync(join(root, 'tools', 'github-sim', 'fake-runner.sh'), 'utf8');
  return [
    "cat > /tmp/fake-runner.sh <<'FLINT_FAKE_RUNNER_EOF'",
    script.trimEnd(),
    'FLINT_FAKE_RUNNER_EOF',
    'umask 077; printf %s "$FLINT_JITCONFIG" > /tmp/jitconfig',
    'sh /tmp/fake-runner.sh "$FLINT_GITHUB_URL" /tmp/jitconfig 120 success 2',
  ].join('\n');
}

interface SimJobView { id: number; status: string; conclusion: string | null; labels: string[]; runner_name?: string | null; runnerName?: string | null }

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { jobs: { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (process.getuid?.() !== 0 || io.env.FLINT_IN_PRIVATE_NETNS !== '1') {
    throw new FlintError('FLINT_ERR_USAGE', 'flint demo creates a bridge, taps and VMs: run it with `sudo npm run demo`, which gives it a private network namespace');
  }
  const jobs = Number(values.jobs ?? 3);
  const timeoutMs = Number(values.timeout ?? 600) * 1000;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 20) throw new FlintError('FLINT_ERR_USAGE', '--jobs takes a number from 1 to 20');
  const say = (m: string): void => { io.stdout.write(`${m}\n`); };
  const started = Date.now();
  const secs = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const root = packageRoot();

  say('flint demo: building the test guest image (cached after the first run)');
  const imageDir = join(DEFAULT_CACHE_DIR, 'test-image');
  await runProgram('sh', [join(root, 'images', 'test', 'build.sh'), imageDir], { tailLines: 40 });
  const kernelArgs = readFileSync(join(imageDir, 'cmdline'), 'utf8').trim().split(/\s+/)
    .filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');

  const stateDir = mkdtempSync(join(tmpdir(), 'flint-demo-'));
  const sim = await startSimulatorProcess(root);
  let flint: Awaited<ReturnType<typeof startFlint>> | undefined;
  try {
    const secret = randomBytes(20).toString('hex');
    const port = await freePort();
    const base = demoConfig({
      apiUrl: sim.apiUrl, appId: sim.appId, privateKey: sim.privateKey, webhookSecret: secret, organization: 'flint-demo',
      stateDir, kernel: join(imageDir, 'vmlinuz'), initrd: join(imageDir, 'initrd.img'), filesystem: join(imageDir, 'rootfs.ext4'),
      address: `127.0.0.1:${port}`, network: { name: 'br-flint-demo', v4: `${GATEWAY}/24`, create: true }, maxRunners: Math.min(jobs, 3),
    });
    const config = { ...base, runners: base.runners.map((r) => ({ ...r, kernelArgs: `${kernelArgs} ${r.kernelArgs}`.trim() })) };
    const logger = createLogger({ level: io.env.FLINT_DEMO_LOG_LEVEL === undefined ? 'warn' : (io.env.FLINT_DEMO_LOG_LEVEL as 'info'), secrets: new Set([secret]), destination: io.stderr });
    flint = await startFlint({
      config, logger, tickMs: 500,
      guestExtras: { FLINT_RUNNER_COMMAND: fakeRunnerCommand(root), FLINT_GITHUB_URL: `http://${GATEWAY}:${sim.port}` },
    });
    await control(sim, 'PUT', '/_sim/webhook', { url: `${flint.url}/webhook`, secret });
    say(`flint demo: GitHub simulator at ${sim.apiUrl}, Flint taking webhooks at ${flint.url}/webhook, state in ${stateDir}`);

    // Narrate what each VM does, from its console markers.
    const seen = new Set<string>();
    const watch = setInterval(() => {
      for (const vm of flint?.supervisor.list() ?? []) {
        if (seen.has(vm.id)) continue;
        seen.add(vm.id);
        narrate(vm, say, secs);
      }
    }, 100);
    try {
      for (let i = 0; i < jobs; i += 1) {
        const { jobId } = await control(sim, 'POST', '/_sim/jobs', { repo: 'app', labels: ['self-hosted', 'linux'], name: `build ${i + 1}` }) as { jobId: number };
        say(`[${secs()}] job ${jobId} queued (runs-on: self-hosted, linux)`);
      }
      const { jobId: ignored } = await control(sim, 'POST', '/_sim/jobs', { repo: 'app', labels: ['ubuntu-latest'], name: 'hosted' }) as { jobId: number };
      say(`[${secs()}] job ${ignored} queued (runs-on: ubuntu-latest) — no runner definition serves it, Flint records it as ignored`);

      let final: SimJobView[] = [];
      while (Date.now() - started < timeoutMs) {
        const state = await control(sim, 'GET', '/_sim/state') as { jobs: SimJobView[] };
        final = state.jobs.filter((j) => j.id !== ignored);
        if (final.length === jobs && final.every((j) => j.status === 'completed')) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      // Let the last VMs finish their teardown before the summary.
      while (Date.now() - started < timeoutMs && (flint.supervisor.list().length > 0)) await new Promise((r) => setTimeout(r, 200));
      const done = final.filter((j) => j.status === 'completed' && j.conclusion === 'success');
      say('');
      say(`flint demo: ${done.length} of ${jobs} jobs completed successfully in ${secs()}, each in its own microVM, every VM torn down`);
      for (const j of final) say(`  job ${j.id}: ${j.status}${j.conclusion ? ` (${j.conclusion})` : ''} on ${j.runner_name ?? j.runnerName ?? '—'}`);
      return done.length === jobs ? 0 : 1;
    } finally {
      clearInterval(watch);
    }
  } finally {
    await flint?.close();
    sim.proc.kill('SIGTERM');
    await new Promise((r) => { if (sim.proc.exitCode !== null) r(undefined); else sim.proc.once('exit', r); });
    if (values.keep) say(`flint demo: state kept in ${stateDir}`);
    else rmSync(stateDir, { recursive: true, force: true });
  }
}

function narrate(vm: VmHandle, say: (m: string) => void, secs: () => string): void {
  say(`[${secs()}] VM ${vm.id} starting for runner definition "${vm.runner}"`);
  vm.onMarker((m) => {
    if (m.kind === 'booted') say(`[${secs()}] VM ${vm.id} booted`);
    if (m.kind === 'runner-started') say(`[${secs()}] VM ${vm.id}: runner flint-${vm.id} started`);
    if (m.kind === 'runner-exited') say(`[${secs()}] VM ${vm.id}: runner exited with code ${m.code}; the VM powers off`);
  });
  void vm.ended.then((o) => say(`[${secs()}] VM ${vm.id} ${o.record.state}, torn down`));
}
