/**
 * GitHub's side of the burst benchmark (bench/burst.ts), in a child process
 * of its own so that it does not share Flint's event loop, heap or RSS:
 * sends the signed `queued` deliveries, hands each runner that comes online
 * the oldest job nobody took yet, and sends that job's `in_progress` and,
 * `jobMs` later, its `completed`.
 *
 * Talks to the parent over the IPC channel only (no shared memory):
 *   parent → child: ToGitHub (start, warmup, burst, runners-online, close)
 *   child → parent: FromGitHub (warmed, sent, jobs-done, closed)
 * `jobs-done` tells the parent that the job on a runner completed; the parent
 * (which plays the guest, in Flint's process as InstantDriver's VMs are)
 * then prints `runner-exited` and ends that VM.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { JobAction } from '../src/core/jobs.ts';
import { signedDelivery, workflowJobPayload } from './_payload.ts';

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
  /** Runners whose job completed, all of one turn of this process in one message. */
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
  let pool: Pool | undefined;
  // Jobs no runner took yet (oldest first); runners online with nothing to do.
  const waiting: number[] = [];
  const idleRunners: string[] = [];
  let dispatchErrors = 0;

  const post = async (jobId: number, action: JobAction, runner?: string): Promise<number> => {
    if (pool === undefined) throw new Error('no connection pool: start first');
    const d = signedDelivery(options?.secret ?? '', 'workflow_job', workflowJobPayload({ jobId, action, ...(runner === undefined ? {} : { runnerName: runner }) }));
    const res = await pool.request({ path: '/webhook', method: 'POST', headers: d.headers, body: d.body });
    await res.body.dump();
    return res.statusCode;
  };
  const runJob = async (runner: string, jobId: number): Promise<void> => {
    let ok = true;
    try {
      if (await post(jobId, 'in_progress', runner) >= 300) ok = false;
      await sleep(options?.jobMs ?? 0);
      if (await post(jobId, 'completed', runner) >= 300) ok = false;
    } catch {
      ok = false;
    }
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
          const status = await post(jobId, 'queued');
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
        pool = new Pool(m.options.url, { connections: m.options.connections, pipelining: 1 });
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
          await pool?.close();
          send({ type: 'closed', dispatchErrors });
          process.disconnect();
        })();
        return;
    }
  });
}

main();
