/**
 * Load generator of the webhook-intake benchmark. Runs as a child process
 * (forked by bench/webhook-intake.ts) so that generating, signing and
 * timing requests does not run on the event loop of the server it measures.
 *
 * Protocol (IPC): parent sends a LoadPhase, child answers a LoadResult;
 * `{ type: 'exit' }` ends the child.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import type { JobAction } from '../src/core/jobs.ts';
import { workflowJobPayload } from './_payload.ts';

export interface LoadPhase {
  readonly type: 'run';
  readonly origin: string;
  readonly secret: string;
  readonly connections: number;
  readonly durationMs: number;
  /** First job id of this phase; ids never repeat across phases. */
  readonly firstJobId: number;
  /** Every n-th job asks for labels no runner serves (recorded as ignored). */
  readonly unservedEvery: number;
}

export interface LoadResult {
  readonly type: 'result';
  readonly ok: number;
  readonly failed: number;
  readonly statuses: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanBodyBytes: number;
  readonly nextJobId: number;
}

// A placeholder id long enough to be unique inside the payload text; real
// ids are substituted into the serialised template (cheaper than building
// and serialising a 7 KB object per request, which would load the client).
const PLACEHOLDER = 987654321098;
const ACTIONS: readonly JobAction[] = ['queued', 'in_progress', 'completed'];
const templates = new Map<string, string>();
function template(action: JobAction, unserved: boolean): string {
  const key = `${action}/${unserved}`;
  let t = templates.get(key);
  if (t === undefined) {
    t = JSON.stringify(workflowJobPayload({ jobId: PLACEHOLDER, action, ...(unserved ? { labels: ['ubuntu-latest'] } : {}) }));
    templates.set(key, t);
  }
  return t;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

async function runPhase(phase: LoadPhase): Promise<LoadResult> {
  const pool = new Pool(phase.origin, { connections: phase.connections, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let bytes = 0;
  // Each job gets queued, in_progress and completed, in that order, from
  // consecutive sequence numbers (spread over connections, so sometimes
  // out of order — as GitHub's are).
  let seq = 0;
  const start = performance.now();
  const deadline = start + phase.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const k = seq++;
      const jobId = phase.firstJobId + Math.floor(k / 3);
      const unserved = jobId % phase.unservedEvery === 0;
      const body = template(ACTIONS[k % 3] ?? 'queued', unserved).replaceAll(String(PLACEHOLDER), String(jobId));
      bytes += body.length;
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: '/webhook',
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'GitHub-Hookshot/bench',
            'x-github-event': 'workflow_job',
            'x-github-delivery': randomUUID(),
            'x-hub-signature-256': `sha256=${createHmac('sha256', phase.secret).update(body).digest('hex')}`,
          },
        });
        await res.body.dump();
        latencies.push(performance.now() - t0);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) ok++;
        else failed++;
      } catch {
        failed++;
        statuses.error = (statuses.error ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: phase.connections }, worker));
  const elapsedMs = performance.now() - start;
  await pool.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    type: 'result', ok, failed, statuses, elapsedMs,
    p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) ?? 0,
    meanBodyBytes: seq === 0 ? 0 : bytes / seq,
    nextJobId: phase.firstJobId + Math.ceil(seq / 3) + 1,
  };
}

process.on('message', (msg: LoadPhase | { type: 'exit' }) => {
  if (msg.type === 'exit') {
    process.disconnect?.();
    return;
  }
  runPhase(msg).then((r) => process.send?.(r), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
});
