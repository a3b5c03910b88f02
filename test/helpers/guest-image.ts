/**
 * Shared by the production-image tests: builds a root filesystem with the
 * stub runner (test/fixtures/stub-runner), starts the GitHub simulator on
 * every address of the test's namespace (the VM reaches it through its
 * gateway), and boots VMs of a runner definition through the real VM system.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRootfs } from '../../src/images/rootfs.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from '../../src/images/paths.ts';
import { demoConfig } from '../../src/config/demo.ts';
import type { FlintConfig, RunnerConfig } from '../../src/config/types.ts';
import type { VmSystem } from '../../src/entrypoints/vm-system.ts';
import type { GuestEnv, VmHandle } from '../../src/daemon/vm/supervisor.ts';
import type { Simulator } from '../../tools/github-sim/index.ts';

export const GUEST_GATEWAY = '10.231.0.1';
/** Warnings and errors reach the test output (as TAP comments); the rest is dropped. */
export const quietLogger = {
  debug() {},
  info() {},
  warn(obj: object, msg: string) { process.stderr.write(`# warn: ${msg} ${JSON.stringify(obj)}\n`); },
  error(obj: object, msg: string) { process.stderr.write(`# error: ${msg} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}\n`); },
  child() { return quietLogger; },
};
const progress = (m: string): void => { process.stderr.write(`# ${m}\n`); };

/** A root filesystem whose "Actions runner" is the stub, built from the cached debootstrap stage. */
export async function buildStubRunnerRootfs(work: string): Promise<string> {
  const stub = join(work, 'stub');
  mkdirSync(stub, { recursive: true });
  copyFileSync(join(packageRoot(), 'test', 'fixtures', 'stub-runner', 'run.sh'), join(stub, 'run.sh'));
  chmodSync(join(stub, 'run.sh'), 0o755);
  const tarball = join(work, 'stub-runner.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', stub, 'run.sh']);
  const sha = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  const result = await buildRootfs({ output: join(work, 'rootfs.ext4'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', runnerTarball: tarball, runnerSha256: sha, headroomMiB: 256, progress });
  return result.image;
}

/** A Flint configuration with one runner definition booting `kernel` (+ `initrd`) and `rootfs` on a bridge Flint creates. */
export function imageTestConfig(
  sim: Simulator, stateDir: string, image: { kernel: string; initrd?: string; rootfs: string; kernelArgs: string }, memoryMib: number, hostPorts: readonly number[] = [],
): FlintConfig {
  const config = demoConfig({
    apiUrl: sim.apiUrl.replace('0.0.0.0', '127.0.0.1'), appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: 'not-used-here',
    organization: sim.org, stateDir, kernel: image.kernel, ...(image.initrd === undefined ? {} : { initrd: image.initrd }), filesystem: image.rootfs,
    network: { name: 'br-flint-img', v4: `${GUEST_GATEWAY}/24`, create: true }, instanceId: 'img',
  });
  const runner = config.runners[0];
  assert.ok(runner);
  // Guests reach nothing on the host but the ports named here: the simulator's, and the test's own servers'.
  const ports = [Number(new URL(sim.apiUrl).port), ...hostPorts];
  return {
    ...config,
    networks: config.networks.map((n) => ({ ...n, hostPorts: ports })),
    runners: [{ ...runner, memorySize: memoryMib, cpuCount: 2, diskSize: 4 * 2 ** 30, kernelArgs: image.kernelArgs }],
  };
}

export interface BootResult {
  readonly console: string;
  readonly vm: VmHandle;
  readonly code: number | undefined;
  /** Milliseconds from the launch call to the console output that first contained `text`; undefined if it never came. */
  msUntil(text: string): number | undefined;
}

/** Boots one VM and waits for its end; returns its console and the runner's exit code. */
export async function bootAndWait(vms: VmSystem, runner: RunnerConfig, env: GuestEnv): Promise<BootResult> {
  let text = '';
  let code: number | undefined;
  // When each console chunk arrived, and where the console text ended after it.
  const arrivals: { at: number; end: number }[] = [];
  const launched = Date.now();
  const vm = await vms.supervisor.launch(runner, env, { bootTimeoutMs: 300_000, maxLifetimeMs: 600_000 });
  vm.onConsole((c) => { text += c.toString('utf8'); arrivals.push({ at: Date.now(), end: text.length }); });
  vm.onMarker((m) => { if (m.kind === 'runner-exited') code = m.code; });
  await vm.ended;
  const msUntil = (needle: string): number | undefined => {
    const i = text.indexOf(needle);
    if (i < 0) return undefined;
    const chunk = arrivals.find((a) => a.end >= i + needle.length);
    return chunk === undefined ? undefined : chunk.at - launched;
  };
  return { console: text, vm, code, msUntil };
}
