/**
 * Flint's own kernel (slow: compiled from linux-source the first time, then
 * cached) with the production root filesystem: systemd boots without an
 * initramfs, Docker starts in the guest — it needs the netfilter, bridge,
 * veth, overlay and cgroup support of Flint's kernel configuration — and
 * runs a container from an image archive served on the VM's network.
 * `npm run test:slow`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel } from './kernel.ts';
import { DEFAULT_CACHE_DIR, packageRoot } from './paths.ts';
import { buildVmSystem } from '../entrypoints/vm-system.ts';
import { startSimulator, type Simulator } from '../../tools/github-sim/index.ts';
import { declaredFor, program, requirePrereqs, root } from '../../test/helpers/prereq.ts';
import { bootAndWait, buildStubRunnerRootfs, GUEST_GATEWAY, imageTestConfig, quietLogger } from '../../test/helpers/guest-image.ts';

let work: string;
let sim: Simulator | undefined;

// 0711: the VMM runs as the definition's uid and opens its files below here by path.
before(() => { work = mkdtempSync(join(tmpdir(), 'flint-kernel-test-')); chmodSync(work, 0o711); });
after(async () => {
  await sim?.close();
  rmSync(work, { recursive: true, force: true });
});

/** A `docker save` archive of a one-layer image holding busybox, made without Docker. */
function busyboxImageArchive(dir: string): string {
  const layerDir = join(dir, 'layer');
  mkdirSync(join(layerDir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(layerDir, 'bin', 'busybox'));
  symlinkSync('busybox', join(layerDir, 'bin', 'sh'));
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

test("Flint's kernel boots the production image without an initramfs and runs Docker: a container from a local image archive on Docker's bridge network", { timeout: 1_800_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('debootstrap'), program('qemu-system-x86_64'), ...declaredFor('kernel-source'))) return;
  const kernel = await buildKernel({ configFile: join(packageRoot(), 'images', 'kernel', 'microvm-x86_64.config'), cacheDir: DEFAULT_CACHE_DIR, arch: 'x86_64' });
  const rootfs = await buildStubRunnerRootfs(work);
  sim = await startSimulator({ host: '0.0.0.0', org: 'flint-test' });
  const archive = busyboxImageArchive(work);
  const server: Server = createServer((_req, res) => { res.writeHead(200); res.end(readFileSync(archive)); });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  const config = imageTestConfig(sim, join(work, 'state'), { kernel: kernel.bootImage, rootfs, kernelArgs: 'root=/dev/vda ro init=/sbin/flint-init' }, 2048, [address.port]);
  const vms = await buildVmSystem(config, quietLogger);
  t.after(async () => { await vms.supervisor.shutdown(); vms.close(); });
  const runner = config.runners[0];
  assert.ok(runner);
  const command = [
    // No waiting here: the agent starts the runner only once Docker's start has finished.
    'docker info >/dev/null',
    // Docker's overlay2 storage on the scratch disk (ext4), not a vfs fallback on the overlay root.
    "echo \"docker-ready storage=$(docker info --format '{{.Driver}}') on=$(findmnt -n -o FSTYPE --target /var/lib/docker)\"",
    `curl -fsS -o /tmp/image.tar http://${GUEST_GATEWAY}:${address.port}/image.tar`,
    'docker load -i /tmp/image.tar',
    // Docker's own kernel check, read from /proc/config.gz (CONFIG_IKCONFIG_PROC), and any unit that failed at boot.
    '(bash /usr/share/docker.io/contrib/check-config.sh 2>&1 | sed "s/^/check-config: /"; systemctl --failed --no-legend --no-pager | sed "s/^/failed-unit: /"; true)',
    "docker run --rm flint-test/busybox:1 sh -c 'echo container-says-$((6*7))'",
  ].join(' && ');
  const started = Date.now();
  const result = await bootAndWait(vms, runner, { FLINT_RUNNER_COMMAND: command, FLINT_JOB_TIMEOUT: '900' });
  process.stderr.write(`# docker test VM lived ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  t.diagnostic(`launch → booted ${result.msUntil('FLINT-MARKER booted') ?? '-'} ms, → Docker ready ${result.msUntil('docker-ready') ?? '-'} ms, → container output ${result.msUntil('container-says-42') ?? '-'} ms (TCG)`);
  assert.match(result.console, /docker-ready storage=overlay2 on=ext4/, `console tail:\n${result.console.slice(-4000)}`);
  assert.match(result.console, /container-says-42/, `console tail:\n${result.console.slice(-4000)}`);
  // eslint-disable-next-line no-control-regex -- check-config colours its words with ANSI escapes
  const checks = result.console.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => l.includes('check-config: ')).map((l) => l.slice(l.indexOf('check-config: ') + 14));
  const necessary = checks.slice(checks.findIndex((l) => l.startsWith('Generally Necessary')), checks.findIndex((l) => l.startsWith('Optional Features')));
  assert.ok(necessary.length > 10, `check-config ran:\n${checks.join('\n')}`);
  assert.deepEqual(necessary.filter((l) => /missing|not enabled/.test(l)), [], 'everything Docker calls necessary is in the kernel');
  assert.deepEqual(result.console.split('\n').filter((l) => l.includes('failed-unit: ')), [], 'no systemd unit failed');
  assert.equal(result.code, 0);
});
