/**
 * The production guest image, end to end (slow: builds a kernel and a
 * Debian root filesystem, boots systemd under QEMU). `npm run test:slow`.
 *
 *  - a debootstrapped image with a stub runner takes a queued job from the
 *    GitHub simulator through the JIT config it was given, and the VM powers off;
 *  - Flint's kernel runs Docker in the guest: a container from an image
 *    archive served on the VM's network.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel } from './kernel.ts';
import { buildRootfs } from './rootfs.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from './paths.ts';
import { demoConfig } from '../config/demo.ts';
import { buildVmSystem, type VmSystem } from '../entrypoints/vm-system.ts';
import { createGitHubClient } from '../adapters/github/client.ts';
import { startSimulator, type Simulator } from '../../tools/github-sim/index.ts';
import { file, program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import type { VmHandle } from '../daemon/vm/supervisor.ts';

const GATEWAY = '10.231.0.1';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let work: string;
let kernel: string;
let rootfs: string;
let sim: Simulator;
let ready = false;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'flint-image-test-'));
  if (process.getuid?.() !== 0) return;
  const stub = join(work, 'stub');
  mkdirSync(stub);
  copyFileSync(join(packageRoot(), 'test', 'fixtures', 'stub-runner', 'run.sh'), join(stub, 'run.sh'));
  chmodSync(join(stub, 'run.sh'), 0o755);
  const tarball = join(work, 'stub-runner.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', stub, 'run.sh']);
  const sha = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  const progress = (m: string): void => { process.stderr.write(`# ${m}\n`); };
  kernel = (await buildKernel({ configFile: join(packageRoot(), 'images', 'kernel', 'microvm-x86_64.config'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', progress })).bootImage;
  rootfs = (await buildRootfs({ output: join(work, 'rootfs.ext4'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64', runnerTarball: tarball, runnerSha256: sha, headroomMiB: 256, progress })).image;
  sim = await startSimulator({ host: '0.0.0.0', org: 'flint-test' });
  ready = true;
});

after(async () => {
  await sim?.close();
  rmSync(work, { recursive: true, force: true });
});

function system(stateDir: string, memoryMib: number): { config: ReturnType<typeof demoConfig> } {
  const config = demoConfig({
    apiUrl: sim.apiUrl.replace('0.0.0.0', '127.0.0.1'), appId: sim.appId, privateKey: sim.privateKeyPem, webhookSecret: 'unused-here',
    organization: 'flint-test', stateDir, kernel, filesystem: rootfs, network: { name: 'br-flint-img', v4: `${GATEWAY}/24`, create: true },
    instanceId: 'img',
  });
  const runner = config.runners[0];
  assert.ok(runner);
  return { config: { ...config, runners: [{ ...runner, memorySize: memoryMib, cpuCount: 2, diskSize: 4 << 30, kernelArgs: 'root=/dev/vda ro init=/sbin/flint-init' }] } };
}

async function bootAndWait(vms: VmSystem, runner: ReturnType<typeof demoConfig>['runners'][number], env: Record<string, string>): Promise<{ console: string; vm: VmHandle; code: number | undefined }> {
  let consoleText = '';
  let code: number | undefined;
  const vm = await vms.supervisor.launch(runner, env, { bootTimeoutMs: 300_000, maxLifetimeMs: 600_000 });
  vm.onConsole((c) => { consoleText += c.toString('utf8'); });
  vm.onMarker((m) => { if (m.kind === 'runner-exited') code = m.code; });
  await vm.ended;
  return { console: consoleText, vm, code };
}

test('a debootstrapped image with a stub runner takes a queued job from the simulator, finishes it and powers off', { timeout: 900_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('debootstrap', 'debootstrap'), program('qemu-system-x86_64', 'qemu-system-x86'), file('/usr/src/linux-source-6.1.tar.xz', 'apt-get install linux-source-6.1'))) return;
  assert.ok(ready);
  const stateDir = join(work, 'state-runner');
  const { config } = system(stateDir, 1024);
  const vms = await buildVmSystem(config, quiet);
  t.after(async () => { await vms.supervisor.shutdown(); vms.close(); });
  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'] });
  const github = createGitHubClient({ github: config.github });
  const runner = config.runners[0];
  assert.ok(runner);
  const port = new URL(sim.apiUrl).port;
  const env = async (vmId: string) => {
    const jit = await github.createJitRunner({ scope: { kind: 'organization' }, name: `flint-${vmId}`, runnerGroupId: 1, labels: ['linux'] });
    return { FLINT_JITCONFIG: jit.encodedJitConfig, FLINT_RUNNER_NAME: jit.runnerName, FLINT_GITHUB_URL: `http://${GATEWAY}:${port}`, FLINT_JOB_TIMEOUT: '300' };
  };
  const result = await bootAndWait(vms, runner, env as never);
  assert.match(result.console, /FLINT-MARKER booted/);
  assert.equal(result.code, 0, `runner exit code; console:\n${result.console.slice(-3000)}`);
  const job = sim.jobs().find((j) => j.id === jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.conclusion, 'success');
  assert.equal((await result.vm.ended).record.state, 'stopped');
});

/** A `docker save` archive of a one-layer image holding busybox, made without Docker. */
function busyboxImageArchive(dir: string): string {
  const layerDir = join(dir, 'layer');
  mkdirSync(join(layerDir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(layerDir, 'bin', 'busybox'));
  symlinkSync('busybox', join(layerDir, 'bin', 'sh'));
  symlinkSync('busybox', join(layerDir, 'bin', 'echo'));
  const image = join(dir, 'image');
  mkdirSync(join(image, 'l1'), { recursive: true });
  execFileSync('tar', ['-cf', join(image, 'l1', 'layer.tar'), '-C', layerDir, '.']);
  const diffId = createHash('sha256').update(readFileSync(join(image, 'l1', 'layer.tar'))).digest('hex');
  const configJson = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] } });
  const configName = `${createHash('sha256').update(configJson).digest('hex')}.json`;
  writeFileSync(join(image, configName), configJson);
  writeFileSync(join(image, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['flint-test/busybox:1'], Layers: ['l1/layer.tar'] }]));
  const archive = join(dir, 'busybox-image.tar');
  execFileSync('tar', ['-cf', archive, '-C', image, '.']);
  return archive;
}

test("Flint's kernel runs Docker in the guest: a container from a local image archive, on Docker's bridge network", { timeout: 900_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('debootstrap', 'debootstrap'), program('qemu-system-x86_64', 'qemu-system-x86'), file('/usr/src/linux-source-6.1.tar.xz', 'apt-get install linux-source-6.1'))) return;
  assert.ok(ready);
  const archive = busyboxImageArchive(work);
  const server: Server = createServer((_req, res) => { res.writeHead(200); res.end(readFileSync(archive)); });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  const { config } = system(join(work, 'state-docker'), 2048);
  const vms = await buildVmSystem(config, quiet);
  t.after(async () => { await vms.supervisor.shutdown(); vms.close(); });
  const runner = config.runners[0];
  assert.ok(runner);
  const command = [
    'for i in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 1; done',
    `curl -fsS -o /tmp/image.tar http://${GATEWAY}:${address.port}/image.tar`,
    'docker load -i /tmp/image.tar',
    "docker run --rm flint-test/busybox:1 sh -c 'echo container-says-$((6*7))'",
  ].join(' && ');
  const result = await bootAndWait(vms, runner, { FLINT_RUNNER_COMMAND: command, FLINT_JOB_TIMEOUT: '600' });
  assert.match(result.console, /container-says-42/, `console:\n${result.console.slice(-4000)}`);
  assert.equal(result.code, 0);
});
