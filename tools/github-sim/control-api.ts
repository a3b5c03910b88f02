/**
 * The simulator's HTTP control API under `/_sim/` — for out-of-process users
 * (the demo, a runner script inside a VM). Unauthenticated by design: the
 * simulator is test infrastructure bound to loopback or a test network.
 * Documented in docs/github-simulator.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJitConfig } from './jit-config.ts';
import { BadBody, parseJsonObject, parseLooseBody, readBody } from './http-util.ts';
import type { RenderCtx, RunnerRec } from './render.ts';
import type { WebhookEvents } from './events.ts';
import type { WebhookSender } from './webhook-sender.ts';
import type { Faults, FaultStats, IssuedSecrets, JobConclusion, RequestLogEntry } from './types.ts';
import type { World } from './world.ts';

export interface ControlDeps {
  readonly world: World;
  readonly webhooks: WebhookSender;
  readonly ctx: () => RenderCtx;
  readonly events: WebhookEvents;
  readonly now: () => number;
  readonly setFaults: (f: Faults) => void;
  readonly clearFaults: () => void;
  readonly faultStats: () => FaultStats;
  readonly requests: () => readonly RequestLogEntry[];
  readonly issuedSecrets: () => IssuedSecrets;
  readonly setInstalled: (v: boolean) => void;
  /** True once close() began: long polls end instead of keeping the process alive. */
  readonly closing: () => boolean;
}

const CONCLUSIONS: readonly JobConclusion[] = ['success', 'failure', 'cancelled', 'skipped', 'timed_out', 'neutral'];
/** Long-poll bound for `acquire`: long enough to save polling, short enough for proxies and tests. */
const MAX_WAIT_SECONDS = 50;

function json(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(`${JSON.stringify(body)}\n`);
}

const fail = (res: ServerResponse, status: number, message: string): void => json(res, status, { message });

function sessionRunner(d: ControlDeps, body: Record<string, unknown>): RunnerRec | undefined {
  const session = body.session;
  if (typeof session !== 'string') return undefined;
  const id = d.world.sessions.get(session);
  return id === undefined ? undefined : d.world.runners.get(id);
}

export async function handleControl(d: ControlDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  const route = `${method} ${url.pathname}`;
  let body: Record<string, unknown> = {};
  if (method !== 'GET' && method !== 'DELETE') {
    try {
      const text = await readBody(req);
      body = url.pathname.startsWith('/_sim/runner/') ? parseLooseBody(text) : parseJsonObject(text);
    } catch (err) {
      if (err instanceof BadBody) return fail(res, 400, err.message);
      throw err;
    }
  }
  const cancel = /^POST \/_sim\/jobs\/(\d+)\/cancel$/.exec(route);
  if (cancel !== null) {
    const j = d.world.cancelJob(Number(cancel[1]), d.now());
    if (j === undefined) return fail(res, 409, 'no such job, or it is already completed');
    await d.events.jobChanged(j);
    return json(res, 200, { jobId: j.id, conclusion: j.conclusion });
  }
  const lose = /^POST \/_sim\/runners\/(\d+)\/lost$/.exec(route);
  if (lose !== null) {
    const lost = d.world.loseRunner(Number(lose[1]), d.now());
    if (lost === undefined) return fail(res, 404, 'no such runner');
    if (lost.job !== undefined) await d.events.jobChanged(lost.job);
    return json(res, 204);
  }
  switch (route) {
    case 'GET /_sim/state': {
      const c = d.ctx();
      return json(res, 200, {
        apiUrl: c.api, org: c.org, appId: c.appId, installationId: c.installationId,
        repos: d.world.repos.map((r) => r.name), runnerGroups: d.world.groups.map((g) => ({ id: g.id, name: g.name })),
        jobs: d.world.snapshotJobs(), runners: d.world.snapshotRunners(),
        deliveries: d.webhooks.records().map((x) => ({ id: x.id, guid: x.guid, event: x.event, action: x.action, statusCode: x.statusCode, status: x.status, redelivery: x.redelivery })),
        requests: d.requests(), faultStats: d.faultStats(),
      });
    }
    case 'GET /_sim/secrets':
      // Test infrastructure: the tokens and JIT configs handed out, for tests that look for them where they must not be.
      return json(res, 200, d.issuedSecrets());
    case 'POST /_sim/jobs': {
      const { repo, labels, runId, name, group } = body;
      if (typeof repo !== 'string' || !Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) {
        return fail(res, 422, 'body must be {"repo": string, "labels": string[], "runId"?: number, "name"?: string, "group"?: string}');
      }
      let j;
      try {
        j = d.world.queueJob({
          repo, labels: labels as string[], // every element checked to be a string above
          ...(typeof runId === 'number' ? { runId } : {}), ...(typeof name === 'string' ? { name } : {}), ...(typeof group === 'string' ? { group } : {}),
        }, d.now());
      } catch (err) {
        return fail(res, 422, (err as Error).message); // queueJob throws Error only
      }
      await d.events.jobChanged(j);
      return json(res, 201, { jobId: j.id, runId: j.run.id });
    }
    case 'POST /_sim/faults':
      try {
        d.setFaults(body as Faults); // shape documented in types.ts; unknown keys are ignored
      } catch (err) {
        return fail(res, 422, `bad faults: ${(err as Error).message}`); // arm() throws Error, RegExp SyntaxError
      }
      return json(res, 204);
    case 'GET /_sim/faults':
      return json(res, 200, { stats: d.faultStats() });
    case 'DELETE /_sim/faults':
      d.clearFaults();
      return json(res, 204);
    case 'PUT /_sim/webhook': {
      const { url: hookUrl, secret } = body;
      if (typeof hookUrl !== 'string' || typeof secret !== 'string') return fail(res, 422, 'body must be {"url": string, "secret": string}');
      d.webhooks.setTarget({ url: hookUrl, secret });
      return json(res, 204);
    }
    case 'DELETE /_sim/webhook':
      d.webhooks.setTarget(undefined);
      return json(res, 204);
    case 'POST /_sim/ping':
      await d.events.ping();
      return json(res, 204);
    case 'POST /_sim/settled':
      // For out-of-process tests: every delivery started so far has been attempted (Simulator.settled()).
      await d.webhooks.settled();
      return json(res, 204);
    case 'PUT /_sim/installation':
      d.setInstalled(body.installed !== false);
      return json(res, 204);
    case 'POST /_sim/runner/connect': {
      const jit = body.jitconfig;
      if (typeof jit !== 'string') return fail(res, 422, 'body must carry "jitconfig" (the encoded JIT config)');
      let agentId: number;
      let clientId: string;
      try {
        const cfg = decodeJitConfig(jit);
        agentId = cfg.runner.agentId;
        clientId = cfg.credentials.data.clientId;
      } catch {
        return fail(res, 400, 'not a JIT runner configuration');
      }
      const r = d.world.runners.get(agentId);
      if (r === undefined || r.session !== clientId) return fail(res, 404, 'runner not registered (deleted, or never created)');
      // A JIT config works once: the runner service refuses a second session for it.
      if (r.connected) return fail(res, 409, 'this JIT configuration has already been used');
      r.connected = true;
      r.status = 'online';
      return json(res, 200, { runner_id: r.id, runner_name: r.name, session: r.session, labels: [...r.defaultLabels, ...r.customLabels] });
    }
    case 'POST /_sim/runner/acquire': {
      const r = sessionRunner(d, body);
      if (r === undefined || !r.connected) return fail(res, 404, 'unknown session: connect first (or the runner was deleted)');
      if (r.busy) return fail(res, 409, 'runner is busy with a job');
      const waitRaw = Number(body.wait_seconds ?? 0);
      const deadline = d.now() + Math.min(MAX_WAIT_SECONDS, Number.isFinite(waitRaw) && waitRaw > 0 ? waitRaw : 0) * 1000;
      // A runner killed mid-poll (its VM stopped) leaves this loop waiting on a
      // connection nobody reads; it must hand that runner no job, or the job
      // runs nowhere and stays in progress for good. Checked before each hand-out.
      let gone = false;
      res.once('close', () => { gone = true; });
      for (;;) {
        if (gone || res.destroyed || req.socket.destroyed) return;
        if (!d.world.runners.has(r.id)) return fail(res, 404, 'the runner was deleted');
        const j = d.world.nextJobFor(r);
        if (j !== undefined) {
          d.world.startJob(j, r, d.now());
          void d.events.jobChanged(j);
          return json(res, 200, { job_id: j.id, run_id: j.run.id, repository: `${d.ctx().org}/${j.run.repo.name}`, name: j.name, labels: j.labels });
        }
        if (d.now() >= deadline || req.socket.destroyed || d.closing()) return json(res, 204);
        await sleep(100);
      }
    }
    case 'POST /_sim/runner/complete': {
      const r = sessionRunner(d, body);
      if (r === undefined) return fail(res, 404, 'unknown session (or the runner was deleted)');
      const j = r.jobId === null ? undefined : d.world.jobs.get(r.jobId);
      if (j === undefined || j.status !== 'in_progress') return fail(res, 409, 'the runner has no job in progress');
      const conclusion = (body.conclusion ?? 'success') as JobConclusion; // checked against the list right below
      if (!CONCLUSIONS.includes(conclusion)) return fail(res, 422, `conclusion must be one of ${CONCLUSIONS.join(', ')}`);
      d.world.completeJob(j, conclusion, d.now());
      // Ephemeral: the runner is gone once its one job is done.
      d.world.removeRunner(r);
      void d.events.jobChanged(j);
      return json(res, 200, { job_id: j.id, conclusion });
    }
    case 'POST /_sim/runner/disconnect': {
      const r = sessionRunner(d, body);
      if (r === undefined) return fail(res, 404, 'unknown session (or the runner was deleted)');
      const j = r.jobId === null ? undefined : d.world.jobs.get(r.jobId);
      d.world.removeRunner(r);
      if (j !== undefined && j.status === 'in_progress') {
        // The runner vanished mid-job: GitHub fails the job.
        d.world.completeJob(j, 'failure', d.now());
        void d.events.jobChanged(j);
      }
      return json(res, 204);
    }
    default:
      return fail(res, 404, `no control endpoint ${route}`);
  }
}
