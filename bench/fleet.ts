/**
 * `npm run bench -- fleet [--jobs N] [--window-ms MS] [--job-ms MS] [--max-runners N] [--connections N] [--warmup N] [--pause-ms MS] [--kill-after N] [--timeout-ms MS]`
 *
 * A fleet of three Flint hosts on one PostgreSQL under a burst of queued
 * jobs, with the leader killed mid-run. The model is bench/burst.ts (one
 * host); what differs:
 *   - one throw-away PostgreSQL cluster (test/helpers/postgres.ts), a fresh
 *     schema in it;
 *   - three hosts, each a process of its own (bench/_fleet-host.ts):
 *     `startFlint` on that store, its own instance id (`fa`, `fb`, `fc`)
 *     and state directory, InstantDriver / FakeNetwork / FakeDisks as in
 *     burst, the fleet's heartbeat and lease at their defaults (10 s,
 *     30 s ttl) and the once-per-fleet loops at their default intervals;
 *   - one GitHub stand-in for the whole fleet, in this process: MemoryGitHub
 *     (test/fakes; the GitHubPort contract suite runs against it), which
 *     each host reaches through a GitHubPort that forwards every call over
 *     IPC. Not the simulator through the real client: that client spaces
 *     writes one second apart, so each host would register about one
 *     runner a second. Every call is counted here, by host and method.
 *   - GitHub's dispatch as in burst, here too: a runner that comes online
 *     (its host tells this process when its driver starts the VM) takes the
 *     oldest job nobody took yet; that job's `in_progress` is delivered,
 *     signed, to the hosts in turn (a load balancer's round robin; a host
 *     that fails the request is skipped and the next one tried). `--job-ms`
 *     after its answer the job ends: the runner's registration goes
 *     (ephemeral) and its host is told, where the guest prints
 *     `runner-exited` and its VM ends; beside that, the job's `completed` is
 *     delivered the same way (a runner never waits for a webhook).
 *
 * After a warm-up of `--warmup` (150) jobs at the same pace, waited for
 * and not counted (each host's hot paths compiled and its statements
 * prepared, as on a Flint that has been up: with one job per host the first
 * seconds measured V8's compiler), and a quiet spell of `--pause-ms`
 * (10,000: work comes in waves, and a host must be as quick after a lull;
 * see keepHeapWhenQuiet in src/entrypoints/flint.ts), `--jobs` (2,000) queued deliveries go
 * round robin to the three hosts' webhook endpoints, spread evenly over
 * `--window-ms` (40,000 ms, i.e. 50/s), on `--connections` keep-alive
 * connections. 50 jobs a second is a busy fleet's steady load, kept up
 * through the leader's failover (the kill comes a third of the way in, the
 * lease moves 20 – 40 s later, while jobs still arrive). Three hosts,
 * PostgreSQL and the bench share this machine's cores: at 500/s (4,000 ms)
 * they run out of CPU and every stage waits for one (docs/fleet.md, "Where
 * a job's time goes"); a single host's burst is bench/burst.ts. Each host
 * may run `--max-runners` (40) VMs: 120 for the fleet, more than the jobs
 * need at this rate with jobs of a few ms, so that waiting on a free place
 * measures the hosts' pace, not a limit of the bench.
 *
 * Once `--kill-after` jobs completed (a third), the host holding the
 * `singletons` lease (FleetStore, `fleet_leases`) is killed with SIGKILL.
 * failover_s: from the kill until the lease row names another host
 * (polled every 100 ms). With the default ttl the lease lapses 30 s after
 * the dead host's last renewal and is taken at another host's next renewal,
 * so 20 – 40 s after the kill. The jobs the dead host had claimed must
 * still complete: its claims expire and the others take them. Jobs that
 * were running on its VMs at the kill complete on GitHub's side too (a
 * real runner that vanishes fails its job; the dispatch here does not model
 * that): their count is printed.
 *
 * completed: burst jobs GitHub's side saw `completed`. The bench waits for
 * all of them until `--timeout-ms` (300 s) and prints what is missing.
 * duplicate_starts: VMs started during the burst (all hosts) whose runner
 * never ran a job, plus runner names started twice. The dispatch gives a
 * runner that comes online the oldest job waiting at once, so a runner
 * without a job came online when no job was left for it: a VM beyond
 * demand, also one the killed host held idle at the kill (those are
 * printed apart). Counted per runner, not as starts minus jobs, so an idle
 * warm-up runner that took a burst job cannot hide one. github_calls_per_job: every host's GitHub
 * calls from the first burst delivery until all completed, divided by the
 * jobs. p99_ms: per burst job, VM start requested (the driver of the host
 * that started the runner which took it) − received (the job record's
 * `queued` receipt, from whichever host took the delivery), as burst
 * defines it: a job taken by a runner already up counts 0. Both times are
 * this machine's clock.
 *
 * FLINT_BENCH_CPU_PROF=<dir>: each host process writes a V8 CPU profile
 * (--cpu-prof) there when it ends (not the killed one).
 *
 * Prints its figures, then as the LAST line one JSON object:
 *   {"bench":"fleet","hosts":3,"jobs":…,"completed":…,"duplicate_starts":…,"github_calls_per_job":…,"failover_s":…,"p99_ms":…}
 * Targets: all completed, zero duplicate starts, failover under 30 s,
 * p99 ≤ 100 ms. Figures: docs/operations.md.
 */
import { FLEET_DEFAULTS as FLEET_TIMES } from '../src/daemon/fleet.ts';
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { FlintError } from '../src/core/errors/index.ts';
import type { JobAction } from '../src/core/jobs.ts';
import type { LogLevel } from '../src/config/types.ts';
import type { JitRunner } from '../src/daemon/ports/github.ts';
import { MemoryGitHub } from '../test/fakes/memory-github.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import type { FromHost, JobRecordView, ToHost } from './_fleet-host.ts';
import { signedDelivery, workflowJobPayload } from './_payload.ts';

export interface FleetOptions {
  readonly hosts: number;
  readonly jobs: number;
  /** The queued deliveries are spread evenly over this many ms. */
  readonly windowMs: number;
  /** How long each fake job runs, from its in_progress to its completed. */
  readonly jobMs: number;
  /** Per host. */
  readonly maxRunners: number;
  /** Keep-alive connections of the sender, over all hosts. */
  readonly connections: number;
  /** Jobs sent before the measured ones, at their pace, and waited for; not counted. */
  readonly warmup: number;
  /** Quiet time between the warm-up's end and the first measured job. */
  readonly pauseMs: number;
  /** Kill the lease holder once this many burst jobs completed; undefined: a third of them. */
  readonly killAfter?: number;
  /** Give up waiting for the jobs to complete after this long. */
  readonly timeoutMs: number;
  readonly logLevel: LogLevel;
  /** Aborted (SIGINT, SIGTERM): stop waiting, close everything, answer what was measured. */
  readonly signal?: AbortSignal;
}

export const FLEET_DEFAULTS: FleetOptions = {
  hosts: 3, jobs: 2000, windowMs: 40_000, jobMs: 5, maxRunners: 40, connections: 24, warmup: 150, pauseMs: 10_000, timeoutMs: 300_000, logLevel: 'warn',
};

export interface FleetResult {
  readonly hosts: number;
  readonly jobs: number;
  readonly accepted: number;
  readonly completed: number;
  /** VMs started during the burst whose runner never ran a job, plus runner names started twice. */
  readonly duplicateStarts: number;
  /** Of those VMs, the ones the killed host held idle at the kill. */
  readonly lostUnused: number;
  /** The VMs counted in duplicateStarts (at most 10): host, runner name, ms after the first burst delivery. */
  readonly beyondDemand: readonly string[];
  readonly starts: number;
  readonly startsByHost: Readonly<Record<string, number>>;
  readonly githubCalls: number;
  readonly githubCallsByHost: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly failoverS: number;
  /** The host killed (it held the lease) and the one that took the lease over. */
  readonly killed: string;
  readonly newLeader: string;
  /** Burst jobs running on the killed host's VMs at the kill. */
  readonly runningAtKill: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly measured: number;
  readonly foundIdle: number;
  readonly sendMs: number;
  /** From the first delivery sent until every burst job completed. */
  readonly drainMs: number;
  /** VMs still alive on the surviving hosts once all completed (idle runners beyond demand). */
  readonly liveVmsAfter: number;
  /** Runner registrations GitHub still holds after the surviving hosts closed (the killed host's are among them). */
  readonly leftoverRunners: number;
  /** in_progress/completed deliveries no host took. */
  readonly dispatchErrors: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

const ORG = 'flint-fleet';
const REPO = 'widgets';
const LABELS = ['self-hosted', 'linux', 'x64'];

interface Host {
  readonly id: string;
  readonly child: ChildProcess;
  readonly stateDir: string;
  url: string;
  alive: boolean;
  pool: Pool | undefined;
  readonly exited: Promise<void>;
  readonly listeners: Set<(m: FromHost) => void>;
}

/** Runs the fleet bench and returns its figures; leaves no process, cluster or file behind. */
export async function runFleet(o: FleetOptions): Promise<FleetResult> {
  const secret = randomBytes(20).toString('hex');
  const cluster = await startPostgres();
  const hosts: Host[] = [];
  let db: pg.Client | undefined;
  try {
    const postgresUrl = await cluster.createSchema();
    db = new pg.Client({ connectionString: postgresUrl });
    await db.connect();
    const github = new MemoryGitHub({ org: ORG, repos: [REPO] });
    const calls = new Map<string, Map<string, number>>();
    let counting = false;
    const runnerIds = new Map<string, number>();

    // --- the hosts ---------------------------------------------------------
    const ids = Array.from({ length: o.hosts }, (_, i) => `f${String.fromCharCode(97 + i)}`);
    for (const id of ids) {
      const stateDir = mkdtempSync(join(tmpdir(), `flint-bench-fleet-${id}-`));
      // The VMs' files would be the runner uid's: the state dir lets it pass, as in burst.
      chmodSync(stateDir, 0o711);
      const child = fork(fileURLToPath(new URL('./_fleet-host.ts', import.meta.url)), [], {
        execArgv: ['--import', 'tsx', ...(process.env.FLINT_BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.FLINT_BENCH_CPU_PROF}`])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise<void>((resolve) => { child.once('exit', () => resolve()); });
      const host: Host = { id, child, stateDir, url: '', alive: true, pool: undefined, exited, listeners: new Set() };
      child.on('message', (m: FromHost) => {
        if (m.type === 'github') void answer(host, m);
        else if (m.type === 'started') runnerStarted(host, m.runner, m.at);
        for (const fn of host.listeners) fn(m);
      });
      hosts.push(host);
    }
    const next = <K extends FromHost['type']>(h: Host, type: K): Promise<Extract<FromHost, { type: K }>> => new Promise((resolve, reject) => {
      const fn = (m: FromHost): void => {
        if (m.type === 'failed') { h.listeners.delete(fn); reject(new Error(`host ${h.id}: ${m.message}`)); }
        if (m.type !== type) return;
        h.listeners.delete(fn);
        resolve(m as Extract<FromHost, { type: K }>);
      };
      h.listeners.add(fn);
      void h.exited.then(() => reject(new Error(`host ${h.id} ended before sending ${type}`)));
    });
    const tell = (h: Host, m: ToHost): void => { if (h.alive && h.child.connected) h.child.send(m); };

    // --- GitHub: the API every host calls ----------------------------------
    async function answer(h: Host, m: Extract<FromHost, { type: 'github' }>): Promise<void> {
      if (counting) {
        let byKind = calls.get(h.id);
        if (byKind === undefined) calls.set(h.id, byKind = new Map());
        byKind.set(m.method, (byKind.get(m.method) ?? 0) + 1);
      }
      const args = m.method === 'listFailedDeliveries'
        ? m.args.map((a) => (a instanceof Object && 'since' in a && typeof a.since === 'string' ? { since: new Date(a.since) } : a))
        : m.args;
      try {
        // The host called this very method of its GitHubPort with these arguments.
        const fn = github[m.method] as (...a: unknown[]) => Promise<unknown>;
        const value = await fn.apply(github, [...args]);
        if (m.method === 'createJitRunner') {
          const jit = value as JitRunner;
          runnerIds.set(jit.runnerName, jit.runnerId);
        }
        tell(h, { type: 'github-reply', id: m.id, value });
      } catch (err) {
        const code = err instanceof FlintError ? err.code : 'FLINT_ERR_GITHUB_REQUEST_FAILED';
        tell(h, { type: 'github-reply', id: m.id, error: { code, message: err instanceof Error ? err.message : String(err) } });
      }
    }

    // --- GitHub: the dispatch -----------------------------------------------
    const waiting: number[] = [];
    const idle: string[] = [];
    const runnerHost = new Map<string, Host>();
    const starts: { host: string; runner: string; at: number }[] = [];
    const running = new Map<number, string>(); // job → runner
    /** Runners that took a job. */
    const ranJob = new Set<string>();
    const completedJobs = new Set<number>();
    let dispatchErrors = 0;
    let rr = 0;
    /** Delivers one event to the hosts in turn; a host that fails it is skipped for the next. */
    const deliver = async (jobId: number, action: JobAction, runner?: string): Promise<number> => {
      const d = signedDelivery(secret, 'workflow_job', workflowJobPayload({ jobId, action, org: ORG, repo: REPO, labels: LABELS, ...(runner === undefined ? {} : { runnerName: runner }) }));
      for (let attempt = 0; attempt < hosts.length * 2; attempt++) {
        const live = hosts.filter((h) => h.alive);
        const h = live[rr++ % live.length];
        if (h?.pool === undefined) break;
        try {
          const res = await h.pool.request({ path: '/webhook', method: 'POST', headers: d.headers, body: d.body });
          await res.body.dump();
          if (res.statusCode < 500) return res.statusCode;
        } catch {
          // The host died under the request: the balancer tries the next.
        }
      }
      return 599;
    };
    const runJob = async (runner: string, jobId: number): Promise<void> => {
      running.set(jobId, runner);
      ranJob.add(runner);
      const runnerId = runnerIds.get(runner);
      if (runnerId !== undefined) github.takeJob(runnerId, jobId);
      // As in burst: the job runs from its in_progress delivery's answer on,
      // and the runner ends with it; `completed` is delivered beside that.
      let ok = (await deliver(jobId, 'in_progress', runner)) < 300;
      await sleep(o.jobMs);
      github.completeJob(jobId, 'success');
      if (runnerId !== undefined) github.runnerDone(runnerId);
      const h = runnerHost.get(runner);
      if (h !== undefined) tell(h, { type: 'job-done', runner });
      ok = (await deliver(jobId, 'completed', runner)) < 300 && ok;
      if (!ok) dispatchErrors++;
      running.delete(jobId);
      completedJobs.add(jobId);
    };
    const jobQueued = (jobId: number): void => {
      const r = idle.shift();
      if (r === undefined) waiting.push(jobId);
      else void runJob(r, jobId);
    };
    function runnerStarted(h: Host, runner: string, at: number): void {
      starts.push({ host: h.id, runner, at });
      runnerHost.set(runner, h);
      const jobId = waiting.shift();
      if (jobId === undefined) idle.push(runner);
      else void runJob(runner, jobId);
    }
    const queue = (): number => github.queueJob(REPO, LABELS);

    // --- start ---------------------------------------------------------------
    const ready = await Promise.all(hosts.map(async (h) => {
      const r = next(h, 'ready');
      tell(h, { type: 'start', options: { instanceId: h.id, stateDir: h.stateDir, postgresUrl, secret, org: ORG, maxRunners: o.maxRunners, logLevel: o.logLevel } });
      return r;
    }));
    hosts.forEach((h, i) => {
      h.url = ready[i]?.url ?? '';
      h.pool = new Pool(h.url, { connections: Math.max(1, Math.ceil(o.connections / hosts.length)), pipelining: 1 });
    });
    const waitCompleted = async (want: ReadonlySet<number>, deadline: number): Promise<boolean> => {
      while (Date.now() < deadline && o.signal?.aborted !== true) {
        if ([...want].every((j) => completedJobs.has(j))) return true;
        await sleep(20);
      }
      return false;
    };

    // Warm-up, not counted: jobs at the burst's pace (at least one per
    // host), so each host's hot paths are compiled and its statements
    // prepared before anything is measured, as on a Flint that has been up.
    const warm = new Set<number>();
    const warmJobs = Math.max(hosts.length, o.warmup);
    const warmGapMs = o.windowMs / Math.max(1, o.jobs);
    const tw = Date.now();
    await Promise.all(Array.from({ length: warmJobs }, async (_, i) => {
      await sleep(Math.max(0, tw + i * warmGapMs - Date.now()));
      const jobId = queue();
      warm.add(jobId);
      jobQueued(jobId);
      if (await deliver(jobId, 'queued') >= 300) throw new Error('a warm-up delivery was refused');
    }));
    if (!(await waitCompleted(warm, Date.now() + 60_000))) throw new Error('the warm-up jobs did not complete within 60 s');
    // A quiet spell before the measured jobs, as a fleet has between waves of work.
    await sleep(o.pauseMs);
    const startsBefore = starts.length;
    counting = true;

    // --- the burst -----------------------------------------------------------
    const burst: number[] = [];
    const t0 = Date.now();
    let accepted = 0;
    let lastAck = t0;
    let sent = 0;
    const sender = async (): Promise<void> => {
      for (let i = sent++; i < o.jobs; i = sent++) {
        const due = t0 + (i * o.windowMs) / o.jobs;
        if (due > Date.now()) await sleep(due - Date.now());
        if (o.signal?.aborted === true) return;
        // GitHub knows the job before it tells anyone.
        const jobId = queue();
        burst.push(jobId);
        jobQueued(jobId);
        const status = await deliver(jobId, 'queued');
        if (status >= 200 && status < 300) accepted++;
        lastAck = Date.now();
      }
    };
    const sending = Promise.all(Array.from({ length: o.connections }, sender));

    // The kill, once a third completed.
    const killAfter = o.killAfter ?? Math.floor(o.jobs / 3);
    let killed = '';
    let newLeader = '';
    let failoverS = NaN;
    let runningAtKill = 0;
    let tKill = 0;
    const holder = async (): Promise<string | undefined> =>
      (await db?.query<{ holder: string }>("SELECT holder FROM fleet_leases WHERE name = 'singletons'"))?.rows[0]?.holder;
    const killAndWatch = async (): Promise<void> => {
      if (tKill === 0) {
        if (burst.filter((j) => completedJobs.has(j)).length < killAfter) return;
        const id = await holder();
        const h = hosts.find((x) => x.id === id);
        if (h === undefined) return; // no leader yet: try again at the next look
        tKill = Date.now();
        h.child.kill('SIGKILL');
        h.alive = false;
        killed = h.id;
        runningAtKill = [...running.values()].filter((r) => runnerHost.get(r) === h).length;
        // Its runners went with it: GitHub gives them nothing more.
        for (let i = idle.length - 1; i >= 0; i--) if (runnerHost.get(idle[i] ?? '') === h) idle.splice(i, 1);
        await h.exited;
        void h.pool?.destroy();
        return;
      }
      if (newLeader === '') {
        const id = await holder();
        if (id !== undefined && id !== killed) {
          newLeader = id;
          failoverS = (Date.now() - tKill) / 1000;
        }
      }
    };
    let sendingDone = false;
    void sending.then(() => { sendingDone = true; });
    let finished = false;
    while (Date.now() < t0 + o.timeoutMs && o.signal?.aborted !== true) {
      await killAndWatch();
      if (sendingDone && burst.every((j) => completedJobs.has(j))) {
        finished = true;
        break;
      }
      await sleep(100);
    }
    await sending;
    const drainMs = Date.now() - t0;
    // The lease may move after the last job: keep watching, within the deadline.
    while (tKill !== 0 && newLeader === '' && Date.now() < t0 + o.timeoutMs && o.signal?.aborted !== true) {
      await killAndWatch();
      await sleep(100);
    }
    counting = false;
    const sendMs = lastAck - t0;

    const live = hosts.filter((h) => h.alive);
    // A start beyond demand would come with the ticks after the last job: one more pass on each host.
    for (const h of live) tell(h, { type: 'poke' });
    await sleep(300);
    let liveVmsAfter = 0;
    for (const h of live) {
      const r = next(h, 'vms');
      tell(h, { type: 'vms' });
      liveVmsAfter += (await r).live;
    }
    if (!finished) {
      const missing = burst.filter((j) => !completedJobs.has(j));
      const onRunner = missing.filter((j) => running.has(j)).length;
      console.error(`fleet: ${missing.length} of ${o.jobs} jobs not completed after ${o.timeoutMs} ms: ${waiting.length} waiting for a runner, ${onRunner} running; first missing: ${missing.slice(0, 20).join(', ')}`);
    }

    // Latency, as burst: start requested − received, per burst job.
    const records: JobRecordView[] = [];
    const reader = live[0];
    if (reader !== undefined) {
      for (let i = 0; i < burst.length; i += 500) {
        const r = next(reader, 'records');
        tell(reader, { type: 'records', jobIds: burst.slice(i, i + 500) });
        records.push(...(await r).records);
      }
    }
    const allStarts = starts; // warm-up runners may take burst jobs
    const startedAt = new Map(allStarts.map((s) => [s.runner, s.at]));
    const latencies: number[] = [];
    let foundIdle = 0;
    for (const rec of records) {
      const received = rec.queued ?? rec.jobStarted;
      const started = rec.runnerName === null ? undefined : startedAt.get(rec.runnerName);
      if (received === null || started === undefined) continue;
      if (started < received) foundIdle++;
      latencies.push(Math.max(0, started - received));
    }
    latencies.sort((a, b) => a - b);
    const burstStarts = starts.slice(startsBefore);
    // A runner that came online while no job waited never ran one: its VM was beyond demand.
    const unused = burstStarts.filter((s) => !ranJob.has(s.runner));
    const lostUnused = unused.filter((s) => s.host === killed && s.at <= tKill).length;
    const duplicateStarts = unused.length + (starts.length - new Set(starts.map((s) => s.runner)).size);
    const beyondDemand = unused.slice(0, 10).map((s) => `${s.runner} at ${s.at - t0} ms${s.host === killed && s.at <= tKill ? ' (killed host)' : ''}`);
    const startsByHost: Record<string, number> = {};
    for (const s of burstStarts) startsByHost[s.host] = (startsByHost[s.host] ?? 0) + 1;
    const githubCallsByHost: Record<string, Record<string, number>> = {};
    let githubCalls = 0;
    for (const [h, byKind] of calls) {
      githubCallsByHost[h] = Object.fromEntries([...byKind].sort((a, b) => b[1] - a[1]));
      for (const n of byKind.values()) githubCalls += n;
    }

    await closeHosts(hosts);
    const leftoverRunners = (await github.listRunners({ kind: 'organization' })).length;
    return {
      hosts: o.hosts, jobs: o.jobs, accepted, completed: burst.filter((j) => completedJobs.has(j)).length,
      duplicateStarts, lostUnused, beyondDemand, starts: burstStarts.length, startsByHost, githubCalls, githubCallsByHost,
      failoverS, killed, newLeader, runningAtKill,
      p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.at(-1) ?? NaN, measured: latencies.length, foundIdle,
      sendMs, drainMs, liveVmsAfter, leftoverRunners, dispatchErrors,
    };
  } finally {
    await closeHosts(hosts);
    await db?.end().catch(() => undefined);
    await cluster.stop();
    for (const h of hosts) rmSync(h.stateDir, { recursive: true, force: true });
  }
}

/** Closes every host still alive (its Flint closes, its process ends); kills one that does not end within 30 s. */
async function closeHosts(hosts: readonly Host[]): Promise<void> {
  await Promise.all(hosts.map(async (h) => {
    await h.pool?.close().catch(() => undefined);
    h.pool = undefined;
    if (h.child.exitCode !== null || h.child.signalCode !== null) return;
    if (h.child.connected) h.child.send({ type: 'close' } satisfies ToHost);
    h.alive = false;
    const timer = setTimeout(() => h.child.kill('SIGKILL'), 30_000);
    await h.exited;
    clearTimeout(timer);
  }));
}

export default async function bench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'jobs': { type: 'string' }, 'window-ms': { type: 'string' }, 'job-ms': { type: 'string' }, 'max-runners': { type: 'string' },
      'connections': { type: 'string' }, 'kill-after': { type: 'string' }, 'timeout-ms': { type: 'string' }, 'warmup': { type: 'string' }, 'pause-ms': { type: 'string' },
    },
  });
  const num = (v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${String(v)}`);
    return n;
  };
  const d = FLEET_DEFAULTS;
  const o: FleetOptions = {
    ...d,
    jobs: num(values.jobs, d.jobs), windowMs: num(values['window-ms'], d.windowMs), jobMs: num(values['job-ms'], d.jobMs),
    maxRunners: num(values['max-runners'], d.maxRunners), connections: num(values.connections, d.connections),
    timeoutMs: num(values['timeout-ms'], d.timeoutMs), warmup: num(values.warmup, d.warmup), pauseMs: num(values['pause-ms'], d.pauseMs),
    ...(values['kill-after'] === undefined ? {} : { killAfter: num(values['kill-after'], 0) }),
    logLevel: process.env.FLINT_BENCH_LOG_LEVEL === 'info' || process.env.FLINT_BENCH_LOG_LEVEL === 'debug' ? process.env.FLINT_BENCH_LOG_LEVEL : d.logLevel,
  };
  const killAfter = o.killAfter ?? Math.floor(o.jobs / 3);
  // Interrupted: close the hosts and the cluster before ending, as at the end of a run.
  const abort = new AbortController();
  const interrupt = (): void => { abort.abort(); };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  console.log(`fleet: ${o.hosts} hosts (processes) on one PostgreSQL; ${o.jobs} queued deliveries round robin over ${o.windowMs} ms on ${o.connections} connections; maxRunners ${o.maxRunners} per host (${o.maxRunners * o.hosts} in all); each fake job runs ${o.jobMs} ms; the lease holder killed after ${killAfter} completed; lease ttl ${FLEET_TIMES.leaseTtlMs / 1000} s, heartbeat ${FLEET_TIMES.heartbeatMs / 1000} s, claim ttl ${FLEET_TIMES.claimTtlMs / 1000} s (defaults)`);
  let r: FleetResult;
  try {
    r = await runFleet({ ...o, signal: abort.signal });
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
  const f = (n: number): string => n.toFixed(1);
  const perJob = r.githubCalls / r.jobs;
  console.log(`  sent ${r.jobs} in ${r.sendMs} ms, accepted ${r.accepted}; ${r.completed} completed, all after ${r.drainMs} ms; VM starts ${r.starts} (${Object.entries(r.startsByHost).map(([h, n]) => `${h} ${n}`).join(', ')}); ${r.liveVmsAfter} VMs alive after`);
  console.log(`  killed ${r.killed || 'nobody'} (lease holder; ${r.runningAtKill} jobs were running on its VMs); lease taken by ${r.newLeader || 'nobody'} ${f(r.failoverS)} s after the kill (target < 30 s)`);
  console.log(`  received → VM start requested: p50 ${f(r.p50Ms)} ms  p99 ${f(r.p99Ms)} ms  max ${f(r.maxMs)} ms  (target p99 ≤ 100 ms; ${r.measured} jobs measured, ${r.foundIdle} found a runner already up)`);
  console.log(`  GitHub calls ${r.githubCalls} (${perJob.toFixed(2)} per job): ${Object.entries(r.githubCallsByHost).map(([h, k]) => `${h} {${Object.entries(k).map(([m, n]) => `${m} ${n}`).join(', ')}}`).join('; ')}`);
  console.log(`  duplicate starts ${r.duplicateStarts} (VMs whose runner ran no job; ${r.lostUnused} of them idle on the killed host at the kill); deliveries no host took ${r.dispatchErrors}; runner registrations left at GitHub ${r.leftoverRunners}`);
  if (r.beyondDemand.length > 0) console.log(`  VMs whose runner ran no job: ${r.beyondDemand.join(', ')}`);
  console.log(JSON.stringify({
    bench: 'fleet', hosts: r.hosts, jobs: r.jobs, completed: r.completed, duplicate_starts: r.duplicateStarts,
    github_calls_per_job: Number(perJob.toFixed(2)), failover_s: Number(f(r.failoverS)), p99_ms: Number(f(r.p99Ms)),
  }));
}
