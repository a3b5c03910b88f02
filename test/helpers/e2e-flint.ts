/**
 * A whole Flint for end-to-end tests: the GitHub simulator, Flint through
 * its composition root (`startFlint`, as `flint serve` does) on the embedded
 * demo configuration, QEMU guests from the test image whose runner command
 * is the simulator's fake runner. The test runner's private network
 * namespace is Flint's host; the simulator runs in a second namespace, "the
 * internet", that guests reach through the bridge and Flint's NAT
 * (test/helpers/topology.ts). Everything is closed and removed after the test.
 *
 *   const e2e = await startE2eFlint(t, { org: 'flint-e2e', instanceId: 'e2e', bridge: 'br-flint-e2e', gateway: '10.214.0.1' });
 *   if (e2e === undefined) return;   // prerequisites missing (skipped, or failed under CI)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { demoConfig } from '../../src/config/demo.ts';
import type { FlintConfig, RunnerConfig, StatusPageConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/adapters/log/logger.ts';
import { packageRoot } from '../../src/images/paths.ts';
import { startFlint } from '../../src/entrypoints/flint.ts';
import { guardTableName, nftTableName } from '../../src/adapters/network/nft-rules.ts';
import type { FlintOptions, RunningFlint } from '../../src/entrypoints/flint.ts';
import { fakeRunnerCommand } from '../../src/entrypoints/commands/demo.ts';
import { program, requirePrereqs, root } from './prereq.ts';
import type { Scope } from './prereq.ts';
import { ensureTestImage } from './test-image.ts';
import type { RemoteSimulator } from './remote-sim.ts';
import { startTopology, type Topology } from './topology.ts';

export interface E2eOptions {
  /** The simulator's organisation. */
  readonly org: string;
  readonly instanceId: string;
  /** The bridge Flint creates (≤ 15 characters). */
  readonly bridge: string;
  /** The bridge's address: the guests' gateway, a /24 of its own per test file. */
  readonly gateway: string;
  /** How long the fake runner "runs" each job, seconds (default: the demo's). */
  readonly jobSeconds?: number;
  /** More options of startFlint (tick and loop intervals are short by default). */
  readonly flint?: Partial<Omit<FlintOptions, 'config' | 'logger' | 'guestExtras'>>;
  /**
   * Changes to the demo's runner definition `demo` (labels self-hosted,
   * linux, x64, flint-demo): a warm pool (`minIdle`), `static: true`, another
   * `kernel`, `unhealthyAfter`…
   */
  readonly runner?: Partial<Omit<RunnerConfig, 'name' | 'network'>>;
  /** The status page; its address may name the topology's host address as HOST (e.g. "HOST:0"). */
  readonly status?: StatusPageConfig;
}

export interface E2e {
  /** The simulator, in the internet namespace, driven over its control API. */
  readonly sim: RemoteSimulator;
  /** The namespaces and addresses the test runs in. */
  readonly topology: Topology;
  readonly flint: RunningFlint;
  readonly config: FlintConfig;
  /** The webhook secret (a test checks it never reaches a log line). */
  readonly secret: string;
  /** Flint's log so far (JSON lines). */
  logText(): string;
}

/** Waits (polling the wall clock: real VMs boot on their own time) until `check` holds. */
export async function until(what: string, deadlineMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The simulator and the configuration a Flint of the test runs on (in this process or a child). */
export interface E2eSetup {
  readonly sim: RemoteSimulator;
  readonly topology: Topology;
  readonly config: FlintConfig;
  readonly secret: string;
  readonly guestExtras: Readonly<Record<string, string>>;
  /** Registers a closer run after the test, before the topology and the files go (a Flint, in this process or a child). */
  closeFirst(close: () => unknown): void;
}

/** The topology with its simulator and Flint's configuration, state under a temporary directory; all removed after the test. */
export async function e2eSetup(t: Scope, opts: Omit<E2eOptions, 'flint'>): Promise<E2eSetup | undefined> {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('ip'), program('nft'), program('unshare'), program('nsenter'))) return undefined;
  const image = await ensureTestImage();
  const work = mkdtempSync(join(tmpdir(), `flint-${opts.instanceId}-`));
  // QEMU runs as the runner's uid (123 by default): it must pass through to the VMs' work dirs.
  chmodSync(work, 0o711);
  mkdirSync(join(work, 'state'), { mode: 0o711 });
  // One closer, in order: Flints (they still talk to GitHub while they stop; last registered first), then the internet, then the files.
  const closers: Array<() => unknown> = [];
  const opened: { topology?: Topology } = {};
  t.after(async () => {
    try {
      for (const close of closers.reverse()) await close();
      await opened.topology?.close();
    } finally {
      // Flint keeps its bridge and rules when it stops (VMs may outlive it): the test removes them,
      // so no later test in this namespace meets a stale route to its subnet.
      for (const [family, table] of [['inet', nftTableName(opts.instanceId, opts.bridge)], ['bridge', guardTableName(opts.instanceId, opts.bridge)]] as const) {
        try { execFileSync('nft', ['delete', 'table', family, table], { stdio: 'ignore' }); } catch { /* never made */ }
      }
      try { execFileSync('ip', ['link', 'del', opts.bridge], { stdio: 'ignore' }); } catch { /* never made */ }
      rmSync(work, { recursive: true, force: true });
    }
  });
  const topology = await startTopology(t, { org: opts.org });
  opened.topology = topology;
  const { sim } = topology;
  const secret = `${opts.instanceId}-webhook-secret`;
  const base = demoConfig({
    apiUrl: topology.simUrl, appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: secret,
    organization: opts.org, stateDir: join(work, 'state'), kernel: image.kernel, initrd: image.initrd, filesystem: image.rootfs,
    // Flint listens on its side of the veth: the simulator delivers webhooks from the internet.
    address: `${topology.hostAddress}:0`, network: { name: opts.bridge, v4: `${opts.gateway}/24`, create: true }, instanceId: opts.instanceId, maxRunners: 2,
  });
  // The guests' console settings come from the image; the demo's own would repeat them.
  const kernelArgs = image.kernelArgs.split(/\s+/).filter((a) => !/^(console|reboot|panic)=/.test(a)).join(' ');
  const status = opts.status === undefined ? {} : { status: { ...opts.status, address: opts.status.address.replace(/^HOST:/, `${topology.hostAddress}:`) } };
  const config = { ...base, ...status, runners: base.runners.map((r) => ({ ...r, kernelArgs, ...opts.runner })) };
  let runnerCommand = fakeRunnerCommand(packageRoot());
  if (opts.jobSeconds !== undefined) {
    const changed = runnerCommand.replace(/ 120 success \d+$/, ` 120 success ${opts.jobSeconds}`);
    if (changed === runnerCommand) throw new Error('the fake runner command changed form: cannot set its job length');
    runnerCommand = changed;
  }
  // Guests reach the simulator as they would GitHub: by its internet address, through the bridge and NAT.
  const guestExtras = { FLINT_RUNNER_COMMAND: runnerCommand, FLINT_GITHUB_URL: topology.simUrl };
  return { sim, topology, config, secret, guestExtras, closeFirst: (close) => { closers.push(close); } };
}

export async function startE2eFlint(t: TestContext, opts: E2eOptions): Promise<E2e | undefined> {
  const setup = await e2eSetup(t, opts);
  if (setup === undefined) return undefined;
  const { sim, topology, config, secret, guestExtras } = setup;
  let logText = '';
  const logSink = new Writable({ write(chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb(); } });
  const logger = createLogger({ level: 'info', destination: logSink, secrets: new Set([secret]) });
  const flint = await startFlint({ tickMs: 300, reconcileMs: 2000, ...opts.flint, config, logger, guestExtras });
  // close() is idempotent: a test that closed (or drained) Flint itself is not closed twice.
  setup.closeFirst(() => flint.close());
  sim.setWebhook({ url: `${flint.url}/webhook`, secret });
  return { sim, topology, flint, config, secret, logText: () => logText };
}
