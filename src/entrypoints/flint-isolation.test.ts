/**
 * Isolation proven from inside real guests, for both drivers (QEMU, and
 * Firecracker through the emulator in tools/firecracker-emu, which boots
 * with QEMU). Flint runs through its composition root in the end-to-end
 * topology (test/helpers/topology.ts): its bridge and NAT in the test's
 * namespace, the GitHub simulator and a probe target in "the internet".
 * Each guest's runner command is a busybox script of probes
 * (test/helpers/guest-probe.ts) that prints one console line per result,
 * then runs the job's fake runner, so the job completes as any other.
 * What a guest cannot see — whether its forged packets arrived — is
 * recorded by the target on the receiving side.
 *
 * Host ports, the metadata address and egress allow-lists are the network
 * policy's (src/adapters/network/nft-rules.ts, docs/networking.md).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { RunnerConfig } from '../config/types.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { startFlint, type RunningFlint } from './flint.ts';
import { e2eSetup, until, type E2eSetup } from '../../test/helpers/e2e-flint.ts';
import {
  barrier, GUEST_PORT, listen, METADATA_ADDRESS, ping, probeResults, probeScript, startProbeTarget, tcp, TARGET_PORTS, topologyOctet, udp,
  udpFromForgedMac, udpFromForgedSource, viaGateway, type Probe, type ProbeResult, type ProbeTarget,
} from '../../test/helpers/guest-probe.ts';
import { EMULATED_FIRECRACKER, EMULATED_JAILER } from '../../test/vm/real-system.ts';

const MINUTES = 60_000;
const LABELS = ['self-hosted', 'linux'];

/** Flint's own ports on its host address, fixed so that the guests' script can name them before Flint starts. */
const WEBHOOK_PORT = 18080;
const STATUS_PORT = 18081;
/** Listeners of the test on the host: one on every address, one on an address of its own. */
const HOST_ANY_PORT = 18082;
const HOST_EXTRA_PORT = 18083;

const DRIVERS = [
  { driver: 'qemu', runner: {} },
  { driver: 'firecracker', runner: { hypervisor: 'firecracker', jailer: EMULATED_JAILER, firecracker: EMULATED_FIRECRACKER } },
] as const satisfies ReadonlyArray<{ driver: string; runner: Partial<RunnerConfig> }>;

interface HostListeners {
  /** The extra host address (on loopback in the test's namespace). */
  readonly extra: string;
  /** Remote addresses of every connection the listeners accepted. */
  readonly accepted: string[];
}

/** The test's listeners on the host namespace; removed after the test. */
async function hostListeners(t: TestContext, octet: number): Promise<HostListeners> {
  const extra = `198.19.${octet}.1`;
  // On loopback: a host address that is on no interface the guests are attached to.
  execFileSync('ip', ['addr', 'add', `${extra}/32`, 'dev', 'lo']);
  t.after(() => { try { execFileSync('ip', ['addr', 'del', `${extra}/32`, 'dev', 'lo']); } catch { /* already gone */ } });
  const accepted: string[] = [];
  const servers: Server[] = [];
  // A connection whose guest powered off mid-way is never closed by its peer: closing the servers ends every socket.
  const sockets = new Set<Socket>();
  for (const [host, port] of [['0.0.0.0', HOST_ANY_PORT], [extra, HOST_EXTRA_PORT]] as const) {
    const server = createServer((sock) => {
      accepted.push(sock.remoteAddress ?? '');
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      sock.end('flint-host-listener\n');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
  }
  t.after(async () => {
    for (const sock of sockets) sock.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => { s.close(r); })));
  });
  return { extra, accepted };
}

interface Run {
  readonly setup: E2eSetup;
  readonly flint: RunningFlint;
  readonly target: ProbeTarget;
  readonly host: HostListeners;
  /** The guests' gateway (the bridge's address). */
  readonly gateway: string;
  logText(): string;
  /** The console log of the VM that ran `jobId` (once the job completed). */
  consoleOf(jobId: number): string;
}

interface RunOptions {
  readonly driver: (typeof DRIVERS)[number];
  /** [a-z0-9]{1,4}: instance id, bridge and dummy link names. */
  readonly tag: string;
  /** Third octet of the bridge's 10.218.X.0/24. */
  readonly subnet: number;
  readonly runner?: Partial<Omit<RunnerConfig, 'name' | 'network'>>;
  readonly probes: (ctx: { readonly target: ProbeTarget; readonly hostAddress: string; readonly extra: string; readonly gateway: string }) => Probe[];
}

/** Flint, the probe target and the host listeners; the guests of `runner` run the probes. Everything is removed after the test. */
async function isolationFlint(t: TestContext, opts: RunOptions): Promise<Run | undefined> {
  const gateway = `10.218.${opts.subnet}.1`;
  const instanceId = `iso${opts.tag}`;
  const setup = await e2eSetup(t, {
    org: `flint-${instanceId}`, instanceId, bridge: `br-flint-${opts.tag}`, gateway, runner: { ...opts.driver.runner, maxRunners: 2, ...opts.runner },
  });
  if (setup === undefined) return undefined;
  const { topology, sim } = setup;
  const target = await startProbeTarget(t, topology);
  const host = await hostListeners(t, topologyOctet(topology));
  const probes = opts.probes({ target, hostAddress: topology.hostAddress, extra: host.extra, gateway });
  const guestExtras = { ...setup.guestExtras, FLINT_RUNNER_COMMAND: probeScript(probes, setup.guestExtras.FLINT_RUNNER_COMMAND ?? 'exit 1') };
  const config = {
    ...setup.config,
    address: `${topology.hostAddress}:${WEBHOOK_PORT}`,
    status: { address: `${topology.hostAddress}:${STATUS_PORT}`, token: `${instanceId}-status-token` },
  };
  let logText = '';
  const logSink = new Writable({ write(chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb(); } });
  const logger = createLogger({ level: 'info', destination: logSink, secrets: new Set([setup.secret]) });
  const flint = await startFlint({ tickMs: 300, reconcileMs: 2000, config, logger, guestExtras });
  setup.closeFirst(() => flint.close());
  sim.setWebhook({ url: `${flint.url}/webhook`, secret: setup.secret });
  return {
    setup, flint, target, host, gateway, logText: () => logText,
    consoleOf(jobId) {
      const runnerName = sim.jobs().find((j) => j.id === jobId)?.runnerName ?? '';
      assert.match(runnerName, /^flint-/, `job ${jobId} ran on a runner of Flint`);
      const vmId = runnerName.slice('flint-'.length);
      const launch = logText.split('\n').find((l) => l.includes('"vm launching"') && l.includes(`"vmId":"${vmId}"`));
      assert.match(launch ?? '', new RegExp(`"hypervisor":"${opts.driver.driver}"`), `${vmId} ran on the ${opts.driver.driver} driver`);
      return readFileSync(flint.supervisor.consoleLogPath(vmId), 'latin1');
    },
  };
}

async function jobsComplete(run: Run, jobIds: readonly number[]): Promise<void> {
  const done = (): boolean => jobIds.every((id) => run.setup.sim.jobs().find((j) => j.id === id)?.status === 'completed');
  try {
    await until(`jobs ${jobIds.join(', ')} to complete`, 8 * MINUTES, done);
  } catch (err) {
    throw new Error(`${String(err)}\nFlint's log:\n${run.logText().slice(-4000)}`, { cause: err });
  }
  for (const id of jobIds) assert.equal(run.setup.sim.jobs().find((j) => j.id === id)?.conclusion, 'success', `job ${id} succeeded`);
}

function resultOf(results: Map<string, ProbeResult>, name: string, log: string): ProbeResult {
  const r = results.get(name);
  assert.ok(r !== undefined, `the guest reported probe ${name}; console:\n${log.slice(-6000)}`);
  return r;
}

/** Connects from the test's (host) namespace and returns the first bytes answered ('' when none within 5 s). */
function answerFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const sock = connect({ host, port });
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('data', (d: Buffer) => { got += d.toString(); });
    sock.on('error', () => undefined);
    sock.on('close', () => { clearTimeout(timer); resolve(got); });
  });
}

const FORGED_MAC = '02:00:00:00:fa:ce';
const FORGED_OUTSIDE = '203.0.113.9';

for (const [i, d] of DRIVERS.entries()) {
  test(`${d.driver}: one guest reaches the simulator through NAT and nothing of the host; its forged source addresses and MAC are dropped`, { timeout: 12 * MINUTES }, async (t) => {
    const run = await isolationFlint(t, {
      driver: d, tag: `l${i}`, subnet: 10 + i,
      probes: ({ target, hostAddress, extra, gateway }) => [
        tcp('nat-simulator', target.internet, 8080),
        udp('nat-legit', target.internet),
        udp('elsewhere', target.elsewhere),
        tcp('host-webhook', hostAddress, WEBHOOK_PORT),
        tcp('host-status', hostAddress, STATUS_PORT),
        tcp('host-any-on-gateway', '$gw', HOST_ANY_PORT),
        tcp('host-any-on-uplink', hostAddress, HOST_ANY_PORT),
        tcp('host-extra-address', extra, HOST_EXTRA_PORT),
        tcp('metadata-tcp', METADATA_ADDRESS, TARGET_PORTS.metadata),
        udp('metadata-udp', METADATA_ADDRESS),
        udpFromForgedSource('forged-source-subnet', target.internet, gateway.replace(/\.1$/, '.250')),
        udpFromForgedSource('forged-source-outside', target.internet, FORGED_OUTSIDE),
        udpFromForgedMac('forged-mac', target.internet, FORGED_MAC),
        udp('after-forgery', target.internet),
      ],
    });
    if (run === undefined) return;
    const { jobId } = await run.setup.sim.queueJob({ repo: 'app', labels: LABELS, name: 'probes the network' });
    await jobsComplete(run, [jobId]);
    const log = run.consoleOf(jobId);
    const results = probeResults(log);
    const seen = await run.target.seen();
    const tokens = (name: string) => seen.udp.filter((u) => u.text.includes(name));
    const { hostAddress } = run.setup.topology;
    t.diagnostic([...results.values()].map((r) => `${r.name}: ${r.result} ${r.detail}`).join('\n'));

    await t.test('reaches the simulator through NAT: the internet sees the host\'s address, never the guest\'s', () => {
      assert.equal(resultOf(results, 'nat-simulator', log).result, 'reached');
      const legit = tokens('nat-legit');
      assert.ok(legit.length > 0, `the target received the guest's datagram: ${JSON.stringify(seen.udp)}`);
      assert.deepEqual([...new Set(legit.map((u) => u.from))], [hostAddress], 'masqueraded to the host\'s uplink address');
      assert.ok(tokens('elsewhere').length > 0, 'without an allow-list, another internet address is reached too');
    });

    await t.test('packets with a forged source address or MAC are dropped: the internet never sees them', () => {
      const subnetSource = run.gateway.replace(/\.1$/, '.250');
      assert.match(resultOf(results, 'forged-source-subnet', log).detail, new RegExp(`from=${subnetSource.replaceAll('.', '\\.')}$`), 'the guest sent from the forged address');
      assert.match(resultOf(results, 'forged-source-outside', log).detail, new RegExp(`from=${FORGED_OUTSIDE.replaceAll('.', '\\.')}$`), 'the guest sent from the forged address');
      assert.equal(resultOf(results, 'forged-mac', log).result, 'sent', 'the guest sent with the forged MAC');
      // By probe, the source addresses it arrived from: none arrived.
      const forged = ['forged-source-subnet', 'forged-source-outside', 'forged-mac'];
      assert.deepEqual(Object.fromEntries(forged.map((n) => [n, tokens(n).map((u) => u.from)])), Object.fromEntries(forged.map((n) => [n, []])));
      assert.ok(tokens('after-forgery').length > 0, 'the same guest, with its own address and MAC again, is heard: the target was listening');
    });

    await t.test('cannot reach any port of the host: Flint\'s webhook and status ports, listeners on every address and on another host address', () => {
      for (const name of ['host-webhook', 'host-status', 'host-any-on-gateway', 'host-any-on-uplink', 'host-extra-address']) {
        assert.equal(resultOf(results, name, log).result, 'blocked', `${name}: ${resultOf(results, name, log).detail}`);
      }
      assert.deepEqual(run.host.accepted.filter((a) => a.startsWith(run.gateway.replace(/\.1$/, '.'))), [], 'no connection from the guest reached the host\'s listeners');
    });

    await t.test(`cannot reach ${METADATA_ADDRESS}`, () => {
      assert.equal(resultOf(results, 'metadata-tcp', log).result, 'blocked');
      assert.deepEqual(seen.tcp.filter((c) => c.to === METADATA_ADDRESS), [], 'no connection arrived at the metadata address');
      assert.deepEqual(tokens('metadata-udp'), [], 'no datagram arrived at the metadata address');
    });
  });

  test(`${d.driver}: two guests on one bridge at once cannot reach each other, on the bridge or through the gateway`, { timeout: 12 * MINUTES }, async (t) => {
    const run = await isolationFlint(t, {
      driver: d, tag: `p${i}`, subnet: 20 + i,
      probes: ({ target }) => [
        listen(GUEST_PORT),
        tcp('self', '$me', GUEST_PORT),
        barrier(target, 'up', 2),
        ping('peer-ping', '$peer'),
        tcp('peer-tcp', '$peer', GUEST_PORT),
        viaGateway('$peer'),
        ping('peer-ping-via-gateway', '$peer'),
        tcp('peer-tcp-via-gateway', '$peer', GUEST_PORT),
        // Both stay up until both probed and the test checked their listeners.
        barrier(target, 'done', 3),
      ],
    });
    if (run === undefined) return;
    const jobs = await Promise.all([1, 2].map((n) => run.setup.sim.queueJob({ repo: 'app', labels: LABELS, name: `guest ${n}` })));
    await until('both guests at the barrier', 8 * MINUTES, async () => ((await run.target.seen()).barriers.up?.length ?? 0) >= 2);
    const guests = (await run.target.seen()).barriers.up ?? [];
    // The peers' listeners answer whoever may reach them: the host does.
    const answers = await Promise.all(guests.map((g) => answerFrom(g, GUEST_PORT)));
    await run.target.barrier('done', 'test', 3);
    await jobsComplete(run, jobs.map((j) => j.jobId));

    // A guest replaced mid-way (a VM that failed to boot in time) would leave a dead peer at the barrier: then nothing here is proven.
    assert.deepEqual((await run.target.seen()).barriers.up, guests, 'no other guest came to the barrier later');
    const logs = jobs.map((j) => run.consoleOf(j.jobId));
    for (const log of logs) t.diagnostic([...probeResults(log).values()].map((r) => `${r.name}: ${r.result} ${r.detail}`).join('\n'));
    assert.equal(new Set(guests).size, 2, `two guests with distinct addresses: ${guests.join(' ')}`);
    assert.deepEqual(answers.map((a) => a.trim()), ['flint-guest-listener', 'flint-guest-listener'], 'both listeners answered the host while the guests probed');
    for (const log of logs) {
      const results = probeResults(log);
      assert.equal(resultOf(results, 'self', log).result, 'reached', 'the guest\'s own listener answers');
      assert.equal(resultOf(results, 'barrier-up', log).result, 'reached');
      const peer = /peers=(\S+)/.exec(resultOf(results, 'barrier-up', log).detail)?.[1];
      assert.ok(peer !== undefined && guests.includes(peer), `the peer is the other guest: ${peer ?? ''}`);
      for (const name of ['peer-ping', 'peer-tcp', 'peer-ping-via-gateway', 'peer-tcp-via-gateway']) {
        assert.equal(resultOf(results, name, log).result, 'blocked', `${name}: ${resultOf(results, name, log).detail}`);
      }
      assert.equal(resultOf(results, 'barrier-done', log).result, 'reached', 'the other guest was still up when this one probed it');
    }
  });

  test(`${d.driver}: with an egress allow-list a guest reaches only what is listed`, { timeout: 12 * MINUTES }, async (t) => {
    // The per-definition allow-list of the network policy. It lists the simulator's
    // address, known once the topology is up: filled in below, before Flint starts.
    const allowList = { egress: { cidrs: [] as string[], hosts: [] as string[] } };
    const run = await isolationFlint(t, {
      driver: d, tag: `a${i}`, subnet: 30 + i, runner: { maxRunners: 1, ...allowList },
      probes: ({ target }) => {
        allowList.egress.cidrs.push(`${target.internet}/32`);
        return [
          tcp('listed-simulator', target.internet, 8080),
          udp('listed', target.internet),
          udp('unlisted', target.elsewhere),
          tcp('unlisted-tcp', target.elsewhere, TARGET_PORTS.tcp),
        ];
      },
    });
    if (run === undefined) return;
    const { jobId } = await run.setup.sim.queueJob({ repo: 'app', labels: LABELS, name: 'behind an allow-list' });
    await jobsComplete(run, [jobId]);
    const log = run.consoleOf(jobId);
    const results = probeResults(log);
    const seen = await run.target.seen();
    t.diagnostic([...results.values()].map((r) => `${r.name}: ${r.result} ${r.detail}`).join('\n'));

    await t.test('reaches what is listed', () => {
      assert.equal(resultOf(results, 'listed-simulator', log).result, 'reached');
      assert.ok(seen.udp.some((u) => u.text.includes('listed') && !u.text.includes('unlisted')), 'the listed address heard the guest');
    });
    await t.test('reaches nothing else', () => {
      assert.equal(resultOf(results, 'unlisted-tcp', log).result, 'blocked');
      assert.deepEqual(seen.udp.filter((u) => u.text.includes('unlisted')), [], 'the unlisted address never heard the guest');
    });
  });
}
