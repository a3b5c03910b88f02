/**
 * The end-to-end network topology: the test's own (private) namespace is
 * Flint's host — its bridge, taps and NAT are Flint's own doing — and a
 * second namespace plays "the internet", where the GitHub simulator listens.
 *
 *   guest ── tap ── bridge ─┐ host namespace (the test's)           internet namespace
 *                           └─ NAT ── up-N 198.18.N.1/30 ═══ veth ═══ inet-N 198.18.N.2/30 ── simulator :8080
 *
 * The host's default route points at the internet side, so a guest reaches
 * the simulator only through the bridge, the host's forwarding and Flint's
 * masquerade; the simulator delivers webhooks to Flint on 198.18.N.1. The
 * addresses come from 198.18.0.0/15 (RFC 2544, benchmarking) and exist only
 * in these two namespaces.
 *
 * The internet namespace is the simulator process's own (`unshare -n`): it
 * ends with that process, taking the veth pair with it, and the process
 * ends with its stdin — when the test closes the topology, and also when the
 * test process dies, whatever kills it. Nothing is named in /run/netns.
 *
 *   const net = await startTopology(t, { org: 'acme' });
 *   net.sim.queueJob(…);  net.hostAddress;  net.simUrl
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Scope } from './prereq.ts';
import { packageRoot } from '../../src/images/paths.ts';
import { inPrivateNetns, run } from './netns.ts';
import { remoteSimulator, type RemoteSimulator } from './remote-sim.ts';


/** The simulator's port in its own namespace: nothing else listens there. */
const SIM_PORT = 8080;
/** How long the simulator may take to start (tsx compiles it first; a loaded 2-core machine is slow). */
const START_TIMEOUT_MS = 60_000;

export interface Topology {
  /** The simulator, driven over its control API across the veth. */
  readonly sim: RemoteSimulator;
  /** Flint's address on the host side of the veth: where webhooks are delivered. */
  readonly hostAddress: string;
  /** The simulator's address in the internet namespace. */
  readonly internetAddress: string;
  /** The simulator's base URL, as Flint and the guests reach it. */
  readonly simUrl: string;
  /** The simulator process (its namespace is the internet). */
  readonly pid: number;
  /** Ends the simulator (and with it the internet namespace and the veth pair); idempotent. */
  close(): Promise<void>;
}


/** Topologies started by this process: each gets its own /30 and veth names. */
let started = 0;

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

export async function startTopology(t: Scope, opts: { readonly org: string }): Promise<Topology> {
  if (!(await inPrivateNetns())) {
    throw new Error('refusing to build a network topology in the host network namespace: run the test through scripts/test.mjs (as root it uses `unshare -n`)');
  }
  const n = started++ % 64;
  const hostAddress = `198.18.${n * 4}.1`;
  const internetAddress = `198.18.${n * 4}.2`;
  const up = `flint-up${n}`;
  const inet = `flint-inet${n}`;
  const simUrl = `http://${internetAddress}:${SIM_PORT}`;

  const child = spawn('unshare', ['-n', '--', process.execPath, '--import', 'tsx', 'test/helpers/internet-sim.ts',
    JSON.stringify({ port: SIM_PORT, org: opts.org, publicUrl: simUrl })], { cwd: packageRoot(), stdio: ['pipe', 'pipe', 'inherit'] });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= (async () => {
    child.stdin?.end();
    const gone = exited(child);
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(kill);
    // The veth went with the namespace; this only matters if the process never started.
    await run('ip', ['link', 'del', up]).catch(() => undefined);
  })());
  t.after(close);

  const info = await new Promise<{ appId: number; installationId: number; org: string; privateKeyPem: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the simulator did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`the simulator exited before it listened (${code ?? signal})`)); });
    if (child.stdout === null) throw new Error('spawned with a stdout pipe');
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      lines.close();
      child.stdout?.resume(); // anything it prints later is not read: keep the pipe drained
      try {
        resolve(JSON.parse(line) as { appId: number; installationId: number; org: string; privateKeyPem: string }); // internet-sim.ts's first line
      } catch (err) {
        reject(new Error(`the simulator printed ${JSON.stringify(line)}`, { cause: err }));
      }
    });
  });
  child.removeAllListeners('exit');
  child.removeAllListeners('error');
  const pid = child.pid;
  if (pid === undefined) throw new Error('the simulator has no pid');

  const inside = (...args: string[]): Promise<void> => run('nsenter', ['-t', String(pid), '-n', 'ip', ...args]);
  await run('ip', ['link', 'add', up, 'type', 'veth', 'peer', 'name', inet]);
  await run('ip', ['link', 'set', inet, 'netns', String(pid)]);
  await run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', up]);
  await run('ip', ['link', 'set', up, 'up']);
  await inside('link', 'set', 'lo', 'up');
  await inside('addr', 'add', `${internetAddress}/30`, 'dev', inet);
  await inside('link', 'set', inet, 'up');
  // The internet is everything the host does not know better: guests' traffic goes there, through NAT.
  await run('ip', ['route', 'replace', 'default', 'via', internetAddress, 'dev', up]);

  const sim = remoteSimulator({ apiUrl: simUrl, ...info });
  t.after(() => sim.close());
  return { sim, hostAddress, internetAddress, simUrl, pid, close: async () => { await sim.close(); await close(); } };
}
