/**
 * `flint demo` — Flint's main job on embedded defaults, end to end, with no
 * GitHub account and no Firecracker: the GitHub simulator plays GitHub (as
 * a separate program), QEMU plays the hypervisor, and the test guest image
 * runs a fake Actions runner that takes its job from the simulator.
 *
 * What happens: a warm pool boots first (definition `warm`, one idle
 * runner). Jobs are queued at the simulator in two repositories for two
 * runner definitions; the simulator sends signed `workflow_job` webhooks to
 * Flint; Flint stores them, its scheduler starts microVMs with single-use
 * JIT runners for the demand, each runner takes a job and finishes it, its
 * VM powers off and is torn down. The warm job starts without a boot. A job
 * for `ubuntu-latest` shows what Flint ignores. The end is a table of
 * per-job timings from Flint's job records, and a count, on the host, of
 * what was left behind.
 *
 * It creates a bridge, taps and addresses, so it runs only inside a private
 * network namespace — `npm run demo` provides one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { demoConfig } from '../../config/demo.ts';
import type { FlintConfig } from '../../config/types.ts';
import { runnerName, tapPrefix } from '../../core/ids.ts';
import { openDatabase } from '../../adapters/store/db.ts';
import type { JobRecord } from '../../daemon/ports/store.ts';
import { FlintError } from '../../core/errors/index.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../../images/paths.ts';
import { runProgram } from '../../images/process.ts';
import type { VmHandle } from '../../daemon/vm/supervisor.ts';
import { startFlint } from '../flint.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint demo [--jobs N] [--timeout SECONDS] [--keep] [--json]

Runs Flint end to end on embedded defaults: a GitHub simulator, QEMU, and a
small test guest image. Use \`npm run demo\` (as root), which installs what is
needed and gives the demo a private network namespace.

Jobs go to two repositories and two runner definitions, one with a warm pool;
the demo ends with a table of per-job timings and counts what was left behind.

  --jobs N          jobs to queue, 2 to 20 (default 5)
  --timeout SECONDS give up after this long (default 600)
  --keep            keep the state directory (database, console logs) afterwards
  --json            end with one JSON line: {"jobs_queued":…,"jobs_completed":…,"leaked":…}
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

interface SimJobView { id: number; status: string; conclusion: string | null; runner_name?: string | null; runnerName?: string | null }
interface SimRunnerView { name: string }

/** One job the demo queued, and for which definition. */
interface DemoJob { readonly id: number; readonly repo: string; readonly definition: 'demo' | 'warm' }

/** What Flint made and did not remove, counted on the host after Flint closed (not taken from Flint's own view). */
export interface Leftovers { readonly vms: number; readonly taps: number; readonly leases: number; readonly runners: number }

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    jobs: { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (process.getuid?.() !== 0 || io.env.FLINT_IN_PRIVATE_NETNS !== '1') {
    throw new FlintError('FLINT_ERR_USAGE', 'flint demo creates a bridge, taps and VMs: run it with `sudo npm run demo`, which gives it a private network namespace');
  }
  const jobs = Number(values.jobs ?? 5);
  const timeoutMs = Number(values.timeout ?? 600) * 1000;
  if (!Number.isInteger(jobs) || jobs < 2 || jobs > 20) throw new FlintError('FLINT_ERR_USAGE', '--jobs takes a number from 2 to 20 (at least one job for each runner definition)');
  const say = (m: string): void => { io.stdout.write(`${m}\n`); };
  const started = Date.now();
  const secs = (at = Date.now()): string => `${((at - started) / 1000).toFixed(1)}s`;
  const root = packageRoot();

  say('flint demo: building the test guest image (cached after the first run)');
  const imageDir = join(DEFAULT_CACHE_DIR, 'test-image');
  await runProgram('sh', [join(root, 'images', 'test', 'build.sh'), imageDir], { tailLines: 40 });
  const kernelArgs = readFileSync(join(imageDir, 'cmdline'), 'utf8').trim().split(/\s+/)
    .filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');

  const stateDir = mkdtempSync(join(tmpdir(), 'flint-demo-'));
  // The VMs run as the runner's unprivileged uid, which must pass through the state dir to their work dirs.
  chmodSync(stateDir, 0o711);
  const sim = await startSimulatorProcess(root);
  let flint: Awaited<ReturnType<typeof startFlint>> | undefined;
  let config: FlintConfig | undefined;
  const queued: DemoJob[] = [];
  let records: JobRecord[] = [];
  let json: string | undefined;
  try {
    try {
      const secret = randomBytes(20).toString('hex');
      const port = await freePort();
      const base = demoConfig({
        apiUrl: sim.apiUrl, appId: sim.appId, privateKey: sim.privateKey, webhookSecret: secret, organization: 'flint-demo',
        stateDir, kernel: join(imageDir, 'vmlinuz'), initrd: join(imageDir, 'initrd.img'), filesystem: join(imageDir, 'rootfs.ext4'),
        address: `127.0.0.1:${port}`, network: { name: 'br-flint-demo', v4: `${GATEWAY}/24`, create: true },
        maxRunners: 2, warm: { minIdle: 1, maxRunners: 2 },
      });
      config = {
        ...base, runners: base.runners.map((r) => ({ ...r, kernelArgs: `${kernelArgs} ${r.kernelArgs}`.trim() })),
        // The guests reach the simulator on the host's bridge address: the one port the policy lets them use there.
        networks: base.networks.map((n) => ({ ...n, hostPorts: [sim.port] })),
      };
      const logger = createLogger({ level: io.env.FLINT_DEMO_LOG_LEVEL === undefined ? 'error' : (io.env.FLINT_DEMO_LOG_LEVEL as 'info'), secrets: new Set([secret]), destination: io.stderr });
      flint = await startFlint({
        config, logger, tickMs: 500,
        // At most four one-vCPU guests at once: under software emulation on a
        // small host, more would only make every boot slower.
        maxVcpus: 4,
        guestExtras: { FLINT_RUNNER_COMMAND: fakeRunnerCommand(root), FLINT_GITHUB_URL: `http://${GATEWAY}:${sim.port}` },
      });
      const running = flint;
      await control(sim, 'PUT', '/_sim/webhook', { url: `${flint.url}/webhook`, secret });
      say(`flint demo: GitHub simulator at ${sim.apiUrl}, Flint taking webhooks at ${flint.url}/webhook, state in ${stateDir}`);
      say('flint demo: runner definitions "demo" (runs-on: self-hosted, flint-demo; no warm pool) and "warm" (runs-on: self-hosted, flint-demo-warm; one runner kept idle)');

      // Narrate what each VM does, from its console markers.
      const seen = new Set<string>();
      const watch = setInterval(() => {
        for (const vm of running.supervisor.list()) {
          if (seen.has(vm.id)) continue;
          seen.add(vm.id);
          narrate(vm, say, secs);
        }
      }, 100);
      try {
        const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
        const inTime = (): boolean => Date.now() - started < timeoutMs;
        say(`[${secs()}] waiting for the warm pool: one "warm" runner booted and idle before any job exists`);
        while (inTime() && (running.scheduler.snapshot().warm?.idle ?? 0) < 1) await sleep(200);
        say(`[${secs()}] warm pool ready`);

        const warmJobs = Math.max(1, Math.round((jobs * 2) / 5));
        // Interleaved, so that both definitions have work from the start.
        const plan: Array<DemoJob['definition']> = [];
        for (let i = 0, w = 0; i < jobs; i += 1) {
          const wantWarm = w < warmJobs && (i % 2 === 0 || jobs - i <= warmJobs - w);
          plan.push(wantWarm ? 'warm' : 'demo');
          if (wantWarm) w += 1;
        }
        for (const [i, definition] of plan.entries()) {
          const repo = definition === 'warm' ? 'web' : 'app';
          const labels = definition === 'warm' ? ['self-hosted', 'flint-demo-warm'] : ['self-hosted', 'flint-demo'];
          const { jobId } = await control(sim, 'POST', '/_sim/jobs', { repo, labels, name: `build ${i + 1}` }) as { jobId: number };
          queued.push({ id: jobId, repo, definition });
          say(`[${secs()}] job ${jobId} queued in flint-demo/${repo} (runs-on: ${labels.join(', ')}) → definition "${definition}"`);
        }
        const { jobId: ignored } = await control(sim, 'POST', '/_sim/jobs', { repo: 'app', labels: ['ubuntu-latest'], name: 'hosted' }) as { jobId: number };
        say(`[${secs()}] job ${ignored} queued (runs-on: ubuntu-latest) — no runner definition serves it, Flint records it as ignored`);

        // Progress: each job's status as GitHub (the simulator) sees it, until Flint has recorded every job's end.
        const lastStatus = new Map<number, string>();
        const ids = new Set(queued.map((j) => j.id));
        while (inTime()) {
          const state = await control(sim, 'GET', '/_sim/state') as { jobs: SimJobView[] };
          for (const j of state.jobs.filter((x) => ids.has(x.id))) {
            if (lastStatus.get(j.id) === j.status) continue;
            lastStatus.set(j.id, j.status);
            const runner = j.runner_name ?? j.runnerName;
            if (j.status === 'in_progress') say(`[${secs()}] job ${j.id} in progress on ${runner ?? '?'}`);
            if (j.status === 'completed') say(`[${secs()}] job ${j.id} completed (${j.conclusion ?? '?'}) on ${runner ?? '?'}`);
          }
          records = await Promise.all(queued.map(async (j) => running.records.getJobRecord(j.id))).then((rs) => rs.filter((r): r is JobRecord => r !== undefined));
          if (records.length === queued.length && records.every((r) => r.status === 'completed')) break;
          await sleep(500);
        }
        // The VMs that ran the jobs power off after their runner: let their teardown finish (the warm pool's idle VM stays until Flint stops).
        const ran = new Set(records.map((r) => r.vmId).filter((v): v is string => v !== null));
        while (inTime() && running.supervisor.list().some((vm) => ran.has(vm.id))) await sleep(200);
        records = (await Promise.all(queued.map(async (j) => running.records.getJobRecord(j.id)))).filter((r): r is JobRecord => r !== undefined);
      } finally {
        clearInterval(watch);
      }
    } finally {
      await flint?.close();
    }
    const leftovers = config === undefined ? { vms: 0, taps: 0, leases: 0, runners: 0 } : await countLeftovers(config, sim);
    const leaked = leftovers.vms + leftovers.taps + leftovers.leases + leftovers.runners;
    const completed = records.filter((r) => r.status === 'completed');
    const succeeded = completed.filter((r) => r.conclusion === 'success');
    say('');
    say(`flint demo: ${succeeded.length} of ${queued.length} jobs completed successfully in ${secs()}, each in its own microVM`);
    say('');
    for (const line of timingTable(queued, records, started)) say(line);
    say('');
    say(`left behind after Flint stopped: ${leftovers.vms} VM processes, ${leftovers.taps} tap devices, ${leftovers.leases} address leases, ${leftovers.runners} runner registrations`);
    json = JSON.stringify({ jobs_queued: queued.length, jobs_completed: completed.length, leaked });
    return succeeded.length === queued.length && leaked === 0 ? 0 : 1;
  } finally {
    sim.proc.kill('SIGTERM');
    await new Promise((r) => { if (sim.proc.exitCode !== null) r(undefined); else sim.proc.once('exit', r); });
    if (values.keep) say(`flint demo: state kept in ${stateDir}`);
    else rmSync(stateDir, { recursive: true, force: true });
    // The last line, after everything else the demo prints.
    if (values.json && json !== undefined) say(json);
  }
}

/**
 * Counts, on the host itself, what Flint made and left: VMM processes whose
 * command line names the state directory, tap devices of the instance in
 * this (private) network namespace, address lease rows of the instance in
 * the state database, and runners of the instance still registered at
 * GitHub (the simulator).
 */
async function countLeftovers(config: FlintConfig, sim: SimInfo): Promise<Leftovers> {
  let vms = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(config.stateDir) && /qemu-system|firecracker|jailer/.test(cmdline)) vms += 1;
  }
  const prefix = tapPrefix(config.instanceId);
  const taps = execFileSync('ip', ['-o', 'link', 'show']).toString().split('\n')
    .filter((l) => l.split(':')[1]?.trim().split('@')[0]?.startsWith(prefix) === true).length;
  const db = openDatabase(config.stateDir);
  let leases: number;
  try {
    const table = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'net_leases'").get() as { n: number }; // count(*) is one number
    leases = table.n === 0 ? 0 : (db.prepare('SELECT count(*) AS n FROM net_leases WHERE instance_id = ?').get(config.instanceId) as { n: number }).n; // count(*) is one number
  } finally {
    db.close();
  }
  const state = await control(sim, 'GET', '/_sim/state') as { runners: SimRunnerView[] };
  const runners = state.runners.filter((r) => r.name.startsWith(runnerName(`${config.instanceId}-`))).length;
  return { vms, taps, leases, runners };
}

/** The per-job timings: each step as seconds since the demo started, then how long the job waited and ran. */
export function timingTable(jobs: readonly DemoJob[], records: readonly JobRecord[], t0: number): string[] {
  const at = (ms: number | null): string => (ms === null ? '—' : `${((ms - t0) / 1000).toFixed(1)}s`);
  const span = (a: number | null, b: number | null): string => (a === null || b === null ? '—' : `${((b - a) / 1000).toFixed(1)}s`);
  const header = ['job', 'repo', 'definition', 'VM', 'queued', 'VM started', 'runner online', 'job started', 'finished', 'waited', ''];
  const rows = jobs.map((j) => {
    const r = records.find((x) => x.jobId === j.id);
    if (r === undefined) return [String(j.id), j.repo, j.definition, '—', '—', '—', '—', '—', '—', '—', 'not recorded by Flint'];
    // A runner online before the job was queued: the job started without waiting for a boot.
    const warm = r.at.runnerOnline !== null && r.at.queued !== null && r.at.runnerOnline < r.at.queued;
    return [String(j.id), j.repo, r.definition, r.vmId ?? '—', at(r.at.queued), at(r.at.vmStarted), at(r.at.runnerOnline), at(r.at.jobStarted), at(r.at.finished),
      span(r.at.queued, r.at.jobStarted), `${r.conclusion ?? r.status}${warm ? ', warm pool: no boot' : ''}`];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function narrate(vm: VmHandle, say: (m: string) => void, secs: () => string): void {
  say(`[${secs()}] VM ${vm.id} starting for runner definition "${vm.runner}"`);
  vm.onMarker((m) => {
    if (m.kind === 'booted') say(`[${secs()}] VM ${vm.id} booted`);
    if (m.kind === 'runner-started') say(`[${secs()}] VM ${vm.id}: runner flint-${vm.id} online, waiting for a job`);
    if (m.kind === 'runner-exited') say(`[${secs()}] VM ${vm.id}: runner exited with code ${m.code}; the VM powers off`);
  });
  void vm.ended.then((o) => say(`[${secs()}] VM ${vm.id} ${o.record.state}, torn down`));
}
