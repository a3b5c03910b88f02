/**
 * The composition root on a PostgreSQL store (`store: {postgres: …}`):
 * startFlint with the fast fakes of the host's edges and GitHub in memory,
 * against a throw-away cluster (test/helpers/postgres.ts). The schema is
 * migrated at start, a webhook's job and the VM it starts are recorded in
 * PostgreSQL, /healthz reports that store, and close() ends the pool; two
 * Flints on one schema share the once-per-fleet loops through the lease;
 * a host that stops heartbeating is marked lost by the leader.
 */
import { after, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { demoConfig } from '../config/demo.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { FakeDisks } from '../../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../../test/fakes/fake-network.ts';
import { InstantDriver } from '../../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { postgresPrereqs, startPostgres } from '../../test/helpers/postgres.ts';
import type { PostgresCluster } from '../../test/helpers/postgres.ts';
import { requirePrereqs } from '../../test/helpers/prereq.ts';
import type { FleetView, StatusSnapshot } from '../daemon/status.ts';
import { adminCall } from './admin-client.ts';
import { signedDelivery, workflowJobPayload } from '../../bench/_payload.ts';
import { MIGRATIONS } from '../adapters/store/postgres/migrations.ts';
import { openPostgresStores } from '../adapters/store/postgres/index.ts';
import { newVmRecord } from '../daemon/vm/vm-store.ts';
import { startSimulator } from '../../tools/github-sim/index.ts';
import { startFlint, startWebhooksOnly } from './flint.ts';
import type { FlintOptions } from './flint.ts';

const SECRET = 'flint-postgres-test-secret';
const HOUR = 3600_000;

let started: Promise<PostgresCluster> | undefined;
after(async () => {
  const c = await started?.catch(() => undefined);
  await c?.stop();
});

test('flint on a PostgreSQL store: migrated at start, the job and its VM recorded there, /healthz on it, the pool ended at close', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-pg-root-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const github = new MemoryGitHub({ org: 'flint-pg' });
  const config = {
    ...demoConfig({
      apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-pg',
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'pg',
    }),
    store: { postgres: { url } },
  };
  const driver = new InstantDriver((guest) => { guest.say('FLINT-MARKER booted'); });
  const options = {
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL',
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    maxVcpus: 1000, maxMemoryMib: 1_000_000,
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks(), github },
  } satisfies FlintOptions;
  const flint = await startFlint(options);
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());

  const health = await fetch(`${flint.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok', ok: true, database: 'open', store: 'postgres', schema: MIGRATIONS.length, local: 'open' });

  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 4242, action: 'queued' }));
  assert.equal((await fetch(`${flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body })).status, 202);
  const deadline = Date.now() + 20_000;
  while (driver.starts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(driver.starts.length, 1, 'the scheduler started a VM for the queued job');
  assert.deepEqual((await client.query('SELECT id::int AS id, status FROM jobs')).rows, [{ id: 4242, status: 'queued' }]);
  const vms = await client.query<{ id: string }>("SELECT id FROM vms WHERE instance_id = 'pg'");
  assert.equal(vms.rows.length, 1, 'the VM record is in PostgreSQL');
  const runners = await client.query('SELECT vm_id FROM runner_states');
  assert.deepEqual(runners.rows, [{ vm_id: vms.rows[0]?.id }], 'and so is the scheduler\'s runner');

  closed = true;
  await flint.close();
  assert.equal(await flintSessionsAfterClose(client), 0, 'close() ended the pool');
  // The SQLite file holds no job or VM of this Flint: only what is the host's own (its leases) goes there.
  const db = openDatabase(stateDir);
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('jobs', 'vms', 'deliveries')").all();
    assert.deepEqual(tables, []);
  } finally {
    db.close();
  }
});

/**
 * Flint's sessions still on the server. A backend ends shortly after its
 * client's Terminate message, not when `pool.end()` resolves, so this asks
 * until none is left or 10 s have passed, and answers the last count.
 */
async function flintSessionsAfterClose(client: pg.Client): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'flint'");
    const n = rows[0]?.n ?? -1;
    if (n === 0 || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('flint serve --webhooks-only on a PostgreSQL store: /readyz checks that store, a delivery lands there, close ends the pool', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-pg-webhooks-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = {
    ...demoConfig({
      apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used', webhookSecret: SECRET, organization: 'flint-pg',
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'pgw',
    }),
    store: { postgres: { url } },
  };
  const flint = await startWebhooksOnly({ config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false });
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  const ready = await fetch(`${flint.url}/readyz`);
  const body = await ready.json() as { checks: { store: { ok: boolean; store?: string } } }; // the readiness JSON (http/readiness.ts)
  assert.equal(ready.status, 200);
  assert.equal(body.checks.store.ok, true);
  assert.equal(body.checks.store.store, 'postgres');
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 77, action: 'queued' }));
  assert.equal((await fetch(`${flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body })).status, 202);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());
  assert.deepEqual((await client.query('SELECT job_id::int AS job_id, outcome FROM deliveries')).rows, [{ job_id: 77, outcome: 'accepted' }]);
  closed = true;
  await flint.close();
  assert.equal(await flintSessionsAfterClose(client), 0, 'close() ended the pool');
});

/**
 * One host of a test fleet on the schema at `url`: startFlint with fake
 * edges and the shared in-memory GitHub; the fleet's passes often and the
 * lease short, so that a take-over happens within a fraction of a second.
 */
async function fleetHost(t: TestContext, o: { url: string; github: MemoryGitHub; instanceId: string; reconcileMs?: number; maxRunners?: number }) {
  const { instanceId } = o;
  const stateDir = mkdtempSync(join(tmpdir(), `flint-pg-${instanceId}-`));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = {
    ...demoConfig({
      apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-pg',
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: o.maxRunners ?? 2, instanceId,
    }),
    store: { postgres: { url: o.url } },
  };
  const driver = new InstantDriver(() => undefined);
  const flint = await startFlint({
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false,
    tickMs: HOUR, reconcileMs: o.reconcileMs ?? HOUR, staleRunnersMs: 50, jobTruth: { intervalMs: 50 }, redeliver: { intervalMs: 50 },
    fleet: { heartbeatMs: 100, leaseTtlMs: 600 },
    maxVcpus: 16, maxMemoryMib: 32_768,
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(instanceId), disks: new FakeDisks(), github: o.github },
  });
  let closed = false;
  t.after(async () => { if (!closed) await flint.close(); });
  return { id: instanceId, flint, driver, close: async () => { closed = true; await flint.close(); } };
}

test('two Flints on one PostgreSQL store share the queue: webhooks to one host start one VM per job across both, each within its maxRunners, and a closing host\'s claims move at once', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  const github = new MemoryGitHub({ org: 'flint-pg' });
  // No scale tick but the first: every later start comes from a webhook's poke or another host's NOTIFY.
  const a = await fleetHost(t, { url, github, instanceId: 'sa', maxRunners: 2 });
  const b = await fleetHost(t, { url, github, instanceId: 'sb', maxRunners: 4 });
  // After both hosts have closed (hooks run in the order they were added).
  t.after(() => cluster.dropSchema(url));
  for (const jobId of [501, 502, 503, 504]) {
    const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId, action: 'queued' }));
    assert.equal((await fetch(`${a.flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body })).status, 202);
  }
  const deadline = Date.now() + 15_000;
  while (a.driver.starts.length + b.driver.starts.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  // A moment more: a host that would start a VM beyond demand would have done so by now.
  await new Promise((r) => setTimeout(r, 300));
  // Which host claims first is a race; neither goes beyond its maxRunners, and the fleet starts one VM per job.
  const vmsOf = { sa: a.driver.starts.length, sb: b.driver.starts.length };
  assert.equal(vmsOf.sa + vmsOf.sb, 4, `one VM per job: ${JSON.stringify(vmsOf)}`);
  assert.ok(vmsOf.sa <= 2, `the receiving host within its maxRunners: ${JSON.stringify(vmsOf)}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());
  const held = await client.query("SELECT claimed_by, count(*)::int AS n FROM jobs WHERE status = 'queued' GROUP BY claimed_by ORDER BY claimed_by");
  assert.deepEqual(held.rows, Object.entries(vmsOf).filter(([, n]) => n > 0).map(([host, n]) => ({ claimed_by: host, n })), 'each host holds a claim per VM it started');
  // A closing host gives its claims up, and the other, with room for them, takes them at once.
  await a.close();
  const until = Date.now() + 15_000;
  while (b.driver.starts.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.driver.starts.length, 4);
  assert.deepEqual((await client.query("SELECT claimed_by, count(*)::int AS n FROM jobs WHERE status = 'queued' GROUP BY claimed_by")).rows, [{ claimed_by: 'sb', n: 4 }]);
});

test('two Flints on one PostgreSQL store: only the leader runs the once-per-fleet passes, and the other takes over when it closes', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  const github = new MemoryGitHub({ org: 'flint-pg' });
  const host = (instanceId: string) => fleetHost(t, { url, github, instanceId, reconcileMs: 50 });
  const SINGLETONS = ['missed-webhooks', 'stale-runners', 'job-truth', 'redeliver'];
  const runsOf = (f: { flint: { loops(): { name: string; runs: number; standby?: boolean }[] } }) =>
    Object.fromEntries(f.flint.loops().filter((l) => SINGLETONS.includes(l.name)).map((l) => [l.name, { runs: l.runs, standby: l.standby }]));
  const until = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const a = await host('fa');
  const b = await host('fb');
  const everyRan = (f: typeof a, n: number) => SINGLETONS.every((name) => (runsOf(f)[name]?.runs ?? 0) >= n);
  await until('a leader running every fleet-wide loop', () => everyRan(a, 3) || everyRan(b, 3));
  const [leader, follower] = everyRan(a, 3) ? [a, b] : [b, a];
  // Several of the leader's renewals later, the follower has still run none.
  await until('more passes of the leader', () => everyRan(leader, 8));
  for (const name of SINGLETONS) {
    assert.deepEqual(runsOf(follower)[name], { runs: 0, standby: true }, `${name} on the follower`);
    assert.equal(runsOf(leader)[name]?.standby, false);
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());
  assert.deepEqual((await client.query('SELECT id, vcpus, vms FROM fleet_hosts ORDER BY id')).rows, [{ id: 'fa', vcpus: 16, vms: 0 }, { id: 'fb', vcpus: 16, vms: 0 }]);
  assert.deepEqual((await client.query('SELECT holder FROM fleet_leases')).rows, [{ holder: leader.id }]);

  // stale-runners lists the fleet's registrations once, on the leader: GitHub is asked once per interval, not once per host.
  // (A pass may be under way: its listing is counted, its run not yet.)
  const listings = github.calls.filter((c) => c === 'listRunners').length;
  const leaderRuns = runsOf(leader)['stale-runners']?.runs ?? 0;
  assert.ok(listings >= leaderRuns && listings <= leaderRuns + 1, `${listings} listings for the leader's ${leaderRuns} passes`);

  await leader.close();
  // Released at close: taken at the follower's next renewal (ttl/3), not after the ttl.
  await until('the other host to take over', () => everyRan(follower, 1));
  for (const name of SINGLETONS) assert.equal(runsOf(follower)[name]?.standby, false);
  assert.deepEqual((await client.query('SELECT holder FROM fleet_leases')).rows, [{ holder: follower.id }]);
});

test('two Flints in scale-set mode on one PostgreSQL store: only the leader listens, offering both hosts\' room; when it closes the other opens its own session and offers its own', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  // Short polls: each one carries the listener's X-ScaleSetMaxCapacity as it is now.
  const sim = await startSimulator({ org: 'flint-pgss', messagePollSeconds: 0.1 });
  t.after(() => sim.close());
  const scaleSet = { name: 'flint-pgss', runnerGroup: 'Default' };
  const host = async (instanceId: string) => {
    const stateDir = mkdtempSync(join(tmpdir(), `flint-pg-${instanceId}-`));
    t.after(() => rmSync(stateDir, { recursive: true, force: true }));
    const base = demoConfig({
      apiUrl: sim.apiUrl, appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: SECRET, organization: sim.org,
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId,
    });
    const config = {
      ...base, github: { ...base.github, webhookSecrets: [] }, runners: base.runners.map((r) => ({ ...r, scaleSet })), store: { postgres: { url } },
    };
    const flint = await startFlint({
      config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false,
      tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
      fleet: { heartbeatMs: 100, leaseTtlMs: 600 }, sessionConflict: { retries: 1, baseMs: 100, maxMs: 100 },
      maxVcpus: 16, maxMemoryMib: 32_768,
      edges: { drivers: { qemu: new InstantDriver(() => undefined) }, network: new FakeNetwork(instanceId), disks: new FakeDisks() },
    });
    let closed = false;
    t.after(async () => { if (!closed) await flint.close(); });
    return { id: instanceId, flint, close: async () => { closed = true; await flint.close(); } };
  };
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!ok()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const sessionOwner = (): string | undefined => sim.actions.scaleSets().find((s) => s.name === scaleSet.name)?.session?.ownerName;
  const offered = (): number | null | undefined => sim.actions.scaleSets().find((s) => s.name === scaleSet.name)?.lastMaxCapacity;
  const listens = (f: { flint: { loops(): { name: string }[] } }): boolean => f.flint.loops().some((l) => l.name.startsWith('scaleset-listener:'));
  const a = await host('sa');
  const b = await host('sb');
  await until('a session at the service', () => sessionOwner() !== undefined);
  const [leader, follower] = sessionOwner() === 'flint-sa' ? [a, b] : [b, a];
  assert.equal(sessionOwner(), `flint-${leader.id}`);
  await new Promise((r) => setTimeout(r, 700)); // more than a ttl: the follower has had every chance to start one
  assert.equal(listens(leader), true);
  assert.equal(listens(follower), false, 'no listener on the host that does not lead');
  assert.equal(sessionOwner(), `flint-${leader.id}`);

  // Each host can hold its maxRunners (2) of the definition: the leader offers the fleet's 4, not its own 2.
  const def = 'demo';
  await until('the leader to offer both hosts\' room', () => offered() === 4);
  // The follower pauses the definition: its next heartbeat says it holds none, and the leader offers its own 2.
  assert.equal(follower.flint.scheduler.pause(def), true);
  await until('the leader to offer its own room only', () => offered() === 2);
  follower.flint.scheduler.resume(def);
  await until('the leader to offer both again', () => offered() === 4);

  await leader.close();
  await until('the other host to listen', () => sessionOwner() === `flint-${follower.id}`);
  assert.equal(listens(follower), true);
  // The closed host's heartbeat goes stale within two intervals: its room no longer counts.
  await until('the new leader to offer its own room only', () => sessionOwner() === `flint-${follower.id}` && offered() === 2);
});

test('a host of the fleet that dies is marked lost by the leader: its VM records fail, its runner states go, its registrations are deleted', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  const github = new MemoryGitHub({ org: 'flint-pg' });
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-pg-la-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = {
    ...demoConfig({
      apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-pg',
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId: 'la',
    }),
    store: { postgres: { url } },
  };
  const definition = config.runners[0]?.name ?? 'default';
  // Host lb as it was when it died: two runner VMs, one registered and idle, one still preparing; one VM ended before.
  const lb = await openPostgresStores({ url });
  t.after(() => lb.close());
  const jit = await github.createJitRunner({ scope: { kind: 'organization' }, name: 'flint-lb-0', runnerGroupId: 1, labels: ['flint'] });
  for (const [id, state] of [['lb-0', 'running'], ['lb-1', 'preparing'], ['lb-2', 'stopped']] as const) {
    await lb.vms.insert(newVmRecord({ id, instanceId: 'lb', runner: definition, hypervisor: 'qemu', workDir: `/state/vms/${id}`, createdAt: Date.now() }));
    if (state !== 'preparing') await lb.vms.update(id, 'preparing', { state, ...(state === 'stopped' ? { reason: 'runner exited', endedAt: Date.now() } : {}) });
  }
  await lb.runnerStates.put({ vmId: 'lb-0', instanceId: 'lb', definition, phase: 'idle', githubRunnerId: jit.runnerId, idleSince: Date.now(), startedAt: Date.now() });
  await lb.runnerStates.put({ vmId: 'lb-1', instanceId: 'lb', definition, phase: 'starting', githubRunnerId: null, idleSince: null, startedAt: Date.now() });
  await lb.fleet.heartbeat({ id: 'lb', capacity: { vcpus: 16, memoryMib: 32_768 }, vms: 2 }, Date.now());
  // Its last word: from here on lb is silent.
  const diedAt = Date.now();

  const flint = await startFlint({
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false,
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    fleet: { heartbeatMs: 100, leaseTtlMs: 600, hostLostMs: 1500 },
    maxVcpus: 16, maxMemoryMib: 32_768,
    edges: { drivers: { qemu: new InstantDriver(() => undefined) }, network: new FakeNetwork('la'), disks: new FakeDisks(), github },
  });
  t.after(() => flint.close());
  const until = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const lbRow = async () => (await lb.fleet.hosts()).find((h) => h.id === 'lb');
  await until('lb marked lost', async () => (await lbRow())?.lostAt !== undefined);
  const lostAt = (await lbRow())?.lostAt ?? 0;
  assert.ok(lostAt - diedAt >= 1500, `marked ${lostAt - diedAt} ms after its last heartbeat, not before hostLostMs`);
  assert.equal((await lb.fleet.lease('singletons'))?.holder, 'la', 'by the leader');
  const rec = await lb.vms.get('lb-0');
  assert.deepEqual([rec?.state, rec?.reason, rec?.endedAt], ['failed', 'host lb lost: it stopped heartbeating', lostAt]);
  assert.equal((await lb.vms.get('lb-1'))?.state, 'failed');
  assert.equal((await lb.vms.get('lb-2'))?.reason, 'runner exited', 'a VM that had ended is left as it was');
  assert.deepEqual(await lb.vms.listUnfinished('lb'), []);
  assert.deepEqual(await lb.runnerStates.list('lb'), []);
  assert.deepEqual(await github.listRunners({ kind: 'organization' }), [], 'its registration is deleted');
  const la = flint.loops().find((l) => l.name === 'fleet-reaper');
  assert.equal(la?.standby, false);
  assert.equal((await lb.fleet.hosts()).find((h) => h.id === 'la')?.lostAt, undefined, 'the leader itself is not lost');

  // lb comes back: its heartbeat clears the mark.
  await lb.fleet.heartbeat({ id: 'lb', capacity: { vcpus: 16, memoryMib: 32_768 }, vms: 0 }, Date.now());
  assert.equal((await lbRow())?.lostAt, undefined);
});

test('two Flints on one PostgreSQL store: each one\'s status and flint hosts list both hosts, exactly one leader, itself as this host; a closed host turns late', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const cluster = await (started ??= startPostgres());
  const url = await cluster.createSchema();
  t.after(() => cluster.dropSchema(url));
  const github = new MemoryGitHub({ org: 'flint-pg' });
  const host = async (instanceId: string) => {
    const stateDir = mkdtempSync(join(tmpdir(), `flint-pg-${instanceId}-`));
    t.after(() => rmSync(stateDir, { recursive: true, force: true }));
    const config = {
      ...demoConfig({
        apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-pg',
        kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0', maxRunners: 2, instanceId,
      }),
      store: { postgres: { url } },
    };
    const flint = await startFlint({
      config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL', processMetrics: false,
      tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
      fleet: { heartbeatMs: 100, leaseTtlMs: 600 },
      maxVcpus: instanceId === 'va' ? 16 : 8, maxMemoryMib: 32_768,
      edges: { drivers: { qemu: new InstantDriver(() => undefined) }, network: new FakeNetwork(instanceId), disks: new FakeDisks(), github },
    });
    let closed = false;
    t.after(async () => { if (!closed) await flint.close(); });
    const socket = join(config.runDir, 'admin.sock');
    return {
      id: instanceId, flint, close: async () => { closed = true; await flint.close(); },
      status: async () => await adminCall(socket, 'GET', '/status') as StatusSnapshot, // the daemon's /status answer
      hosts: async () => await adminCall(socket, 'GET', '/hosts') as FleetView | null, // the daemon's /hosts answer
      metrics: async () => await (await fetch(`${flint.url}/metrics`)).text(),
    };
  };
  const until = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const a = await host('va');
  const b = await host('vb');
  await until('both hosts on record and a leader', async () => {
    const f = (await a.status()).fleet;
    return f?.hosts.length === 2 && f.leader !== null;
  });
  const leaderId = (await a.status()).fleet?.leader;
  for (const f of [a, b]) {
    const fleet = (await f.status()).fleet;
    assert.ok(fleet !== null, `${f.id}: a fleet on a PostgreSQL store`);
    // No job queued: no claim held; the column is there because the PostgreSQL store shares work through claims.
    assert.deepEqual(fleet.hosts.map((h) => [h.id, h.capacity.vcpus, h.vms, h.state, h.self, h.claims]), [['va', 16, 0, 'up', f.id === 'va', 0], ['vb', 8, 0, 'up', f.id === 'vb', 0]]);
    assert.deepEqual(fleet.hosts.filter((h) => h.leader).map((h) => h.id), [leaderId], `${f.id}: exactly one leader, the same for both`);
    assert.equal(fleet.leader, leaderId);
    for (const h of fleet.hosts) assert.match(h.address ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    const hosts = await f.hosts();
    assert.deepEqual(hosts?.hosts.map((h) => [h.id, h.self, h.leader]), fleet.hosts.map((h) => [h.id, h.self, h.leader]), `${f.id}: GET /hosts agrees`);
    const metrics = await f.metrics();
    assert.match(metrics, /^flint_fleet_hosts\{state="up"\} 2$/m);
    assert.match(metrics, new RegExp(`^flint_fleet_leader ${f.id === leaderId ? 1 : 0}$`, 'm'));
  }
  const [leader, follower] = leaderId === 'va' ? [a, b] : [b, a];

  await leader.close();
  // Its row stays with its last heartbeat: two intervals (200 ms) later it is late; the lease it gave up goes to the other.
  await until('the closed host late and the other leading', async () => {
    const f = (await follower.status()).fleet;
    return f?.leader === follower.id && f.hosts.find((h) => h.id === leader.id)?.state === 'late';
  });
  assert.deepEqual((await follower.hosts())?.hosts.map((h) => [h.id, h.leader, h.self]).sort(), [[follower.id, true, true], [leader.id, false, false]].sort());
  assert.match(await follower.metrics(), /^flint_fleet_leader 1$/m);
});
