/**
 * GitHub's side of the burst benchmark (bench/burst.ts), in a child process
 * of its own so that it does not share Flint's event loop, heap or RSS:
 * sends the signed `queued` deliveries, hands each runner that comes online
 * the oldest job nobody took yet, and sends that job's `in_progress`; the
 * job runs `jobMs` from that delivery's answer, then its runner ends and
 * its `completed` is sent.
 *
 * Talks to the parent over the IPC channel only (no shared memory):
 *   parent → child: ToGitHub (start, warmup, burst, runners-online, close)
 *   child → parent: FromGitHub (warmed, sent, runners-ended, jobs-done, closed)
 * `runners-ended` tells the parent that the job on a runner ended: the
 * parent (which plays the guest, in Flint's process as InstantDriver's VMs
 * are) then prints `runner-exited` and ends that VM. `jobs-done` tells it
 * that the job's `completed` was delivered.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobAction } from '../src/core/jobs.ts';
import { signedBody, signedDelivery, workflowJobPayload } from './_payload.ts';
import type { SignedDelivery } from './_payload.ts';
import { rawPostPool, type RawPostPool } from './_raw-post.ts';

export interface GitHubSideOptions {
  readonly url: string;
  readonly secret: string;
  readonly connections: number;
  readonly jobMs: number;
}

export type ToGitHub =
  | { readonly type: 'start'; readonly options: GitHubSideOptions }
  | { readonly type: 'warmup'; readonly firstJobId: number; readonly jobs: number }
  | { readonly type: 'burst'; readonly firstJobId: number; readonly jobs: number; readonly windowMs: number }
  /** Runners that came online, all of one turn of the parent's event loop in one message. */
  | { readonly type: 'runners-online'; readonly runners: readonly string[] }
  | { readonly type: 'close' };

export type FromGitHub =
  | { readonly type: 'warmed'; readonly refused: number }
  | { readonly type: 'sent'; readonly accepted: number; readonly sendMs: number }
  /** Runners whose job ended (they exit now), all of one turn of this process in one message. */
  | { readonly type: 'runners-ended'; readonly runners: readonly string[] }
  /** Runners whose job's `completed` was delivered, all of one turn of this process in one message. */
  | { readonly type: 'jobs-done'; readonly done: ReadonlyArray<{ readonly runner: string; readonly ok: boolean }> }
  | { readonly type: 'closed'; readonly dispatchErrors: number };

function main(): void {
  const send = (m: FromGitHub): void => { process.send?.(m); };
  // One message per turn, not one per job: every message costs Flint's
  // process a read and a parse on its event loop, which is the bench's
  // cost, not Flint's.
  let done: Array<{ runner: string; ok: boolean }> = [];
  const jobDone = (runner: string, ok: boolean): void => {
    done.push({ runner, ok });
    if (done.length > 1) return;
    setImmediate(() => {
      const batch = done;
      done = [];
      send({ type: 'jobs-done', done: batch });
    });
  };
  let options: GitHubSideOptions | undefined;
  // The queued deliveries and the in_progress/completed ones go on pools of
  // their own (GitHub sends from many machines at once): a dispatch waiting
  // for a connection never holds back a queued delivery due now, nor the
  // other way round.
  let pools: { readonly queued: RawPostPool; readonly dispatch: RawPostPool } | undefined;
  // Jobs no runner took yet (oldest first); runners online with nothing to do.
  const waiting: number[] = [];
  const idleRunners: string[] = [];
  let dispatchErrors = 0;

  // The in_progress and completed bodies of the burst's jobs, serialized
  // before the clock starts with a stand-in for the runner's name (known
  // only when a runner takes the job): GitHub builds its payloads on its
  // own machines, so this process spends the burst on sending.
  const RUNNER = '@@runner@@';
  const bodies = new Map<string, string>();
  const prepare = (jobId: number): void => {
    for (const action of ['in_progress', 'completed'] as const) {
      bodies.set(`${jobId}/${action}`, JSON.stringify(workflowJobPayload({ jobId, action, runnerName: RUNNER })));
    }
  };
  const sign = (jobId: number, action: JobAction, runner?: string): SignedDelivery => {
    const secret = options?.secret ?? '';
    const body = runner === undefined ? undefined : bodies.get(`${jobId}/${action}`);
    if (body !== undefined && runner !== undefined) return signedBody(secret, 'workflow_job', body.replace(RUNNER, runner));
    return signedDelivery(secret, 'workflow_job', workflowJobPayload({ jobId, action, ...(runner === undefined ? {} : { runnerName: runner }) }));
  };
  const post = async (jobId: number, action: JobAction, runner?: string, signed?: SignedDelivery): Promise<number> => {
    if (pools === undefined) throw new Error('no connection pool: start first');
    const pool = action === 'queued' ? pools.queued : pools.dispatch;
    const d = signed ?? sign(jobId, action, runner);
    return await pool.post('/webhook', d.headers, d.body);
  };
  // The runner's end: its job is over and it exits, whatever became of the
  // webhooks (GitHub sends them on its own; a runner never waits for one).
  let ended: string[] = [];
  const runnerEnded = (runner: string): void => {
    ended.push(runner);
    if (ended.length > 1) return;
    setImmediate(() => {
      const runners = ended;
      ended = [];
      send({ type: 'runners-ended', runners });
    });
  };
  const runJob = async (runner: string, jobId: number): Promise<void> => {
    let ok = true;
    let over = false;
    try {
      // A real job outlasts its in_progress delivery (jobs take seconds,
      // the delivery milliseconds): with jobs of a few ms, the job runs
      // from the delivery's answer on, so Flint learns which runner took it
      // before that runner ends, as it would.
      if (await post(jobId, 'in_progress', runner) >= 300) ok = false;
      await sleep(options?.jobMs ?? 0);
      // The runner exits as its job ends; `completed` is delivered beside that.
      over = true;
      runnerEnded(runner);
      if (await post(jobId, 'completed', runner) >= 300) ok = false;
    } catch {
      ok = false;
    }
    if (!over) runnerEnded(runner);
    if (!ok) dispatchErrors++;
    jobDone(runner, ok);
  };
  const jobQueued = (jobId: number): void => {
    const idle = idleRunners.shift();
    if (idle === undefined) waiting.push(jobId);
    else void runJob(idle, jobId);
  };
  const runnerOnline = (runner: string): void => {
    const jobId = waiting.shift();
    if (jobId === undefined) idleRunners.push(runner);
    else void runJob(runner, jobId);
  };

  const burst = async (firstJobId: number, jobs: number, windowMs: number, connections: number): Promise<void> => {
    // Job i is sent at t0 + i·windowMs/jobs, by whichever of the connections
    // is free (more are opened while the server is slow).
    // Signed before the clock starts, as GitHub's are made on GitHub's
    // machines: building and signing a thousand 6 KB bodies is not work of
    // the host under test, and this process shares its cores.
    const signed = Array.from({ length: jobs }, (_, i) => sign(firstJobId + i, 'queued'));
    for (let i = 0; i < jobs; i++) prepare(firstJobId + i);
    let accepted = 0;
    let next = 0;
    const t0 = Date.now();
    let lastAck = t0;
    const sender = async (): Promise<void> => {
      for (let i = next++; i < jobs; i = next++) {
        const due = t0 + (i * windowMs) / jobs;
        if (due > Date.now()) await sleep(due - Date.now());
        const jobId = firstJobId + i;
        // GitHub knows the job before it tells anyone.
        jobQueued(jobId);
        try {
          const status = await post(jobId, 'queued', undefined, signed[i]);
          if (status >= 200 && status < 300) accepted++;
        } catch {
          // Counted as not accepted.
        }
        lastAck = Date.now();
      }
    };
    await Promise.all(Array.from({ length: connections }, sender));
    send({ type: 'sent', accepted, sendMs: lastAck - t0 });
  };

  process.on('message', (m: ToGitHub) => {
    switch (m.type) {
      case 'start':
        options = m.options;
        pools = {
          queued: rawPostPool(m.options.url, m.options.connections),
          dispatch: rawPostPool(m.options.url, m.options.connections),
        };
        return;
      case 'warmup':
        void (async () => {
          let refused = 0;
          for (let i = 0; i < m.jobs; i++) {
            jobQueued(m.firstJobId + i);
            if (await post(m.firstJobId + i, 'queued').catch(() => 599) >= 300) refused++;
          }
          send({ type: 'warmed', refused });
        })();
        return;
      case 'burst':
        void burst(m.firstJobId, m.jobs, m.windowMs, options?.connections ?? 1);
        return;
      case 'runners-online':
        for (const r of m.runners) runnerOnline(r);
        return;
      case 'close':
        void (async () => {
          await Promise.all([pools?.queued.close(), pools?.dispatch.close()]);
          send({ type: 'closed', dispatchErrors });
          process.disconnect();
        })();
        return;
    }
  });
}

main();
