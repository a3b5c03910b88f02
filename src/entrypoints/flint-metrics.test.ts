/**
 * /metrics and /readyz of the running daemon: startFlint with the fast
 * fakes of the host's edges (test/fakes) and GitHub in memory, or, for the
 * GitHub request metrics, Flint's own client against the GitHub simulator
 * (tools/github-sim), which answers with rate-limit headers. The
 * exposition is read with a strict parser of the text format
 * (test/helpers/prom-text.ts), so every scrape here also checks that it parses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig } from '../config/demo.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { FakeDisks } from '../../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../../test/fakes/fake-network.ts';
import { InstantDriver } from '../../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { parsePrometheusText, sampleValue } from '../../test/helpers/prom-text.ts';
import { signedDelivery, workflowJobPayload } from '../../bench/_payload.ts';
import { startSimulator } from '../../tools/github-sim/index.ts';
import { databaseHealth, startFlint, startWebhooksOnly } from './flint.ts';
import type { FlintOptions, RunningFlint } from './flint.ts';
import type { GitHubPort } from '../daemon/ports/github.ts';
import { readiness } from './http/readiness.ts';

const SECRET = 'flint-metrics-test-secret';
const HOUR = 3600_000;
const DEF = 'demo';

async function startOnFakes(t: { after: (fn: () => unknown) => void }, over: { github?: GitHubPort; clock?: { now(): number } } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-metrics-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = demoConfig({
    apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-metrics',
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'mt',
  });
  const driver = new InstantDriver((guest) => { guest.say('FLINT-MARKER booted'); });
  const options = {
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL',
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    maxVcpus: 64, maxMemoryMib: 65536,
    ...(over.clock === undefined ? {} : { clock: over.clock }),
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks(), github: over.github ?? new MemoryGitHub({ org: 'flint-metrics' }) },
  } satisfies FlintOptions;
  const flint = await startFlint(options);
  t.after(() => flint.close());
  return { flint, driver, config };
}

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

async function post(url: string, payload: unknown): Promise<number> {
  const d = signedDelivery(SECRET, 'workflow_job', payload);
  const res = await fetch(`${url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
  await res.arrayBuffer();
  return res.status;
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the counters move as a job runs: deliveries, JIT registration, VM prepare and boot, queued → running, jobs and VMs by state', async (t) => {
  const { flint, driver, config } = await startOnFakes(t);
  const def = config.runners.find((r) => r.name === DEF);
  assert.ok(def !== undefined);
  const before = await scrape(flint.url);
  assert.equal(sampleValue(before, 'flint_webhook_deliveries_total', { result: 'accepted' }), undefined, 'no delivery yet');
  assert.equal(sampleValue(before, 'flint_host_vcpus'), 64);
  assert.equal(sampleValue(before, 'flint_host_vcpus_used'), 0);
  assert.equal(sampleValue(before, 'flint_definition_health', { definition: DEF, state: 'healthy' }), 1);
  assert.ok(before.has('process_resident_memory_bytes'), 'the process metrics are there');

  assert.equal(await post(flint.url, workflowJobPayload({ jobId: 7001, action: 'queued' })), 202);
  await until('the VM to boot', () => flint.supervisor.list().some((vm) => vm.state === 'running'));
  const vm = flint.supervisor.list()[0];
  assert.ok(vm !== undefined && driver.starts.length === 1);

  const running = await scrape(flint.url);
  assert.equal(sampleValue(running, 'flint_webhook_deliveries_total', { result: 'accepted' }), 1);
  assert.equal(sampleValue(running, 'flint_jit_registrations_total', { definition: DEF, outcome: 'ok' }), 1);
  assert.equal(sampleValue(running, 'flint_vm_prepare_seconds_count', { definition: DEF }), 1);
  assert.equal(sampleValue(running, 'flint_vm_boot_seconds_count', { definition: DEF }), 1);
  assert.equal(sampleValue(running, 'flint_jobs', { state: 'queued', definition: DEF }), 1);
  assert.equal(sampleValue(running, 'flint_vms', { phase: 'running', definition: DEF }), 1);
  assert.equal(sampleValue(running, 'flint_host_vcpus_used'), def.cpuCount, 'the one VM holds its definition\'s vCPUs');
  assert.equal(sampleValue(running, 'flint_host_memory_used_bytes'), def.memorySize * 2 ** 20);
  assert.ok((sampleValue(running, 'flint_loop_runs_total', { loop: 'scale' }) ?? 0) >= 1);
  assert.equal(sampleValue(running, 'flint_loop_failures_total', { loop: 'scale' }), 0);

  // The runner of that VM takes the job; the same delivery again is a duplicate.
  const inProgress = workflowJobPayload({ jobId: 7001, action: 'in_progress', runnerName: `flint-${vm.id}` });
  const d = signedDelivery(SECRET, 'workflow_job', inProgress);
  for (let i = 0; i < 2; i++) await (await fetch(`${flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body })).arrayBuffer();
  await until('the queued → running sample', async () => sampleValue(await scrape(flint.url), 'flint_job_queued_to_running_seconds_count', { definition: DEF }) === 1);
  const started = await scrape(flint.url);
  assert.equal(sampleValue(started, 'flint_webhook_deliveries_total', { result: 'accepted' }), 2);
  assert.equal(sampleValue(started, 'flint_webhook_deliveries_total', { result: 'duplicate' }), 1);
  assert.equal(sampleValue(started, 'flint_jobs', { state: 'in_progress', definition: DEF }), 1);
  assert.equal(sampleValue(started, 'flint_jobs', { state: 'queued', definition: DEF }), undefined);

  // A forged delivery is counted by why it was refused.
  const forged = signedDelivery('not-the-secret', 'workflow_job', workflowJobPayload({ jobId: 7002, action: 'queued' }));
  assert.equal((await fetch(`${flint.url}/webhook`, { method: 'POST', headers: forged.headers, body: forged.body })).status, 401);
  assert.equal(sampleValue(await scrape(flint.url), 'flint_webhook_deliveries_total', { result: 'bad-signature' }), 1);

  await vm.stop('test over');
  await until('the VM end counted', async () => sampleValue(await scrape(flint.url), 'flint_vms_ended_total', { definition: DEF, state: 'stopped' }) === 1);
});

test('GitHub calls through the real client move flint_github_requests_total{outcome} and flint_github_rate_limit_remaining{resource}', async (t) => {
  const sim = await startSimulator({ org: 'flint-metrics', repos: ['widgets'], rateLimit: 200 });
  const started: { flint?: RunningFlint } = {};
  // Flint first: its shutdown still talks to GitHub (the idle runners' registrations).
  t.after(async () => {
    await started.flint?.close();
    await sim.close();
  });
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-metrics-gh-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = demoConfig({
    apiUrl: sim.apiUrl, appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: SECRET, organization: sim.org,
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'mg',
  });
  const driver = new InstantDriver((guest) => { guest.say('FLINT-MARKER booted'); });
  // No github edge: startFlint makes its own client, observed by the metrics, against the simulator.
  const flint = await startFlint({
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL',
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    maxVcpus: 64, maxMemoryMib: 65536,
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks() },
  });
  started.flint = flint;
  sim.setWebhook({ url: `${flint.url}/webhook`, secret: SECRET });
  const ok = async (): Promise<number> => sampleValue(await scrape(flint.url), 'flint_github_requests_total', { outcome: 'ok' }) ?? 0;
  const jitAsked = (): number => sim.requests().filter((r) => r.path.endsWith('/generate-jitconfig')).length;

  const before = await ok();
  await sim.queueJob({ repo: 'widgets', labels: ['self-hosted', 'flint-demo'] });
  await until('a JIT runner registered with the simulator', () => jitAsked() === 1);
  await until('the answers counted', async () => (await ok()) > before);
  const first = await scrape(flint.url);
  const answered = sim.requests().filter((r) => r.status < 400).length;
  assert.ok((sampleValue(first, 'flint_github_requests_total', { outcome: 'ok' }) ?? 0) >= 2, 'the installation token and the JIT registration at least');
  assert.ok((sampleValue(first, 'flint_github_requests_total', { outcome: 'ok' }) ?? 0) <= answered, 'never more than the simulator answered');
  assert.equal(sampleValue(first, 'flint_github_rate_limit', { resource: 'core' }), 200);
  const left = sampleValue(first, 'flint_github_rate_limit_remaining', { resource: 'core' }) ?? -1;
  assert.ok(left >= 0 && left < 200, `remaining ${left} of 200 after calls`);

  // A second job: one more JIT registration on the same installation token, so the window's remainder drops.
  await sim.queueJob({ repo: 'widgets', labels: ['self-hosted', 'flint-demo'] });
  await until('a second JIT registration', () => jitAsked() === 2);
  await until('its answer counted', async () => (sampleValue(await scrape(flint.url), 'flint_github_rate_limit_remaining', { resource: 'core' }) ?? 200) < left);
  const second = await scrape(flint.url);
  assert.ok((sampleValue(second, 'flint_github_requests_total', { outcome: 'ok' }) ?? 0) > (sampleValue(first, 'flint_github_requests_total', { outcome: 'ok' }) ?? 0));
  assert.equal(sampleValue(second, 'flint_github_requests_total', { outcome: 'server-error' }), undefined, 'no outcome without a request');
});

test('/readyz answers 200 with every check when Flint can work', async (t) => {
  const { flint } = await startOnFakes(t);
  const res = await fetch(`${flint.url}/readyz`);
  assert.equal(res.status, 200);
  const body = await res.json() as { status: string; checks: Record<string, { ok: boolean }> };
  assert.equal(body.status, 'ready');
  assert.deepEqual(Object.keys(body.checks).sort(), ['github', 'hypervisor', 'loops', 'store']);
  for (const [name, c] of Object.entries(body.checks)) assert.equal(c.ok, true, name);
});

test('a loop whose pass hangs far beyond its interval makes /readyz 503, naming the loop', async (t) => {
  let now = Date.UTC(2026, 0, 1);
  const memory = new MemoryGitHub({ org: 'flint-metrics' });
  let release = (): void => undefined;
  const hung = new Promise<void>((r) => { release = r; });
  // stale-runners runs at start and lists runners: that call hangs until the test ends.
  const github: GitHubPort = Object.assign(Object.create(memory) as MemoryGitHub, {
    listRunners: async (...args: Parameters<GitHubPort['listRunners']>) => { await hung; return memory.listRunners(...args); },
  });
  t.after(() => release());
  const { flint } = await startOnFakes(t, { github, clock: { now: () => now } });
  assert.equal((await fetch(`${flint.url}/readyz`)).status, 200, 'a pass under way is not stuck yet');
  now += 3 * HOUR + 1;
  const res = await fetch(`${flint.url}/readyz`);
  assert.equal(res.status, 503);
  const body = await res.json() as { status: string; checks: { loops: { ok: boolean; stuck: { name: string }[] }; store: { ok: boolean } } };
  assert.equal(body.status, 'not ready');
  assert.deepEqual(body.checks.loops.stuck.map((s) => s.name), ['stale-runners']);
  assert.equal(body.checks.store.ok, true);
  release();
});

test('a closed state database makes the readiness not ready, naming the store', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-ready-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir, { synchronous: 'NORMAL' });
  const ready = readiness({ store: databaseHealth(db), loops: () => [], now: () => 0 });
  assert.equal(ready().ok, true);
  db.close();
  const r = ready();
  assert.equal(r.ok, false);
  assert.deepEqual(r.checks.store, { ok: false, database: 'closed' });
});

test('every flint_ metric is listed in docs/operations.md, "Monitoring"', async (t) => {
  const { flint } = await startOnFakes(t);
  const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const monitoring = doc.slice(doc.indexOf('## Monitoring'));
  const names = [...(await scrape(flint.url)).keys()].filter((n) => n.startsWith('flint_'));
  assert.ok(names.length >= 20, `${names.length} metrics`);
  for (const name of names) assert.ok(monitoring.includes(`\`${name}\``), `${name} is documented`);
});

test('--webhooks-only: /readyz checks the store and the loops, /metrics counts deliveries and jobs', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-metrics-wo-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = demoConfig({
    apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used', webhookSecret: SECRET, organization: 'flint-metrics',
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'mw',
  });
  const flint = await startWebhooksOnly({ config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false });
  t.after(() => flint.close());
  const ready = await fetch(`${flint.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(Object.keys((await ready.json() as { checks: object }).checks).sort(), ['loops', 'store']);
  assert.equal(await post(flint.url, workflowJobPayload({ jobId: 8001, action: 'queued' })), 202);
  const m = await scrape(flint.url);
  assert.equal(sampleValue(m, 'flint_webhook_deliveries_total', { result: 'accepted' }), 1);
  assert.equal(sampleValue(m, 'flint_jobs', { state: 'queued', definition: DEF }), 1);
  assert.equal(sampleValue(m, 'flint_loop_runs_total', { loop: 'delivery-retention' }), 0);
  assert.equal(m.has('process_resident_memory_bytes'), false, 'process metrics switched off');
});
