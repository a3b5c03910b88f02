// The Firecracker driver: its command line and API sequence, file
// placement into the jail, and — through the emulated jailer
// (tools/firecracker-emu) — start failures, exit codes and cleanup.
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFlintError } from '../../core/errors/index.ts';
import type { VmSpec } from '../../daemon/vm/ports.ts';
import type { Logger } from '../../daemon/vm/supervisor.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { inPrivateNetns, testBridge } from '../../../test/helpers/netns.ts';
import { parseConfig } from '../../config/load.ts';
import { DEFAULTS } from '../../config/defaults.ts';
import { formatProblem } from '../../config/problems.ts';
import { buildVmSpec } from '../../daemon/vm/vm-spec.ts';
import { planJail } from '../../../tools/firecracker-emu/jailer-main.ts';
import { Drive, NetworkInterface, parseStruct } from '../../../tools/firecracker-emu/schema.ts';
import { cgroupSettings } from './cgroup.ts';
import { configRequests, createFirecrackerDriver, DEFAULT_PIDS_MAX, exitCodeFromLog, jailerArgs } from './firecracker.ts';
import { checkSharedReadable, modeAllows, placeFile } from './firecracker-jail.ts';

const JAILER = fileURLToPath(new URL('../../../tools/firecracker-emu/jailer', import.meta.url));
const FC_BIN = fileURLToPath(new URL('../../../tools/firecracker-emu/firecracker', import.meta.url));

function recordingLogger(): Logger & { lines: Array<{ level: string; obj: object; msg: string }> } {
  const lines: Array<{ level: string; obj: object; msg: string }> = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, obj, msg });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flint-fcdrv-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function specIn(base: string, id: string, over: Partial<VmSpec> = {}): VmSpec {
  const files = join(base, `files-${id}`);
  mkdirSync(files, { recursive: true });
  for (const f of ['vmlinuz', 'rootfs.ext4', 'scratch.ext4', 'config.tar']) writeFileSync(join(files, f), 'not really an image', { mode: 0o644 });
  return {
    id,
    vcpus: 2,
    memoryMib: 256,
    smt: false,
    kernel: join(files, 'vmlinuz'),
    kernelArgs: 'console=ttyS0 reboot=k panic=1',
    drives: { rootfs: join(files, 'rootfs.ext4'), scratch: join(files, 'scratch.ext4'), config: join(files, 'config.tar') },
    net: { tap: 'fnosuch-00001', mac: '06:00:0A:00:00:02' },
    workDir: files,
    uid: 123,
    gid: 100,
    firecracker: { jailer: JAILER, binary: FC_BIN },
    ...over,
  };
}

/** Processes whose command line names this VM id (none may survive a test). */
function processesNaming(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      // The id as an argument (jailer, Firecracker) or as a jail path component (QEMU's drive paths).
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a === id || a.includes(`/${id}/`))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

describe('firecracker driver: command line and API sequence', () => {
  const spec = specIn(tmpdir(), 'abc1-00001');

  const limits = { cgroup: 2, memoryOverheadMib: 128, openFilesMax: 2048, fileSizeMax: 64 * 2 ** 20 } as const;
  const values = (args: string[], flag: string): string[] => args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));

  test('the jailer gets its documented flags, cgroup v2 limits, resource limits, a new pid namespace, and seccomp stays on', () => {
    const args = jailerArgs({ ...spec, pidsMax: 300 }, '/var/lib/flint/jail', limits);
    assert.deepEqual(args.slice(0, 10), ['--id', 'abc1-00001', '--exec-file', FC_BIN, '--uid', '123', '--gid', '100', '--chroot-base-dir', '/var/lib/flint/jail']);
    assert.ok(args.includes('--new-pid-ns'));
    assert.deepEqual(values(args, '--cgroup-version'), ['2']);
    assert.deepEqual(values(args, '--cgroup'), [
      'cpu.max=200000 100000', // two vCPUs: two full CPUs per period
      `memory.max=${(256 + 128) * 1024 * 1024}`, // guest memory plus overhead
      'pids.max=300',
    ]);
    assert.deepEqual(values(args, '--resource-limit'), ['no-file=2048', `fsize=${64 * 2 ** 20}`]);
    const fcArgs = args.slice(args.indexOf('--') + 1);
    assert.deepEqual(fcArgs.slice(0, 2), ['--api-sock', '/run/firecracker.socket']);
    assert.ok(!args.includes('--no-seccomp'));
    assert.ok(!args.some((a) => a.startsWith('--seccomp')), 'Firecracker\'s built-in filter, not a custom one');
  });

  test('a runner definition reaches the jailer: cpuCount, memorySize and pidsMax from the file, the default pidsMax when unset', () => {
    const yaml = (extra: string): string => `networks:
  - name: br-flint
    v4: 10.0.0.1/24
github: {appID: 1, organization: acme, webhookSecret: s3cret-webhook, privateKey: inline-key}
runners:
  - name: small
    labels: [self-hosted]
    kernel: /srv/vmlinux
    filesystem: /srv/rootfs.ext4
    jailer: /usr/bin/jailer
    firecracker: /usr/bin/firecracker
    cpuCount: 4
    memorySize: 2GiB
${extra}`;
    const lease = { vmId: 'abc1-00002', tap: 'fabc1-00002', mac: '06:00:0a:00:00:03', guest: { hostname: 'h', ipv4: { address: '10.0.0.3', prefixLength: 24, gateway: '10.0.0.1' }, dns: [] } };
    const argsFor = (extra: string): string[] => {
      const r = parseConfig(yaml(extra), 'test', {}, () => '', { hostname: 'h' });
      assert.ok(r.ok, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
      const s = buildVmSpec('abc1-00002', '/w', r.config.runners[0]!, { scratch: '/w/scratch', config: '/w/config' }, lease); // one runner in the file
      return jailerArgs(s, '/jail', limits);
    };
    assert.deepEqual(values(argsFor('    pidsMax: 64\n'), '--cgroup'), ['cpu.max=400000 100000', `memory.max=${(2048 + 128) * 2 ** 20}`, 'pids.max=64']);
    assert.ok(argsFor('').includes(`pids.max=${DEFAULTS.pidsMax}`));
  });

  test('cgroup v1 host: the same limits in v1 files; no usable hierarchy: no --cgroup, the rlimits stay', () => {
    const v1 = jailerArgs(spec, '/jail', { ...limits, cgroup: 1 });
    assert.deepEqual(values(v1, '--cgroup-version'), ['1']);
    assert.deepEqual(values(v1, '--cgroup'), ['cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=200000', `memory.limit_in_bytes=${(256 + 128) * 2 ** 20}`, `pids.max=${DEFAULT_PIDS_MAX}`]);
    const none = jailerArgs(spec, '/jail', { ...limits, cgroup: 'none' });
    assert.deepEqual(values(none, '--cgroup'), []);
    assert.deepEqual(values(none, '--resource-limit'), ['no-file=2048', `fsize=${64 * 2 ** 20}`]);
    assert.ok(none.includes('--new-pid-ns'));
  });

  test('the emulated jailer reads the driver\'s command line back to the same limits', (t: TestContext) => {
    const base = mkdtempSync(join(tmpdir(), 'flint-fcargs-'));
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const plan = planJail(jailerArgs({ ...spec, pidsMax: 99 }, base, limits));
    assert.ok(plan !== 'help');
    assert.equal(plan.cgroupVersion, 2);
    assert.equal(plan.parentCgroup, 'firecracker', 'the real jailer\'s default parent: the exec file\'s name');
    assert.deepEqual(plan.cgroups, cgroupSettings(2, { vcpus: 2, memoryMib: 256, overheadMib: 128, pidsMax: 99 }));
    assert.deepEqual(plan.resourceLimits, { noFile: '2048', fsize: String(64 * 2 ** 20) });
    assert.ok(plan.newPidNs);
  });

  test('rate limits: each drive gets the disk buckets, eth0 rx and tx buckets, all refilled each second; Firecracker\'s schema accepts them', () => {
    const limited = { ...spec, rateLimits: { disk: { bytesPerSecond: 50 * 2 ** 20, opsPerSecond: 1000 }, network: { rxBytesPerSecond: 10 * 2 ** 20, txBytesPerSecond: 2 ** 20 } } };
    const reqs = configRequests(limited);
    const diskLimiter = { bandwidth: { size: 50 * 2 ** 20, refill_time: 1000 }, ops: { size: 1000, refill_time: 1000 } };
    for (const r of reqs.filter((x) => x.path.startsWith('/drives/'))) {
      assert.deepEqual((r.body as { rate_limiter?: unknown }).rate_limiter, diskLimiter, r.path);
      assert.deepEqual(parseStruct(Drive, JSON.stringify(r.body))['rate_limiter'], diskLimiter);
    }
    const eth0 = reqs.find((r) => r.path === '/network-interfaces/eth0')!.body; // always configured
    assert.deepEqual(parseStruct(NetworkInterface, JSON.stringify(eth0)), {
      iface_id: 'eth0', host_dev_name: 'fnosuch-00001', guest_mac: '06:00:0a:00:00:02',
      rx_rate_limiter: { bandwidth: { size: 10 * 2 ** 20, refill_time: 1000 } },
      tx_rate_limiter: { bandwidth: { size: 2 ** 20, refill_time: 1000 } },
    });
    const onlyIops = configRequests({ ...spec, rateLimits: { disk: { opsPerSecond: 500 } } });
    assert.deepEqual((onlyIops[3]!.body as { rate_limiter?: unknown }).rate_limiter, { ops: { size: 500, refill_time: 1000 } });
    assert.ok(!('rx_rate_limiter' in (onlyIops[5]!.body as object)), 'no network limit set: no network limiter sent');
  });

  test('the API calls configure machine, boot source, three drives in contract order, eth0, then start', () => {
    const reqs = configRequests(spec);
    assert.deepEqual(reqs.map((r) => r.path), ['/machine-config', '/boot-source', '/drives/rootfs', '/drives/scratch', '/drives/config', '/network-interfaces/eth0', '/actions']);
    assert.deepEqual(reqs[0]!.body, { vcpu_count: 2, mem_size_mib: 256, smt: false });
    assert.deepEqual(reqs[1]!.body, { kernel_image_path: '/vmlinux', boot_args: 'console=ttyS0 reboot=k panic=1' });
    assert.deepEqual(reqs[2]!.body, { drive_id: 'rootfs', path_on_host: '/rootfs.ext4', is_root_device: true, is_read_only: true });
    assert.deepEqual(reqs[3]!.body, { drive_id: 'scratch', path_on_host: '/scratch.ext4', is_root_device: false, is_read_only: false });
    assert.deepEqual(reqs[4]!.body, { drive_id: 'config', path_on_host: '/config.drive', is_root_device: false, is_read_only: true });
    assert.deepEqual(reqs[5]!.body, { iface_id: 'eth0', host_dev_name: 'fnosuch-00001', guest_mac: '06:00:0a:00:00:02' });
    assert.deepEqual(reqs[6]!.body, { action_type: 'InstanceStart' });
    const withInitrd = configRequests({ ...spec, initrd: '/x/initrd.img' });
    assert.equal((withInitrd[1]!.body as { initrd_path?: string }).initrd_path, '/initrd.img');
  });

  test('the exit code comes from Firecracker\'s log, the last exit line wins, none means unknown', () => {
    assert.equal(exitCodeFromLog('x\n2026-01-01T00:00:00 [a:main] Firecracker exiting successfully. exit_code=0\n'), 0);
    assert.equal(exitCodeFromLog('[a:main] Firecracker exiting with error. exit_code=1\n'), 1);
    assert.equal(exitCodeFromLog('booting\n'), undefined);
  });
});

describe('firecracker driver: files in the jail', () => {
  test('same file system: a hard link; across file systems: a copy (tmpfs has no reflink)', async (t: TestContext) => {
    const src = join(dir, 'same-src');
    writeFileSync(src, 'image');
    assert.equal(await placeFile(src, join(dir, 'same-dst')), 'hardlink');
    assert.equal(statSync(src).ino, statSync(join(dir, 'same-dst')).ino);
    if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(dir).dev) {
      t.skip('no second file system (/dev/shm) here');
      return;
    }
    const other = mkdtempSync('/dev/shm/flint-fcdrv-');
    t.after(() => rmSync(other, { recursive: true, force: true }));
    writeFileSync(join(other, 'src'), 'image');
    assert.equal(await placeFile(join(other, 'src'), join(dir, 'cross-dst')), 'copy');
    assert.equal(readFileSync(join(dir, 'cross-dst'), 'utf8'), 'image');
  });

  test('a shared image the jailer uid cannot read is refused with a hint, never chmodded', async () => {
    assert.ok(modeAllows({ uid: 0, gid: 0, mode: 0o100644 }, 123, 100, false));
    assert.ok(modeAllows({ uid: 0, gid: 100, mode: 0o100640 }, 123, 100, false));
    assert.ok(!modeAllows({ uid: 0, gid: 0, mode: 0o100640 }, 123, 100, false));
    assert.ok(!modeAllows({ uid: 123, gid: 0, mode: 0o100400 }, 123, 100, true));
    const img = join(dir, 'private.ext4');
    writeFileSync(img, 'x', { mode: 0o600 });
    await assert.rejects(checkSharedReadable('base rootfs', img, 123, 100), (err: unknown) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_VM_IMAGE_NOT_READABLE'));
      assert.match(err.message, /not readable by the jailer's uid 123 \/ gid 100/);
      assert.match(err.hint, /chmod o\+r/);
      return true;
    });
    assert.equal(statSync(img).mode & 0o777, 0o600, 'the image is left as it was');
  });
});

describe('firecracker driver through the emulated jailer', () => {
  test('an unreadable base rootfs stops the start before the jailer runs', async (t: TestContext) => {
    if (!requirePrereqs(t, root)) return;
    const base = join(dir, 'jail-a');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: recordingLogger() });
    const spec = specIn(dir, 'abc1-0000a');
    execFileSync('chmod', ['0600', spec.drives.rootfs]);
    t.after(() => driver.cleanup(spec.id, spec.workDir));
    await assert.rejects(driver.start(spec), (err: unknown) => isFlintError(err, 'FLINT_ERR_VM_IMAGE_NOT_READABLE'));
    assert.deepEqual(processesNaming(spec.id), []);
    await driver.cleanup(spec.id, spec.workDir);
    assert.ok(!existsSync(join(base, 'firecracker', spec.id)));
  });

  test('a jailer that refuses the call fails the start with the jailer\'s own words; a missing jailer too', async (t: TestContext) => {
    if (!requirePrereqs(t, root)) return;
    const base = join(dir, 'jail-g');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: recordingLogger() });
    // A directory where the binary should be: the jailer itself refuses ("… is not a file").
    const notAFile = join(dir, 'firecracker-g');
    mkdirSync(notAFile, { recursive: true });
    const spec = specIn(dir, 'abc1-0000g', { firecracker: { jailer: JAILER, binary: notAFile } });
    t.after(() => driver.cleanup(spec.id, spec.workDir));
    await assert.rejects(driver.start(spec), (err: unknown) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_VM_JAILER_FAILED'), String(err));
      assert.match(err.message, /exit code 101/);
      assert.match(err.message, /Jailer error: .*firecracker-g is not a file/);
      return true;
    });
    await driver.cleanup(spec.id, spec.workDir);
    assert.ok(!existsSync(join(base, 'firecracker-g', spec.id)), 'the refused VM\'s jail is removed');
    const badName = specIn(dir, 'abc1-0000i', { firecracker: { jailer: JAILER, binary: join(dir, 'vmm') } });
    await assert.rejects(driver.start(badName), (err: unknown) => isFlintError(err, 'FLINT_ERR_VM_START_FAILED') && /without "firecracker"/.test(err.message));
    assert.ok(!existsSync(join(base, 'vmm')), 'nothing is placed for a binary the jailer would refuse');
    const missing = specIn(dir, 'abc1-0000h', { firecracker: { jailer: join(dir, 'no-such-jailer'), binary: FC_BIN } });
    t.after(() => driver.cleanup(missing.id, missing.workDir));
    await assert.rejects(driver.start(missing), (err: unknown) => isFlintError(err, 'FLINT_ERR_VM_JAILER_FAILED') && /ENOENT/.test(err.message));
  });

  test('Firecracker refusing the tap fails the start with its fault_message; nothing survives cleanup', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'))) return;
    const base = join(dir, 'jail-b');
    const logger = recordingLogger();
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger });
    const spec = specIn(dir, 'abc1-0000b');
    t.after(() => driver.cleanup(spec.id, spec.workDir));
    await assert.rejects(driver.start(spec), (err: unknown) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_VM_FIRECRACKER_API'), String(err));
      assert.match(err.message, /PUT \/network-interfaces\/eth0/);
      assert.match(String(err.details['faultMessage']), /^Network config error: Could not create the network device: Open tap device failed/);
      return true;
    });
    assert.deepEqual(processesNaming(spec.id), [], 'the Firecracker of a failed start is killed');
    // The jail holds the files as the jail's uid sees them.
    const jailRoot = join(base, 'firecracker', spec.id, 'root');
    const cfg = statSync(join(jailRoot, 'config.drive'));
    assert.deepEqual([cfg.uid, cfg.gid, cfg.mode & 0o777], [123, 100, 0o400]);
    const scratch = statSync(join(jailRoot, 'scratch.ext4'));
    assert.deepEqual([scratch.uid, scratch.gid, scratch.mode & 0o777], [123, 100, 0o600]);
    const rootfs = statSync(join(jailRoot, 'rootfs.ext4'));
    assert.equal(rootfs.ino, statSync(spec.drives.rootfs).ino, 'the base rootfs is hard-linked, not copied');
    assert.deepEqual([rootfs.uid, rootfs.mode & 0o777], [statSync(spec.drives.rootfs).uid, 0o644], 'and left untouched');
    assert.ok(logger.lines.some((l) => l.msg === 'files placed in the jail'));
    await driver.cleanup(spec.id, spec.workDir);
    await driver.cleanup(spec.id, spec.workDir); // idempotent
    assert.ok(!existsSync(join(base, 'firecracker', spec.id)));
    assert.ok(existsSync(spec.drives.rootfs), 'cleanup never touches the originals');
  });

  test('a VMM that dies after InstanceStart reports the exit code Firecracker logged', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'), program('ip'), program('qemu-system-x86_64'))) return;
    if (!(await inPrivateNetns())) {
      t.skip('needs the private network namespace of scripts/test.mjs to create a tap');
      return;
    }
    const tap = await (await testBridge(t, { bridge: 'fcbr9', address: '10.202.0.1', prefixLength: 24 })).addTap('fabc1-0000c');
    const base = join(dir, 'jail-c');
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: recordingLogger() });
    // The "kernel" is not a kernel: QEMU refuses it and exits 1, and so does the VMM.
    const spec = specIn(dir, 'abc1-0000c', { net: { tap, mac: '06:00:0a:00:00:03' } });
    t.after(() => driver.cleanup(spec.id, spec.workDir));
    const vm = await driver.start(spec);
    assert.ok(vm.pid > 0);
    const exit = await vm.exited;
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.deepEqual(processesNaming(spec.id), []);
    await driver.cleanup(spec.id, spec.workDir);
    assert.ok(!existsSync(join(base, 'firecracker', spec.id)));
  });

  test('flint crashed with a VM up: cleanup kills the Firecracker left in the jail and removes the jail only', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'))) return;
    const base = join(dir, 'jail-e');
    mkdirSync(base, { recursive: true });
    const id = 'abc1-0000e';
    const neighbour = join(base, 'firecracker', 'abc1-0000f', 'root');
    mkdirSync(neighbour, { recursive: true });
    // What a crashed Flint leaves: a jailed Firecracker with its API up, and nobody watching it.
    execFileSync(JAILER, ['--id', id, '--exec-file', FC_BIN, '--uid', '123', '--gid', '100', '--chroot-base-dir', base, '--new-pid-ns', '--', '--api-sock', '/run/firecracker.socket'], { stdio: 'ignore', timeout: 60000 });
    const pid = Number(readFileSync(join(base, 'firecracker', id, 'root', 'firecracker.pid'), 'utf8'));
    t.after(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone, as it should be */ }
    });
    assert.ok(processesNaming(id).includes(pid));
    const driver = createFirecrackerDriver({ chrootBaseDir: base, logger: recordingLogger() });
    await driver.cleanup(id, dir);
    assert.deepEqual(processesNaming(id), []);
    assert.ok(!existsSync(join(base, 'firecracker', id)));
    assert.ok(existsSync(neighbour), 'another VM\'s jail is not touched');
  });

  test('cleanup refuses anything that is not a Flint VM id', async () => {
    const driver = createFirecrackerDriver({ chrootBaseDir: join(dir, 'jail-d'), logger: recordingLogger() });
    await assert.rejects(driver.cleanup('../etc', dir), (err: unknown) => isFlintError(err, 'FLINT_ERR_INTERNAL'));
    await assert.rejects(driver.cleanup('abc1-0000d/..', dir), (err: unknown) => isFlintError(err, 'FLINT_ERR_INTERNAL'));
  });
});
