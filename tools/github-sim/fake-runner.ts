/**
 * A fake Actions runner for Node tests: uses a JIT config once, takes one
 * job from the simulator, reports a conclusion and goes away — what an
 * ephemeral runner does, minus running steps.
 *
 * As a program: `tsx tools/github-sim/fake-runner.ts API_URL [WAIT_SECONDS] [CONCLUSION] < jitconfig`
 * (the JIT config comes on stdin, never on the command line).
 */
import type { JobConclusion } from './types.ts';

export interface FakeRunnerOptions {
  readonly apiUrl: string;
  readonly jitConfig: string;
  /** How long to wait for a job (default 60 s). */
  readonly waitSeconds?: number;
  /** Runs the "job"; its result (default `conclusion`, else success) is reported. */
  readonly onJob?: (job: AcquiredJob) => Promise<JobConclusion | void> | JobConclusion | void;
  readonly conclusion?: JobConclusion;
  readonly signal?: AbortSignal;
}

export interface AcquiredJob { readonly job_id: number; readonly run_id: number; readonly repository: string; readonly name: string; readonly labels: string[] }

export type FakeRunnerResult =
  | { readonly outcome: 'completed'; readonly runnerId: number; readonly job: AcquiredJob; readonly conclusion: JobConclusion }
  | { readonly outcome: 'no-job'; readonly runnerId: number };

async function post(apiUrl: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${apiUrl}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal === undefined ? {} : { signal }),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`fake runner: ${path} answered ${res.status}: ${text.trim()}`);
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

export async function runFakeRunner(o: FakeRunnerOptions): Promise<FakeRunnerResult> {
  const connected = await post(o.apiUrl, '/_sim/runner/connect', { jitconfig: o.jitConfig }, o.signal);
  const { session, runner_id: runnerId } = connected.json as { session: string; runner_id: number }; // control API contract
  const deadline = Date.now() + (o.waitSeconds ?? 60) * 1000;
  while (Date.now() < deadline) {
    const wait = Math.max(1, Math.min(50, Math.ceil((deadline - Date.now()) / 1000)));
    const got = await post(o.apiUrl, '/_sim/runner/acquire', { session, wait_seconds: wait }, o.signal);
    if (got.status !== 200) continue;
    const job = got.json as AcquiredJob; // control API contract
    const conclusion = (await o.onJob?.(job)) ?? o.conclusion ?? 'success';
    await post(o.apiUrl, '/_sim/runner/complete', { session, conclusion }, o.signal);
    return { outcome: 'completed', runnerId, job, conclusion };
  }
  await post(o.apiUrl, '/_sim/runner/disconnect', { session }, o.signal);
  return { outcome: 'no-job', runnerId };
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const [apiUrl, wait, conclusion] = process.argv.slice(2);
  if (apiUrl === undefined) {
    console.error('usage: fake-runner.ts API_URL [WAIT_SECONDS] [CONCLUSION] < jitconfig');
    process.exit(2);
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer); // stdin yields Buffers
  const r = await runFakeRunner({
    apiUrl, jitConfig: Buffer.concat(chunks).toString('utf8').trim(),
    ...(wait === undefined ? {} : { waitSeconds: Number(wait) }),
    ...(conclusion === undefined ? {} : { conclusion: conclusion as JobConclusion }), // validated by the simulator
  });
  console.log(r.outcome === 'completed' ? `fake-runner: completed job_id=${r.job.job_id} conclusion=${r.conclusion}` : 'fake-runner: no job');
  process.exit(r.outcome === 'completed' ? 0 : 3);
}
