/**
 * A fleet end to end: three Flint hosts, each a `flint serve` process in a
 * network namespace of its own with its own bridge and real QEMU guests
 * (the test image), one PostgreSQL (a throw-away cluster on a unix socket,
 * reachable from every namespace since it is a file), and the GitHub
 * simulator in "the internet" (test/helpers/topology.ts). The test's
 * namespace is the hosts' LAN (test/helpers/fleet-hosts.ts); the simulator
 * delivers webhooks to one URL, a round-robin balancer in front of the hosts
 * (test/helpers/round-robin.ts), so every host takes deliveries.
 *
 * Each host runs at most one VM, so a handful of jobs has to spread. The
 * lease and the claims are as short as the configuration allows (`fleet:
 * {leaseTtl: 3s, claimTtl: 10s}`) so a fail-over takes seconds.
 * Each test builds its own fleet on a schema of its own.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { demoConfig } from '../config/demo.ts';
import type { FlintConfig } from '../config/types.ts';
import { parseVmId, vmIdFromRunnerName } from '../core/ids.ts';
import { packageRoot } from '../images/paths.ts';
import { fakeRunnerCommand } from './commands/demo.ts';
import { exited, startChildFlint } from '../../test/helpers/child-flint.ts';
import { until } from '../../test/helpers/e2e-flint.ts';
import { hostNamespaces, removeVmCgroupsOf, type HostNamespace } from '../../test/helpers/fleet-hosts.ts';
import { postgresPrereqs, startPostgres, type PostgresCluster } from '../../test/helpers/postgres.ts';
import { program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import type { RemoteSimulator } from '../../test/helpers/remote-sim.ts';
import { roundRobin, type RoundRobin } from '../../test/helpers/round-robin.ts';
import { ensureTestImage } from '../../test/helpers/test-image.ts';
import { startTopology } from '../../test/helpers/topology.ts';
import type { ChildProcess } from 'node:child_process';

const LABELS = ['self-hosted', 'linux'];
const MINUTES = 60_000;
/** The lease (`fleet.leaseTtl`, its shortest): taken over at most ttl + ttl/3 after the leader's last renewal. */
const LEASE_TTL_S = 3;
const LEASE_TTL_MS = LEASE_TTL_S * 1000;

let cluster: Promise<PostgresCluster> | undefined;
after(async () => {
  const c = await cluster?.catch(() => undefined);
  await c?.stop();
});

interface Host {
  readonly id: string;
  readonly ns: HostNamespace;
  readonly proc: ChildProcess;
  readonly url: string;
  /** SIGKILL to Flint, then to everything else in the host's namespace (its VMs): the host is gone. */
  kill(): Promise<void>;
}

interface Fleet {
  readonly sim: RemoteSimulator;
  readonly lb: RoundRobin;
  readonly db: pg.Client;
  /** Starts host `i` of this fleet (its namespace, its Flint) and puts it behind the balancer. */
  start(i: number): Promise<Host>;
  /** The holder of the `singletons` lease now, if unexpired. */
  leader(): Promise<string | undefined>;
  /** Every host's log so far, for a failure's message. */
  logs(): string;
}

/**
 * The simulator, the balancer, PostgreSQL and what hosts need; hosts are
 * started with `start`. `first` numbers this fleet's namespaces and subnets
 * apart from another test's. Undefined when prerequisites are missing.
 */
async function startFleet(t: TestContext, opts: { readonly org: string; readonly first: number }): Promise<Fleet | undefined> {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'), program('nft'), program('unshare'), program('nsenter'), ...postgresPrereqs())) return undefined;
  const image = await ensureTestImage();
  const work = mkdtempSync(join(tmpdir(), 'flint-fleet-e2e-'));
  // QEMU runs as the runner's uid: it must pass through to the VMs' work dirs.
  chmodSync(work, 0o711);
  // One closer, in order: the Flints (they still talk to GitHub and PostgreSQL while they stop), the hosts'
  // namespaces, then the rest; registered first so it runs before the helpers' own (idempotent) closers.
  const flints: Array<() => Promise<void>> = [];
  const rest: Array<() => unknown> = [];
  t.after(async () => {
    try {
      await Promise.all(flints.map((close) => close()));
      for (const close of rest.reverse()) await close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
  const scope = { after: (fn: () => unknown) => { rest.push(fn); }, skip: (m?: string) => t.skip(m) };
  const pgCluster = await (cluster ??= startPostgres());
  const url = await pgCluster.createSchema();
  rest.push(() => pgCluster.dropSchema(url));
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  rest.push(() => db.end());
  const hostNamespace = await hostNamespaces(scope);
  const topology = await startTopology(scope, { org: opts.org });
  const { sim } = topology;
  const lb = await roundRobin(scope, topology.hostAddress);
  const secret = `${opts.org}-webhook-secret`;
  sim.setWebhook({ url: `${lb.url}/webhook`, secret });
  const kernelArgs = image.kernelArgs.split(/\s+/).filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');
  // A job "runs" two seconds in the guest.
  const runnerCommand = fakeRunnerCommand(packageRoot()).replace(/ 120 success \d+$/, ' 120 success 2');
  const guestExtras = { FLINT_RUNNER_COMMAND: runnerCommand, FLINT_GITHUB_URL: topology.simUrl };
  const logFiles: string[] = [];

  const start = async (i: number): Promise<Host> => {
    const id = `fleet${String.fromCharCode(97 + opts.first + i)}`;
    const ns = await hostNamespace(opts.first + i, topology);
    const stateDir = join(work, id);
    mkdirSync(stateDir, { mode: 0o711 });
    const base = demoConfig({
      apiUrl: topology.simUrl, appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: secret, organization: opts.org,
      stateDir, kernel: image.kernel, initrd: image.initrd, filesystem: image.rootfs,
      address: `${ns.address}:0`, network: { name: `br-${id}`, v4: ns.bridgeV4, create: true }, instanceId: id, maxRunners: 1,
    });
    const config: FlintConfig = {
      ...base, store: { postgres: { url } }, fleet: { heartbeatSeconds: 1, leaseTtlSeconds: LEASE_TTL_S, claimTtlSeconds: 10 }, runners: base.runners.map((r) => ({ ...r, kernelArgs })),
    };
    const logFile = join(work, `${id}.log`);
    logFiles.push(logFile);
    const child = await startChildFlint((close) => { flints.push(async () => { await close(); }); }, {
      config, guestExtras, logFile, secret, netnsPid: ns.pid,
      // The leader's scans every 2 s: missed-webhooks and stale-runners (one listing per fleet), seen in the idle period.
      flint: { tickMs: 300, reconcileMs: 2000, staleRunnersMs: 2000 },
    });
    lb.add(child.url);
    const kill = async (): Promise<void> => {
      child.proc.kill('SIGKILL');
      await exited(child.proc);
      await ns.kill();
      await removeVmCgroupsOf(id);
    };
    rest.push(() => removeVmCgroupsOf(id));
    return { id, ns, proc: child.proc, url: child.url, kill };
  };
  const leader = async (): Promise<string | undefined> => {
    const { rows } = await db.query<{ holder: string }>('SELECT holder FROM fleet_leases WHERE name = $1 AND expires_at > $2', ['singletons', Date.now()]);
    return rows[0]?.holder;
  };
  const logs = (): string => logFiles.map((f) => {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { /* not yet written */ }
    return `--- ${f}\n${text.split('\n').slice(-40).join('\n')}`;
  }).join('\n');
  return { sim, lb, db, start, leader, logs };
}

/** GitHub REST calls the simulator has answered so far (its control API and the runners' service not counted). */
function restCalls(sim: RemoteSimulator): number {
  return sim.requests().length;
}

function jitRegistrations(sim: RemoteSimulator): number {
  return sim.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/actions/runners/generate-jitconfig')).length;
}

/** The instance id in a runner's name (`flint-<instance>-<n>`). */
function hostOf(runnerName: string | null | undefined): string | undefined {
  const vm = runnerName == null ? undefined : vmIdFromRunnerName(runnerName);
  return vm === undefined ? undefined : parseVmId(vm)?.instanceId;
}

/** The live VMs of every host, as their latest heartbeats reported them. */
async function vmsInFleet(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT coalesce(sum(vms), 0)::int AS n FROM fleet_hosts');
  return rows[0]?.n ?? -1;
}

/** The live VMs a host reported at its latest heartbeat. */
async function vmsOf(db: pg.Client, host: string): Promise<number> {
  const { rows } = await db.query<{ vms: number }>('SELECT vms FROM fleet_hosts WHERE id = $1', [host]);
  return rows[0]?.vms ?? 0;
}

async function hostsHeartbeating(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM fleet_hosts WHERE last_heartbeat_at > $1 ORDER BY id', [Date.now() - 5000]);
  return rows.map((r) => r.id);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `body`; when it fails, the hosts' logs go with the error. */
async function withLogs(t: TestContext, fleet: Fleet, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    t.diagnostic(fleet.logs());
    const said = (f: () => unknown): string => { try { return JSON.stringify(f()); } catch (e) { return String(e); } };
    t.diagnostic(`simulator jobs: ${said(() => fleet.sim.jobs().map((j) => [j.id, j.status, j.runnerName]))}`);
    t.diagnostic(`simulator runners: ${said(() => fleet.sim.runners().map((r) => [r.id, r.name, r.status, r.busy]))}`);
    const rows = await fleet.db.query('SELECT id::int AS id, status, claimed_by, claim_expires_at::text AS expires FROM jobs ORDER BY id').catch((e: unknown) => ({ rows: [String(e)] }));
    t.diagnostic(`jobs in PostgreSQL: ${JSON.stringify(rows.rows)}`);
    throw err;
  }
}

test('three hosts: an idle fleet asks GitHub no more than one host does; a lone job gets one VM, not one per host; six jobs spread over the hosts with one VM each', { timeout: 6 * MINUTES }, async (t) => {
  const fleet = await startFleet(t, { org: 'flint-fleet', first: 0 });
  if (fleet === undefined) return;
  const { sim, db } = fleet;
  await withLogs(t, fleet, async () => {
    // One host first: its calls over an idle period are the yardstick.
    const a = await fleet.start(0);
    await until('the first host to lead', MINUTES, async () => (await fleet.leader()) === a.id);
    const WINDOW_MS = 10_000;
    await sleep(3000); // its start-up calls (token, stale-runners' first pass) are behind it
    const before1 = restCalls(sim);
    await sleep(WINDOW_MS);
    const one = restCalls(sim) - before1;

    const [b, c] = await Promise.all([fleet.start(1), fleet.start(2)]);
    await until('three hosts heartbeating', MINUTES, async () => (await hostsHeartbeating(db)).length === 3);
    await sleep(3000);
    const before3 = restCalls(sim);
    await sleep(WINDOW_MS);
    const three = restCalls(sim) - before3;
    t.diagnostic(`GitHub REST calls in ${WINDOW_MS / 1000} s idle: one host ${one}, three hosts ${three}`);
    assert.ok(one > 0, 'the leader scans for missed jobs: the yardstick is not empty');
    // The same period may hold one more pass of the leader's 2 s scan; a per-host loop would triple it.
    assert.ok(three <= Math.ceil(one * 1.25), `idle calls with three hosts (${three}) are not more than with one (${one}) beyond a pass`);
    assert.equal(await fleet.leader(), a.id, 'the first host still leads');

    // A lone job in an idle fleet of three: one VM for it, not one on every host that has room.
    const jitLone = jitRegistrations(sim);
    const { jobId: lone } = await sim.queueJob({ repo: 'app', labels: LABELS, name: 'a lone job' });
    await until('the lone job to complete', 3 * MINUTES, () => sim.jobs().find((j) => j.id === lone)?.status === 'completed');
    // Every host that started a VM for it registered its runner before the VM booted: all are counted by now.
    assert.equal(jitRegistrations(sim) - jitLone, 1, 'one runner (one VM) for one job in a fleet of three idle hosts');
    await until('every VM to be gone', 2 * MINUTES, async () => (await vmsInFleet(db)) === 0);

    const JOBS = 6;
    const jitBefore = jitRegistrations(sim);
    const callsBefore = restCalls(sim);
    const ids: number[] = [];
    for (let i = 0; i < JOBS; i++) ids.push((await sim.queueJob({ repo: 'app', labels: LABELS, name: `fleet job ${i}` })).jobId);
    const done = (): ReturnType<RemoteSimulator['jobs']> => sim.jobs().filter((j) => ids.includes(j.id) && j.status === 'completed');
    await until(`all ${JOBS} jobs to complete`, 4 * MINUTES, () => done().length === JOBS);
    assert.deepEqual(done().map((j) => j.conclusion), Array<string>(JOBS).fill('success'));
    const ranOn = new Set(done().map((j) => hostOf(j.runnerName)));
    t.diagnostic(`jobs by host: ${JSON.stringify(done().map((j) => hostOf(j.runnerName)))}`);
    assert.ok(ranOn.size >= 2, `jobs ran on at least two hosts: ${[...ranOn].join(', ')}`);
    for (const h of ranOn) assert.ok([a.id, b.id, c.id].includes(h ?? ''), `a runner of a fleet host: ${h}`);
    // Deliveries went round the hosts, and each host took its share.
    for (const h of [a, b, c]) assert.ok((fleet.lb.served().get(h.url) ?? 0) > 0, `${h.id} accepted deliveries: ${JSON.stringify([...fleet.lb.served()])}`);
    // Every VM gone, then a while with none started: one VM per job, none beyond demand.
    await until('every VM to be gone', 2 * MINUTES, async () => (await vmsInFleet(db)) === 0);
    await sleep(3000);
    assert.equal(jitRegistrations(sim) - jitBefore, JOBS, 'one runner (one VM) per job across the fleet');
    t.diagnostic(`GitHub REST calls per job with three hosts: ${((restCalls(sim) - callsBefore) / JOBS).toFixed(1)}`);
  });
});

test('the leader host is killed mid-run with jobs queued: another host holds the lease within ttl + ttl/3, and every queued job completes', { timeout: 6 * MINUTES }, async (t) => {
  const fleet = await startFleet(t, { org: 'flint-fleetkill', first: 3 });
  if (fleet === undefined) return;
  const { sim } = fleet;
  await withLogs(t, fleet, async () => {
    const hosts = await Promise.all([0, 1, 2].map((i) => fleet.start(i)));
    await until('a leader', MINUTES, async () => (await fleet.leader()) !== undefined);
    const leaderId = await fleet.leader();
    const leader = hosts.find((h) => h.id === leaderId);
    assert.ok(leader !== undefined, `the leader ${leaderId} is one of the hosts`);

    const JOBS = 4;
    const ids: number[] = [];
    for (let i = 0; i < JOBS; i++) ids.push((await sim.queueJob({ repo: 'app', labels: LABELS, name: `kill job ${i}` })).jobId);
    const mine = (): ReturnType<RemoteSimulator['jobs']> => sim.jobs().filter((j) => ids.includes(j.id));
    // Mid-run: the leader has a VM (booting or running a job) while jobs wait (each host runs one VM at a time).
    // A job the leader claimed but never ran is among those queued: other hosts take it once the claim expires.
    await until('a VM on the leader with jobs still queued', 3 * MINUTES, async () =>
      (await vmsOf(fleet.db, leader.id)) > 0 && mine().some((j) => j.status === 'queued'));
    const killedAt = Date.now();
    await leader.kill();
    const queued = mine().filter((j) => j.status === 'queued').map((j) => j.id);
    t.diagnostic(`killed ${leader.id} with ${queued.length} job(s) queued`);

    await until('another host to hold the lease', MINUTES, async () => {
      const now = await fleet.leader();
      return now !== undefined && now !== leader.id;
    });
    const failoverMs = Date.now() - killedAt;
    t.diagnostic(`lease taken over ${failoverMs} ms after the kill`);
    // Renewed every ttl/3: the last renewal was at most that long before the kill; then the ttl, then the next try.
    assert.ok(failoverMs <= LEASE_TTL_MS + LEASE_TTL_MS / 3 + 2000, `the lease moved within ${failoverMs} ms`);

    await until('every job queued at the kill to complete', 4 * MINUTES, () =>
      queued.every((id) => mine().find((j) => j.id === id)?.status === 'completed'));
    for (const id of queued) {
      const job = mine().find((j) => j.id === id);
      assert.equal(job?.conclusion, 'success');
      assert.notEqual(hostOf(job?.runnerName), leader.id, 'run by a surviving host');
    }
  });
});
