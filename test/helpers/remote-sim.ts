/**
 * The GitHub simulator's `Simulator` interface for a simulator running in
 * another process (another network namespace), over its HTTP control API
 * (`/_sim/…`, docs/github-simulator.md). End-to-end tests keep the
 * interface they had with an in-process simulator, synchronous reads
 * included: `jobs()`, `runners()`, `deliveries()` and `requests()` read
 * `GET /_sim/state` at the moment they are called, and `faults.set()` /
 * `setWebhook()` have taken effect when they return (a worker thread makes
 * the request while the caller waits on a shared flag) — never a cache.
 *
 *   const sim = remoteSimulator({ apiUrl: 'http://198.18.0.2:8080', appId, installationId, org, privateKeyPem });
 *   await sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
 *   sim.jobs();                       // the simulator's state now
 *   await sim.close();                // ends the worker; the simulator process is its owner's
 */
import { request } from 'node:http';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { Faults, FaultStats, IssuedSecrets, QueueJobOptions, RequestLogEntry, SimJob, SimRunner, SimScaleSet, Simulator } from '../../tools/github-sim/index.ts';

/** A delivery as `GET /_sim/state` reports it (no payload, headers or timings). */
export interface RemoteDelivery {
  readonly id: number;
  readonly guid: string;
  readonly event: string;
  readonly action: string | null;
  readonly statusCode: number;
  readonly status: string;
  readonly redelivery: boolean;
}

export interface RemoteSimulator extends Omit<Simulator, 'deliveries'> {
  deliveries(): readonly RemoteDelivery[];
}

interface State {
  readonly jobs: readonly SimJob[];
  readonly runners: readonly SimRunner[];
  readonly deliveries: readonly RemoteDelivery[];
  readonly requests: readonly RequestLogEntry[];
}

/** How long a synchronous read waits for the simulator before it throws. */
const SYNC_TIMEOUT_MS = 10_000;

// The worker: makes the request it is sent, posts the answer back, then raises
// the flag the waiting thread sleeps on. Plain JavaScript (an eval worker).
const WORKER = `
const { workerData } = require('node:worker_threads');
const { port, flag } = workerData;
port.on('message', async ({ method, url, body }) => {
  let answer;
  try {
    const res = await fetch(url, body === undefined ? { method } : { method, body, headers: { 'content-type': 'application/json' } });
    answer = { status: res.status, text: await res.text() };
  } catch (err) {
    answer = { error: String(err) };
  }
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

/** One control request, on a connection of its own (no keep-alive socket outlives it). */
function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${base}${path}`, {
      method, agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function expect(base: string, method: string, path: string, status: number, body?: unknown): Promise<string> {
  const res = await call(base, method, path, body);
  if (res.status !== status) throw new Error(`simulator ${method} ${path}: ${res.status} ${res.text.trim()}`);
  return res.text;
}

export function remoteSimulator(info: { apiUrl: string; appId: number; installationId: number; org: string; privateKeyPem: string }): RemoteSimulator {
  const base = info.apiUrl.replace(/\/+$/, '');
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, flag }, transferList: [port2] });
  // The worker only ever works while a read waits on it: it must not keep the test process alive.
  worker.unref();
  let closed = false;

  /** One control request made synchronously: the caller waits for the simulator's answer. */
  const syncCall = (method: string, path: string, status: number, body?: unknown): string => {
    if (closed) throw new Error('the remote simulator client is closed');
    Atomics.store(flag, 0, 0);
    port1.postMessage({ method, url: `${base}${path}`, body: body === undefined ? undefined : JSON.stringify(body) });
    if (Atomics.wait(flag, 0, 0, SYNC_TIMEOUT_MS) === 'timed-out') throw new Error(`the simulator at ${base} did not answer ${method} ${path} within ${SYNC_TIMEOUT_MS} ms`);
    const msg = receiveMessageOnPort(port1)?.message as { status?: number; text?: string; error?: string } | undefined; // the worker's answer shape above
    if (msg === undefined) throw new Error('the control worker answered nothing');
    if (msg.error !== undefined) throw new Error(`simulator ${method} ${path}: ${msg.error}`);
    if (msg.status !== status) throw new Error(`simulator ${method} ${path}: ${msg.status} ${msg.text?.trim()}`);
    return msg.text ?? '';
  };
  const state = (): State => JSON.parse(syncCall('GET', '/_sim/state', 200)) as State; // the simulator's documented state shape

  return {
    apiUrl: base, appId: info.appId, privateKeyPem: info.privateKeyPem, org: info.org, installationId: info.installationId,
    setWebhook(w) {
      if (w === undefined) syncCall('DELETE', '/_sim/webhook', 204);
      else syncCall('PUT', '/_sim/webhook', 204, w);
    },
    async queueJob(o: QueueJobOptions) {
      return JSON.parse(await expect(base, 'POST', '/_sim/jobs', 201, o)) as { jobId: number; runId: number }; // documented answer
    },
    async cancelJob(jobId) { await expect(base, 'POST', `/_sim/jobs/${jobId}/cancel`, 200); },
    async loseRunner(runnerId) { await expect(base, 'POST', `/_sim/runners/${runnerId}/lost`, 204); },
    async ping() { await expect(base, 'POST', '/_sim/ping', 204); },
    jobs: () => state().jobs,
    runners: () => state().runners,
    deliveries: () => state().deliveries,
    requests: () => state().requests,
    issuedSecrets: () => JSON.parse(syncCall('GET', '/_sim/secrets', 200)) as IssuedSecrets, // documented answer
    faults: {
      set(f: Faults) { syncCall('POST', '/_sim/faults', 204, f); },
      clear() { syncCall('DELETE', '/_sim/faults', 204); },
      stats: () => (JSON.parse(syncCall('GET', '/_sim/faults', 200)) as { stats: FaultStats }).stats, // documented answer
    },
    actions: {
      scaleSets: () => JSON.parse(syncCall('GET', '/_sim/actions/scalesets', 200)) as SimScaleSet[], // documented answer
      staleSession: (id, ownerName) => (JSON.parse(syncCall('POST', `/_sim/actions/scalesets/${id}/stale-session`, 200, { ownerName })) as { sessionId: string }).sessionId, // documented answer
      removeScaleSet: (id) => { syncCall('DELETE', `/_sim/actions/scalesets/${id}`, 204); },
      forgetSession: (id) => { syncCall('POST', `/_sim/actions/scalesets/${id}/forget-session`, 204); },
      expireQueueToken: (id) => { syncCall('POST', `/_sim/actions/scalesets/${id}/expire-queue-token`, 204); },
      expireAdminTokens: () => { syncCall('POST', '/_sim/actions/expire-admin-tokens', 204); },
      reassignNext: (count) => { syncCall('POST', '/_sim/actions/reassign', 204, { count }); },
    },
    async settled() {
      await expect(base, 'POST', '/_sim/settled', 204);
    },
    async close() {
      if (closed) return;
      closed = true;
      port1.close();
      await worker.terminate();
    },
  };
}
