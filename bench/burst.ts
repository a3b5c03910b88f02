/**
 * `npm run bench -- burst [--jobs N] [--window-ms MS] [--job-ms MS] [--max-runners N] [--connections N] [--warmup N]`
 *
 * A burst of queued jobs against a whole Flint daemon: `startFlint` with its
 * real HTTP intake, SQLite store (in a temp dir), scheduler and supervisor.
 * Only the outside edges are fakes or stand-ins:
 *   - the hypervisor is InstantDriver (test/fakes): VMs live in this process,
 *     print their markers at once and run no VMM;
 *   - host network and disks are FakeNetwork and InstantDisks (test/fakes),
 *     both in memory: the VMs never read a disk, and what a real VM's disks
 *     and tap cost is measured apart (bench/scratch-disk.ts,
 *     bench/net-attach.ts);
 *   - GitHub is MemoryGitHub (test/fakes, the GitHubPort contract suite
 *     runs against it and the real client), or with `--github sim` the
 *     simulator (tools/github-sim) over HTTP through Flint's real client.
 *     The default is memory because the real client spaces GitHub writes
 *     one second apart (plugin-throttling's "write" limiter, GitHub's advice
 *     against secondary rate limits): through it every JIT registration and
 *     every runner removal queue behind each other, about one a second, so
 *     1,000 jobs take over half an hour whatever Flint does;
 *   - GitHub's job dispatch runs in a child process (bench/_burst-github.ts),
 *     so that it shares neither Flint's event loop nor its heap: it sends
 *     the signed `queued` deliveries (bench/_payload.ts shape,
 *     X-Hub-Signature-256 with the configured secret), hands each runner
 *     that comes online (told over IPC) the oldest job nobody took yet, and
 *     sends that job's `in_progress` (naming the runner). The job runs
 *     `--job-ms` from that delivery's answer (a real job outlasts its
 *     in_progress delivery, so Flint knows who took it before the runner
 *     ends); then the runner ends — it tells this process, where the guest
 *     prints `runner-exited` and its VM ends, which frees a place under
 *     maxRunners — and beside that the job's `completed` is sent. A runner
 *     never waits for a webhook to be answered: GitHub sends them on its
 *     own. The queued deliveries are signed before the clock starts (the
 *     others' bodies serialized, their runner filled in when known) and go
 *     on connections of their own, apart from in_progress/completed, so
 *     they leave on schedule; all go through a minimal HTTP client of the
 *     bench's own (bench/_raw-post.ts), cheaper in CPU than undici.
 *
 * After a warm-up of `--warmup` jobs (1,000; not counted), `--jobs` (1,000)
 * distinct queued deliveries are
 * sent, spread evenly over `--window-ms` (2,000 ms, i.e. 500/s), on
 * `--connections` keep-alive connections. The bench waits until every job
 * completed and every VM ended. The warm-up makes the Flint measured one
 * that has run jobs before, as a service that has been up a while: V8
 * optimizes a function only after it ran many times, and with a warm-up of
 * a few jobs the burst also measured V8 compiling Flint's hot paths (p99
 * several times higher). `--warmup 5` measures a Flint just started.
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
 * started twice. rss_mb: peak resident set of this process (Flint with its
 * fake edges and the idle simulator; the sender is in its own process),
 * taken before teardown. cpu_ms_per_job: this process's CPU time (user +
 * system) from the first delivery sent until all done, per job;
 * loop_cpu_ms_per_job: the same for its event-loop thread alone (Linux).
 *
 * Prints its figures, then as the LAST line one JSON object:
 *   {"bench":"burst","sent":…,"accepted":…,"duplicate_starts":…,"p50_ms":…,"p99_ms":…,"rss_mb":…,"cpu_ms_per_job":…,"loop_cpu_ms_per_job":…}
 * Targets: all accepted, zero duplicate starts, p99 ≤ 50 ms, RSS ≤ 200 MB.
 * Figures (2-core host, docs/operations.md "Sixth round: a warm Flint,
 * checkpoints off the loop, fewer waits per VM"): all accepted, no
 * duplicate, RSS 180 – 187 MB, p99 23 – 42 ms and p50 6 – 10 ms over nine
 * runs on a quiet host; 2.5 – 2.7 ms of CPU per job.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { demoConfig } from '../src/config/demo.ts';
import { runnerName } from '../src/core/ids.ts';
import { createLogger } from '../src/adapters/log/logger.ts';
import type { LogLevel } from '../src/config/types.ts';
import { startFlint } from '../src/entrypoints/flint.ts';
import { startSimulator } from '../tools/github-sim/index.ts';
import { InstantDisks } from '../test/fakes/instant-disks.ts';
import { FakeNetwork } from '../test/fakes/fake-network.ts';
import { InstantDriver } from '../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../test/fakes/memory-github.ts';
import type { InstantGuest } from '../test/fakes/instant-driver.ts';
import type { FromGitHub, ToGitHub } from './_burst-github.ts';

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
  jobs: 1000, windowMs: 2000, jobMs: 5, maxRunners: 50, connections: 32, warmup: 1000, timeoutMs: 120_000, logLevel: 'warn', github: 'memory',
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
  /**
   * CPU time of Flint's process (user + system, all its threads) from the
   * first delivery sent until all done, per job: what one job's whole
   * lifecycle costs Flint, whatever else the machine is doing.
   */
  readonly cpuMsPerJob: number;
  /**
   * The same for the event-loop thread alone (Linux: /proc/thread-self;
   * NaN elsewhere): the time that bounds how many jobs a second Flint can
   * take, without the thread pool's file and fsync work beside it.
   */
  readonly loopCpuMsPerJob: number;
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
  // The VMs' QEMU runs as the runner's uid, which must pass through the state dir.
  chmodSync(stateDir, 0o711);
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

  // GitHub's job dispatch and the sender run in a child process (bench/_burst-github.ts).
  const github = startGitHubSide();
  let completed = 0;
  const guests = new Map<string, InstantGuest>();
  github.on('runners-ended', (m) => {
    for (const runner of m.runners) {
      const guest = guests.get(runner);
      guests.delete(runner);
      guest?.say('FLINT-MARKER runner-exited code=0');
      guest?.exit();
    }
  });
  github.on('jobs-done', (m) => { completed += m.done.length; });
  // The runners that came online in one turn go to GitHub's side in one
  // message (each message costs this process a write on its event loop:
  // the bench's cost, not Flint's).
  let online: string[] = [];
  const runnerOnline = (runner: string): void => {
    online.push(runner);
    if (online.length > 1) return;
    setImmediate(() => {
      const runners = online;
      online = [];
      github.send({ type: 'runners-online', runners });
    });
  };
  const driver = new InstantDriver((guest) => {
    guest.say('FLINT-MARKER booted');
    guest.say('FLINT-MARKER runner-started');
    const name = runnerName(guest.spec.id);
    guests.set(name, guest);
    runnerOnline(name);
  });
  const network = new FakeNetwork(config.instanceId);
  const disks = new InstantDisks();
  const hour = 3600_000;
  let flint: Awaited<ReturnType<typeof startFlint>>;
  try {
    flint = await startFlint({
      config, logger,
      // Nothing the burst needs runs on these: keep them out of the measurement.
      reconcileMs: hour, staleRunnersMs: hour, jobTruth: { intervalMs: hour }, redeliver: { intervalMs: hour },
      // The fakes hold no vCPU or memory: only maxRunners limits the VMs.
      maxVcpus: 1_000_000, maxMemoryMib: 1_000_000_000,
      edges: { drivers: { qemu: driver }, network, disks, ...(memory === undefined ? {} : { github: memory }) },
    });
  } catch (err) {
    await github.close();
    await sim.close();
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  github.send({ type: 'start', options: { url: flint.url, secret, connections: o.connections, jobMs: o.jobMs } });
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
  let dispatchErrors = 0;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearInterval(watch);
    dispatchErrors = await github.close();
    await flint.close();
    await sim.close();
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    github.send({ type: 'warmup', firstJobId: WARMUP_FIRST_JOB_ID, jobs: o.warmup });
    if ((await github.next('warmed')).refused > 0) throw new Error('a warm-up delivery was refused');
    const warmupMs = 30_000 + o.warmup * 20;
    if (!(await allDone(o.warmup, Date.now() + warmupMs))) throw new Error(`the warm-up jobs did not complete within ${warmupMs / 1000} s`);
    const startsBefore = driver.starts.length;
    completed = 0;
    peakVms = 0;

    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const loop0 = threadCpuMs();
    github.send({ type: 'burst', firstJobId: BURST_FIRST_JOB_ID, jobs: o.jobs, windowMs: o.windowMs });
    const { accepted, sendMs } = await github.next('sent');
    const finished = await allDone(o.jobs, t0 + o.timeoutMs);
    const drainMs = Date.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerJob = (cpu.user + cpu.system) / 1000 / o.jobs;
    const loopCpuMsPerJob = (threadCpuMs() - loop0) / o.jobs;
    // A start beyond demand would come with the ticks after the last job:
    // give the scheduler one more pass before counting.
    flint.scheduler.poke();
    await sleep(200);
    // Flint's own peak, before the teardown (and before anything of the child's could count: it has its own process).
    const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
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
      logger.error({ completed, jobs: o.jobs, live: states }, 'burst: not every job completed in time');
    }
    await close();
    if (dispatchErrors > 0) logger.error({ dispatchErrors }, 'burst: some in_progress/completed deliveries failed');
    return {
      sent: o.jobs, accepted, duplicateStarts,
      p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.at(-1) ?? NaN, measured: latencies.length, foundIdle,
      rssMb,
      sendMs, starts: starts.length, completed, drainMs, cpuMsPerJob, loopCpuMsPerJob, peakVms,
      leftoverRunners: memory === undefined ? sim.runners().length : (await memory.listRunners({ kind: 'organization' })).length, leftoverLeases: network.leases.size,
    };
  } finally {
    await close();
  }
}

interface GitHubSide {
  send(m: ToGitHub): void;
  /** Calls `fn` on every message of this type. */
  on<K extends FromGitHub['type']>(type: K, fn: (m: Extract<FromGitHub, { type: K }>) => void): void;
  /** The next message of this type; rejects if the child ends first. */
  next<K extends FromGitHub['type']>(type: K): Promise<Extract<FromGitHub, { type: K }>>;
  /** Closes its connections, waits for it to end; its count of failed in_progress/completed deliveries. */
  close(): Promise<number>;
}

/** Forks bench/_burst-github.ts (GitHub's side of the burst) and speaks to it over IPC. */
function startGitHubSide(): GitHubSide {
  const child = fork(fileURLToPath(new URL('./_burst-github.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const listeners = new Map<string, Set<(m: FromGitHub) => void>>();
  const exited = new Promise<void>((resolve) => { child.once('exit', () => resolve()); });
  child.on('message', (m: FromGitHub) => {
    for (const fn of listeners.get(m.type) ?? []) fn(m);
  });
  const on = (type: string, fn: (m: FromGitHub) => void): () => void => {
    let set = listeners.get(type);
    if (set === undefined) listeners.set(type, set = new Set());
    set.add(fn);
    return () => set.delete(fn);
  };
  let closing: Promise<number> | undefined;
  const side: GitHubSide = {
    send: (m) => { if (child.connected) child.send(m); },
    // The listener gets messages of its own type only (`on` files them by type).
    on: (type, fn) => { on(type, fn as (m: FromGitHub) => void); },
    next: (type) => new Promise((resolve, reject) => {
      const off = on(type, (m) => { off(); resolve(m as Extract<FromGitHub, { type: typeof type }>); });
      void exited.then(() => reject(new Error(`the GitHub side of the bench ended before sending ${type}`)));
    }),
    close: () => closing ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 0;
      const closed = side.next('closed');
      side.send({ type: 'close' });
      const errors = await closed.then((m) => m.dispatchErrors, () => 0);
      await exited;
      return errors;
    })(),
  };
  return side;
}

/**
 * CPU time (user + system, ms) of the calling thread: utime and stime of
 * /proc/thread-self/stat, in clock ticks of 10 ms (USER_HZ is 100 on every
 * Linux ABI Node runs on). NaN where there is no such file.
 */
function threadCpuMs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    // Fields after the command name (which may hold spaces, hence the last ')'): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
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
      'github': { type: 'string' }, 'warmup': { type: 'string' },
    },
  });
  const num = (v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${String(v)}`);
    return n;
  };
  const github = values.github === 'sim' ? 'sim' : values.github === undefined || values.github === 'memory' ? 'memory' : usage(`--github is memory or sim, not ${values.github}`);
  const o: BurstOptions = {
    ...BURST_DEFAULTS,
    jobs: num(values.jobs, BURST_DEFAULTS.jobs), windowMs: num(values['window-ms'], BURST_DEFAULTS.windowMs),
    jobMs: num(values['job-ms'], BURST_DEFAULTS.jobMs), maxRunners: num(values['max-runners'], BURST_DEFAULTS.maxRunners),
    connections: num(values.connections, BURST_DEFAULTS.connections), timeoutMs: num(values['timeout-ms'], BURST_DEFAULTS.timeoutMs),
    // Through the simulator each registration waits about a second (see `github` above): a few jobs, not a thousand.
    warmup: num(values.warmup, github === 'sim' ? 5 : BURST_DEFAULTS.warmup), github,
    logLevel: process.env.FLINT_BENCH_LOG_LEVEL === 'info' || process.env.FLINT_BENCH_LOG_LEVEL === 'debug' ? process.env.FLINT_BENCH_LOG_LEVEL : BURST_DEFAULTS.logLevel,
  };
  console.log(`burst: ${o.jobs} queued deliveries over ${o.windowMs} ms on ${o.connections} connections, after a warm-up of ${o.warmup} jobs; maxRunners ${o.maxRunners}; each fake job runs ${o.jobMs} ms; GitHub: ${o.github === 'sim' ? 'the simulator, through the real client' : 'in memory'}`);
  const r = await runBurst(o);
  const f = (n: number): string => n.toFixed(1);
  console.log(`  sent ${r.sent} in ${r.sendMs} ms, accepted ${r.accepted}; ${r.starts} VM starts, ${r.completed} jobs completed, all done after ${r.drainMs} ms; at most ${r.peakVms} VMs at once; Flint's CPU ${f(r.cpuMsPerJob)} ms per job, ${f(r.loopCpuMsPerJob)} ms of it on the event loop`);
  console.log(`  received → VM start requested: p50 ${f(r.p50Ms)} ms  p99 ${f(r.p99Ms)} ms  max ${f(r.maxMs)} ms  (target p99 ≤ 50 ms; ${r.measured} jobs measured, ${r.foundIdle} found a runner already up)`);
  console.log(`  duplicate starts ${r.duplicateStarts}; peak RSS ${r.rssMb} MB (target ≤ 200 MB); left after close: ${r.leftoverRunners} runner registrations, ${r.leftoverLeases} leases`);
  console.log(JSON.stringify({
    bench: 'burst', sent: r.sent, accepted: r.accepted, duplicate_starts: r.duplicateStarts,
    p50_ms: Number(f(r.p50Ms)), p99_ms: Number(f(r.p99Ms)), rss_mb: r.rssMb, cpu_ms_per_job: Number(r.cpuMsPerJob.toFixed(2)),
    loop_cpu_ms_per_job: Number(r.loopCpuMsPerJob.toFixed(2)),
  }));
}
