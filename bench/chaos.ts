/**
 * `npm run bench -- chaos [--jobs N] [--kills N] [--fault-rate R] [--seed N] [--max-runners N] [--job-seconds S] [--deadline-min M]`
 *
 * Flint on a bad day, with real VMs (QEMU; software emulation is fine):
 *   - the end-to-end topology of the tests (test/helpers/topology.ts): the
 *     GitHub simulator in an "internet" namespace, Flint and its bridge in
 *     this benchmark's own private namespace, guests through Flint's NAT;
 *   - Flint runs in a child process (test/vm/flint-child.ts) and is killed
 *     with SIGKILL at random moments while jobs are in flight, then started
 *     again on the same state directory, `--kills` (3) times;
 *   - the simulator drops, duplicates and reorders `--fault-rate` (30 %) of
 *     its webhook deliveries (a third each), and answers GitHub API calls
 *     with bursts of 502s, secondary rate limits (429 with retry-after) and
 *     spent primary limits (403, reset a few seconds on);
 *   - `--jobs` (20) jobs are queued over the first minute, across two
 *     repositories.
 * Everything random comes from `--seed`, so a run can be repeated (the
 * timing of real VMs still varies).
 *
 * When every job has completed (or `--deadline-min` has passed), Flint is
 * stopped with SIGTERM and the benchmark counts what is left: VMM
 * processes, taps, address leases, runner states and unfinished VM records
 * of this instance, and runner registrations in GitHub.
 *
 *   completed      jobs GitHub reports completed with success
 *   lost           jobs not completed by the deadline
 *   leaked         everything left after the stop (above)
 *   duplicate_vms  VMs that started beyond one per job (runners are
 *                  single-use and there is no warm pool, so every VM
 *                  above the job count was demand that did not exist)
 *   kills          SIGKILLs of Flint
 *
 * Prints its figures, then as the LAST line one JSON object:
 *   {"bench":"chaos","jobs":…,"completed":…,"lost":…,"leaked":…,"duplicate_vms":…,"kills":…}
 * Target: every job completed, nothing lost or leaked, no VM beyond demand.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Faults } from '../tools/github-sim/index.ts';
import { seededRandom } from '../tools/github-sim/random.ts';
import { openDatabase } from '../src/adapters/store/db.ts';
import { e2eSetup } from '../test/helpers/e2e-flint.ts';
import type { Scope } from '../test/helpers/prereq.ts';
import { exited, startChildFlint } from '../test/helpers/child-flint.ts';
import { inOwnNetns } from './_netns.ts';

const INSTANCE = 'chaos';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const elapsed = (since: number): string => `${((Date.now() - since) / 1000).toFixed(0)} s`;

export default async function main(argv: string[]): Promise<void> {
  inOwnNetns('chaos', argv, 'bridges, taps, namespaces and QEMU');
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '20' }, kills: { type: 'string', default: '3' }, 'fault-rate': { type: 'string', default: '0.3' },
      seed: { type: 'string', default: '1' }, 'max-runners': { type: 'string', default: '3' }, 'job-seconds': { type: 'string', default: '8' },
      'deadline-min': { type: 'string', default: '30' },
    },
  });
  const jobs = Number(values.jobs);
  const kills = Number(values.kills);
  const faultRate = Number(values['fault-rate']);
  const seed = Number(values.seed);
  const maxRunners = Number(values['max-runners']);
  const jobSeconds = Number(values['job-seconds']);
  const deadlineMs = Number(values['deadline-min']) * 60_000;
  const random = seededRandom(seed);

  const closers: Array<() => unknown> = [];
  const scope: Scope = {
    after: (fn) => { closers.push(fn); },
    skip: (message) => { throw new Error(`chaos: cannot run: ${message ?? 'a prerequisite is missing'}`); },
  };
  try {
    const setup = await e2eSetup(scope, {
      org: 'flint-chaos', instanceId: INSTANCE, bridge: 'br-flint-chaos', gateway: '10.217.0.1', jobSeconds, runner: { maxRunners },
    });
    if (setup === undefined) throw new Error('chaos: prerequisites missing');
    const { sim, config, secret, guestExtras } = setup;
    const logFile = join(config.stateDir, '..', 'flint.log');
    const child = {
      config, guestExtras, logFile, secret,
      // News overdue after 20 s is asked of GitHub; failed deliveries are asked for again every 5 s.
      flint: { jobTruth: { intervalMs: 3000, queuedAfterMs: 20_000, inProgressAfterMs: 20_000 }, redeliver: { intervalMs: 5000 }, backoff: { initialMs: 1000, maxMs: 5000, jitter: 0.5 } },
    };

    const webhookFaults = { seed, webhooks: { dropRate: faultRate / 3, duplicateRate: faultRate / 3, reorderRate: faultRate / 3, holdMs: 2000 } };
    sim.faults.set(webhookFaults);
    const start = Date.now();
    console.log(`chaos: ${jobs} jobs (${jobSeconds} s each), maxRunners ${maxRunners}, ${kills} SIGKILLs, ${Math.round(faultRate * 100)} % of deliveries dropped/duplicated/reordered, API error bursts; seed ${seed}`);

    let flint = await startChildFlint(setup.closeFirst, child);
    sim.setWebhook({ url: `${flint.url}/webhook`, secret });

    // Jobs over the first minute, two repositories. A failure of the side tasks ends the run (and its clean-up) at once.
    let sideFailure: unknown;
    const side = (task: Promise<void>): Promise<void> => task.catch((err: unknown) => { sideFailure ??= err; });
    const queued: number[] = [];
    const queueing = side((async () => {
      for (let i = 0; i < jobs; i++) {
        await sleep(random() * (60_000 / jobs) * 2);
        const q = await sim.queueJob({ repo: i % 2 === 0 ? 'app' : 'web', labels: ['self-hosted', 'linux'], name: `chaos ${i + 1}` });
        queued.push(q.jobId);
      }
    })());

    // API error bursts: every 15–45 s, one kind for a few seconds.
    let stopBursts = false;
    const bursts = side((async () => {
      const kinds: Array<() => Faults> = [
        () => ({ serverErrors: { forSeconds: 3, status: 502 } }),
        () => ({ secondaryRateLimit: { count: 4, status: 429, retryAfterSeconds: 2 } }),
        () => ({ primaryRateLimit: { count: 6, status: 403, resetAfterSeconds: 5 } }),
      ];
      while (!stopBursts) {
        await sleep(15_000 + random() * 30_000);
        if (stopBursts) break;
        const kind = kinds[Math.floor(random() * kinds.length)] ?? kinds[0];
        if (kind !== undefined) sim.faults.set({ ...webhookFaults, ...kind() });
      }
    })());

    const done = (): boolean => queued.length === jobs && queued.every((id) => sim.jobs().find((j) => j.id === id)?.status === 'completed');
    let killed = 0;
    while (!done() && Date.now() - start < deadlineMs) {
      if (sideFailure !== undefined) throw sideFailure;
      if (killed < kills && sim.jobs().some((j) => j.status === 'in_progress' || j.status === 'queued')) {
        // A random moment while work is in flight: 10–40 s after the last start.
        await sleep(10_000 + random() * 30_000);
        if (done()) break;
        flint.proc.kill('SIGKILL');
        await exited(flint.proc);
        killed += 1;
        const running = sim.jobs().filter((j) => j.status === 'in_progress').length;
        console.log(`  ${elapsed(start)}: SIGKILL ${killed} of ${kills} (${running} jobs in progress); restarting`);
        flint = await startChildFlint(setup.closeFirst, child);
        sim.setWebhook({ url: `${flint.url}/webhook`, secret });
      } else {
        await sleep(1000);
      }
    }
    stopBursts = true;
    await queueing;
    await bursts;
    if (sideFailure !== undefined) throw sideFailure;
    sim.faults.clear();
    const finished = done();
    console.log(`  ${elapsed(start)}: ${finished ? 'every job completed' : 'deadline passed'}; stopping Flint (SIGTERM)`);
    // Let the last VMs end and their registrations go before the stop.
    const quietBy = Date.now() + 120_000;
    while (Date.now() < quietBy && sim.runners().some((r) => r.name.startsWith(`flint-${INSTANCE}-`))) await sleep(1000);
    flint.proc.kill('SIGTERM');
    await exited(flint.proc);

    const simJobs = sim.jobs().filter((j) => queued.includes(j.id));
    const completed = simJobs.filter((j) => j.status === 'completed' && j.conclusion === 'success').length;
    const db = openDatabase(config.stateDir);
    let vmsStarted: number;
    const leftovers: string[] = [];
    try {
      vmsStarted = (db.prepare('SELECT COUNT(*) AS n FROM vms WHERE started_at IS NOT NULL').get() as { n: number }).n; // COUNT(*) row
      const unfinished = (db.prepare("SELECT COUNT(*) AS n FROM vms WHERE state NOT IN ('stopped', 'failed')").get() as { n: number }).n; // COUNT(*) row
      const leases = (db.prepare('SELECT COUNT(*) AS n FROM net_leases').get() as { n: number }).n; // COUNT(*) row
      const states = (db.prepare('SELECT COUNT(*) AS n FROM runner_states').get() as { n: number }).n; // COUNT(*) row
      for (let i = 0; i < unfinished; i++) leftovers.push('unfinished VM record');
      for (let i = 0; i < leases; i++) leftovers.push('address lease');
      for (let i = 0; i < states; i++) leftovers.push('runner state');
    } finally {
      db.close();
    }
    const processes = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.startsWith('qemu-system') && l.includes(`${INSTANCE}-`));
    for (const p of processes) leftovers.push(`VMM process: ${p.slice(0, 80)}`);
    const taps = execFileSync('ip', ['-o', 'link', 'show']).toString().split('\n').filter((l) => l.includes(`f${INSTANCE}-`));
    for (const t of taps) leftovers.push(`tap: ${t.split(':')[1]?.trim() ?? t}`);
    await sim.settled();
    for (const r of sim.runners().filter((x) => x.name.startsWith(`flint-${INSTANCE}-`))) leftovers.push(`runner registration ${r.name}`);

    const stats = sim.faults.stats();
    const restarts = (readFileSync(logFile, 'utf8').match(/vm of a previous Flint process adopted/g) ?? []).length;
    console.log(`  faults: ${stats.webhooksDropped} deliveries dropped, ${stats.webhooksDuplicated} duplicated, ${stats.webhooksReordered} reordered; ${stats.serverErrors} 5xx, ${stats.secondaryRateLimits} secondary and ${stats.primaryRateLimits} primary rate limits`);
    console.log(`  ${completed} of ${jobs} jobs completed; ${vmsStarted} VMs started; ${restarts} VMs adopted after a SIGKILL; ${leftovers.length} things left`);
    for (const l of leftovers) console.log(`    left: ${l}`);
    console.log(JSON.stringify({
      bench: 'chaos', jobs, completed, lost: jobs - completed, leaked: leftovers.length, duplicate_vms: Math.max(0, vmsStarted - jobs), kills: killed,
    }));
  } finally {
    for (const close of closers.reverse()) await close();
  }
}
