/**
 * `npm run bench -- burst [--jobs N] [--window-ms MS] [--job-ms MS] [--max-runners N] [--connections N]`
 *
 * A burst of queued jobs against a whole Flint daemon: `startFlint` with its
 * real HTTP intake, SQLite store (in a temp dir), scheduler and supervisor.
 * Only the outside edges are fakes or stand-ins:
 *   - the hypervisor is InstantDriver (test/fakes): VMs live in this process,
 *     print their markers at once and run no VMM;
 *   - host network and disks are FakeNetwork and FakeDisks (test/fakes);
 *   - GitHub is MemoryGitHub (test/fakes, the GitHubPort contract suite
 *     runs against it and the real client), or with `--github sim` the
 *     simulator (tools/github-sim) over HTTP through Flint's real client.
 *     The default is memory because the real client spaces GitHub writes
 *     one second apart (plugin-throttling's "write" limiter, GitHub's advice
 *     against secondary rate limits): through it every JIT registration and
 *     every runner removal queue behind each other, about one a second, so
 *     1,000 jobs take over half an hour whatever Flint does;
 *   - the bench itself plays GitHub's job dispatch: it sends the signed
 *     `queued` deliveries (bench/_payload.ts shape, X-Hub-Signature-256 with
 *     the configured secret), hands each runner that comes online the
 *     oldest job nobody took yet, and sends that job's `in_progress` (naming
 *     the runner) and, `--job-ms` later, `completed`; then the guest prints
 *     `runner-exited` and its VM ends, which frees a place under maxRunners.
 *
 * After a small warm-up (not counted: GitHub token, the simulator's runner
 * key, JIT compilation), `--jobs` (1,000) distinct queued deliveries are
 * sent, spread evenly over `--window-ms` (2,000 ms, i.e. 500/s), on
 * `--connections` keep-alive connections. The bench waits until every job
 * completed and every VM ended.
 *
 * Latency, per job that got a VM: Flint's own job record names the runner
 * that took the job (from its `in_progress`) and when the intake received
 * the `queued` delivery; the runner's name is its VM's id, and the driver
 * recorded when Flint asked it to start that VM. Latency = start requested
 * − received. Runners are not bound to jobs, so the VM that ran a job may
 * have been started for an earlier one and been idle when it arrived: that
 * job waited for no VM, and counts 0 ms (how many did is printed). With
 * maxRunners 50, a job that arrives while 50 VMs run waits for one to end:
 * that wait is part of its latency, so the figure measures the whole loop
 * (delivery → store → scheduler → JIT registration → prepare → start; job
 * → VM end → teardown → the next start), not only the scheduler's reaction.
 *
 * duplicate_starts: VM starts beyond the jobs queued, plus runner names
 * started twice. rss_mb: peak resident set of this process (Flint, the
 * simulator and the sender together: an upper bound for Flint's own).
 *
 * Prints its figures, then as the LAST line one JSON object:
 *   {"bench":"burst","sent":…,"accepted":…,"duplicate_starts":…,"p50_ms":…,"p99_ms":…,"rss_mb":…}
 * Targets: all accepted, zero duplicate starts, p99 ≤ 50 ms, RSS ≤ 200 MB.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { demoConfig } from '../src/config/demo.ts';
import type { JobAction } from '../src/core/jobs.ts';
import { runnerName } from '../src/core/ids.ts';
import { createLogger } from '../src/adapters/log/logger.ts';
import type { LogLevel } from '../src/config/types.ts';
import { startFlint } from '../src/entrypoints/flint.ts';
import { startSimulator } from '../tools/github-sim/index.ts';
import { FakeDisks } from '../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../test/fakes/fake-network.ts';
import { InstantDriver } from '../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../test/fakes/memory-github.ts';
import type { InstantGuest } from '../test/fakes/instant-driver.ts';
import { signedDelivery, workflowJobPayload } from './_payload.ts';

export interface BurstOptions {
  readonly jobs: number;
  /** The queued deliveries are spread evenly over this many ms. */
  readonly windowMs: number;
  /** How long each fake job runs, from its in_progress to its completed. */
  readonly jobMs: number;
  readonly maxRunners: number;
  readonly connections: number;
  /** Jobs run before the burst, not counted. */
  readonly warmup: number;
  /** Give up waiting for the jobs to complete after this long. */
  readonly timeoutMs: number;
  readonly logLevel: LogLevel;
  /**
   * `memory`: MemoryGitHub (test/fakes), GitHub's semantics without HTTP —
   * measures Flint's own machinery. `sim`: the simulator over HTTP through
   * Flint's real GitHub client, whose write spacing (plugin-throttling: one
   * POST/DELETE per second, GitHub's advice against secondary rate limits)
   * caps runner registrations at about one a second.
   */
  readonly github: 'memory' | 'sim';
}

export const BURST_DEFAULTS: BurstOptions = {
  jobs: 1000, windowMs: 2000, jobMs: 5, maxRunners: 50, connections: 32, warmup: 5, timeoutMs: 120_000, logLevel: 'warn', github: 'memory',
};

export interface BurstResult {
  readonly sent: number;
  readonly accepted: number;
  readonly duplicateStarts: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Burst jobs whose latency was measured (their record names a runner Flint started). */
  readonly measured: number;
  /** Of those, jobs taken by a runner that was already up when they arrived (latency 0). */
  readonly foundIdle: number;
  readonly rssMb: number;
  /** From the first queued delivery sent to the last one acknowledged. */
  readonly sendMs: number;
  readonly starts: number;
  readonly completed: number;
  /** From the first delivery sent until every job completed and every VM ended. */
  readonly drainMs: number;
  /** Most VMs alive at once (never above maxRunners). */
  readonly peakVms: number;
  /** Runner registrations the simulator still holds after Flint closed. */
  readonly leftoverRunners: number;
  /** Network leases the fake network still holds after Flint closed. */
  readonly leftoverLeases: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

const BURST_FIRST_JOB_ID = 50_000_000;
const WARMUP_FIRST_JOB_ID = 40_000_000;

/** Runs the burst against a fresh Flint and returns its figures; leaves nothing behind. */
export async function runBurst(o: BurstOptions): Promise<BurstResult> {
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-bench-burst-'));
  const secret = randomBytes(20).toString('hex');
  // Both modes take the App's identity from the simulator; only `sim` sends it requests.
  const sim = await startSimulator({ org: 'flint-bench' });
  const memory = o.github === 'memory' ? new MemoryGitHub({ org: sim.org }) : undefined;
  const config = demoConfig({
    apiUrl: sim.apiUrl, appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: secret, organization: sim.org,
    // Never read: the driver is a fake.
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4',
    stateDir, address: '127.0.0.1:0', maxRunners: o.maxRunners, instanceId: 'bu',
  });
  const logger = createLogger({ level: o.logLevel, destination: process.stderr, secrets: new Set([secret]) });

  // GitHub's side of job dispatch: jobs no runner took yet (oldest first),
  // runners online with nothing to do.
  const waiting: number[] = [];
  const idleRunners: InstantGuest[] = [];
  let completed = 0;
  let dispatchErrors = 0;
  // Opened once Flint listens; the guests only post after that.
  const http: { pool?: Pool } = {};
  const post = async (jobId: number, action: JobAction, runner?: string): Promise<number> => {
    const { pool } = http;
    if (pool === undefined) throw new Error('no connection pool');
    const d = signedDelivery(secret, 'workflow_job', workflowJobPayload({ jobId, action, ...(runner === undefined ? {} : { runnerName: runner }) }));
    const res = await pool.request({ path: '/webhook', method: 'POST', headers: d.headers, body: d.body });
    await res.body.dump();
    return res.statusCode;
  };
  const runJob = async (guest: InstantGuest, jobId: number): Promise<void> => {
    const name = runnerName(guest.spec.id);
    try {
      if (await post(jobId, 'in_progress', name) >= 300) dispatchErrors++;
      await sleep(o.jobMs);
      if (await post(jobId, 'completed', name) >= 300) dispatchErrors++;
      completed++;
    } catch {
      dispatchErrors++;
    }
    guest.say('FLINT-MARKER runner-exited code=0');
    guest.exit();
  };
  const dispatch = (guest: InstantGuest): void => {
    const jobId = waiting.shift();
    if (jobId === undefined) idleRunners.push(guest);
    else void runJob(guest, jobId);
  };
  const jobQueued = (jobId: number): void => {
    const idle = idleRunners.shift();
    if (idle === undefined) waiting.push(jobId);
    else void runJob(idle, jobId);
  };
  const driver = new InstantDriver((guest) => {
    guest.say('FLINT-MARKER booted');
    guest.say('FLINT-MARKER runner-started');
    dispatch(guest);
  });
  const network = new FakeNetwork(config.instanceId);
  const hour = 3600_000;
  const flint = await startFlint({
    config, logger,
    // Nothing the burst needs runs on these: keep them out of the measurement.
    reconcileMs: hour, staleRunnersMs: hour, jobTruth: { intervalMs: hour }, redeliver: { intervalMs: hour },
    // The fakes hold no vCPU or memory: only maxRunners limits the VMs.
    maxVcpus: 1_000_000, maxMemoryMib: 1_000_000_000,
    edges: { drivers: { qemu: driver }, network, disks: new FakeDisks(), ...(memory === undefined ? {} : { github: memory }) },
  });
  http.pool = new Pool(flint.url, { connections: o.connections, pipelining: 1 });
  let peakVms = 0;
  const watch = setInterval(() => { peakVms = Math.max(peakVms, flint.supervisor.list().length); }, 5);
  const allDone = async (want: number, deadline: number): Promise<boolean> => {
    while (Date.now() < deadline) {
      if (completed >= want && flint.supervisor.list().length === 0) return true;
      await sleep(10);
    }
    return false;
  };
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearInterval(watch);
    await flint.close();
    await http.pool?.close();
    await sim.close();
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < o.warmup; i++) {
      jobQueued(WARMUP_FIRST_JOB_ID + i);
      if (await post(WARMUP_FIRST_JOB_ID + i, 'queued') >= 300) throw new Error('the warm-up delivery was refused');
    }
    if (!(await allDone(o.warmup, Date.now() + 30_000))) throw new Error('the warm-up jobs did not complete within 30 s');
    const startsBefore = driver.starts.length;
    completed = 0;
    peakVms = 0;

    // The burst: job i is sent at t0 + i·windowMs/jobs, by whichever of the
    // connections is free (more are opened while the server is slow).
    let accepted = 0;
    let next = 0;
    const t0 = Date.now();
    let lastAck = t0;
    const sender = async (): Promise<void> => {
      for (let i = next++; i < o.jobs; i = next++) {
        const due = t0 + (i * o.windowMs) / o.jobs;
        if (due > Date.now()) await sleep(due - Date.now());
        const jobId = BURST_FIRST_JOB_ID + i;
        // GitHub knows the job before it tells anyone.
        jobQueued(jobId);
        try {
          const status = await post(jobId, 'queued');
          if (status >= 200 && status < 300) accepted++;
        } catch {
          // Counted as not accepted.
        }
        lastAck = Date.now();
      }
    };
    await Promise.all(Array.from({ length: o.connections }, sender));
    const sendMs = lastAck - t0;
    const finished = await allDone(o.jobs, t0 + o.timeoutMs);
    const drainMs = Date.now() - t0;
    // A start beyond demand would come with the ticks after the last job:
    // give the scheduler one more pass before counting.
    flint.scheduler.poke();
    await sleep(200);
    const starts = driver.starts.slice(startsBefore);
    // Every start of this run (warm-up included: a warm-up runner may take a burst job).
    const startedAt = new Map(driver.starts.map((s) => [runnerName(s.id), s.at]));
    const latencies: number[] = [];
    let foundIdle = 0;
    for (let i = 0; i < o.jobs; i++) {
      const rec = await flint.records.getJobRecord(BURST_FIRST_JOB_ID + i);
      // An idle runner can take a job (and its in_progress arrive) before
      // the queued delivery does, which then changes nothing: the job was
      // first received with its in_progress.
      const received = rec?.at.queued ?? rec?.at.jobStarted;
      const started = rec?.runnerName === null || rec?.runnerName === undefined ? undefined : startedAt.get(rec.runnerName);
      if (received === null || received === undefined || started === undefined) continue;
      if (started < received) foundIdle++;
      latencies.push(Math.max(0, started - received));
    }
    latencies.sort((a, b) => a - b);
    const duplicateStarts = Math.max(0, starts.length - o.jobs) + (starts.length - new Set(starts.map((s) => runnerName(s.id))).size);
    if (!finished) {
      const states: Record<string, number> = {};
      for (const vm of flint.supervisor.list()) states[vm.state] = (states[vm.state] ?? 0) + 1;
      logger.error({ completed, jobs: o.jobs, live: states, waiting: waiting.length, idle: idleRunners.length }, 'burst: not every job completed in time');
    }
    if (dispatchErrors > 0) logger.error({ dispatchErrors }, 'burst: some in_progress/completed deliveries failed');
    await close();
    return {
      sent: o.jobs, accepted, duplicateStarts,
      p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.at(-1) ?? NaN, measured: latencies.length, foundIdle,
      // maxRSS is in KiB: the peak of this process's life, not just the burst's.
      rssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      sendMs, starts: starts.length, completed, drainMs, peakVms,
      leftoverRunners: memory === undefined ? sim.runners().length : (await memory.listRunners({ kind: 'organization' })).length, leftoverLeases: network.leases.size,
    };
  } finally {
    await close();
  }
}

function usage(message: string): never {
  throw new Error(message);
}

export default async function bench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'jobs': { type: 'string' }, 'window-ms': { type: 'string' }, 'job-ms': { type: 'string' },
      'max-runners': { type: 'string' }, 'connections': { type: 'string' }, 'timeout-ms': { type: 'string' },
      'github': { type: 'string' },
    },
  });
  const num = (v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${String(v)}`);
    return n;
  };
  const o: BurstOptions = {
    ...BURST_DEFAULTS,
    jobs: num(values.jobs, BURST_DEFAULTS.jobs), windowMs: num(values['window-ms'], BURST_DEFAULTS.windowMs),
    jobMs: num(values['job-ms'], BURST_DEFAULTS.jobMs), maxRunners: num(values['max-runners'], BURST_DEFAULTS.maxRunners),
    connections: num(values.connections, BURST_DEFAULTS.connections), timeoutMs: num(values['timeout-ms'], BURST_DEFAULTS.timeoutMs),
    github: values.github === 'sim' ? 'sim' : values.github === undefined || values.github === 'memory' ? 'memory' : usage(`--github is memory or sim, not ${values.github}`),
    logLevel: process.env.FLINT_BENCH_LOG_LEVEL === 'info' || process.env.FLINT_BENCH_LOG_LEVEL === 'debug' ? process.env.FLINT_BENCH_LOG_LEVEL : BURST_DEFAULTS.logLevel,
  };
  console.log(`burst: ${o.jobs} queued deliveries over ${o.windowMs} ms on ${o.connections} connections; maxRunners ${o.maxRunners}; each fake job runs ${o.jobMs} ms; GitHub: ${o.github === 'sim' ? 'the simulator, through the real client' : 'in memory'}`);
  const r = await runBurst(o);
  const f = (n: number): string => n.toFixed(1);
  console.log(`  sent ${r.sent} in ${r.sendMs} ms, accepted ${r.accepted}; ${r.starts} VM starts, ${r.completed} jobs completed, all done after ${r.drainMs} ms; at most ${r.peakVms} VMs at once`);
  console.log(`  received → VM start requested: p50 ${f(r.p50Ms)} ms  p99 ${f(r.p99Ms)} ms  max ${f(r.maxMs)} ms  (target p99 ≤ 50 ms; ${r.measured} jobs measured, ${r.foundIdle} found a runner already up)`);
  console.log(`  duplicate starts ${r.duplicateStarts}; peak RSS ${r.rssMb} MB (target ≤ 200 MB); left after close: ${r.leftoverRunners} runner registrations, ${r.leftoverLeases} leases`);
  console.log(JSON.stringify({
    bench: 'burst', sent: r.sent, accepted: r.accepted, duplicate_starts: r.duplicateStarts,
    p50_ms: Number(f(r.p50Ms)), p99_ms: Number(f(r.p99Ms)), rss_mb: r.rssMb,
  }));
}
