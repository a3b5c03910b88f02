// The emulated jailer as a real process, invoked exactly as the real one:
// argument errors exit 1, invalid values panic (exit 101) with "Jailer
// error: …", and a valid call builds the jail layout of the real jailer and
// leaves the emulated Firecracker serving its API inside it.
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirePrereqs, root, program } from '../../test/helpers/prereq.ts';
import { rawApiCall } from '../../src/adapters/hypervisor/firecracker-api.ts';
import { cgroupDirs, cgroupSettings, detectCgroupHost } from '../../src/adapters/hypervisor/cgroup.ts';
import { cgroupDirOf, cgroupValue, rlimit } from '../../test/helpers/cgroup.ts';
import { validateInstanceId } from './jailer-main.ts';

const JAILER = fileURLToPath(new URL('./jailer', import.meta.url));
const FC = fileURLToPath(new URL('./firecracker', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flint-jailer-'));
  mkdirSync(join(dir, 'jail'));
  writeFileSync(join(dir, 'qemu-vmm'), '#!/bin/sh\n', { mode: 0o755 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function jailer(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(JAILER, args, { encoding: 'utf8', timeout: 60000 });
  return { code: r.status, stderr: r.stderr };
}

/** Resolves on the jailer's exit, not on its pipes closing: the forked Firecracker keeps them open. */
function jailerUntilExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(JAILER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.once('exit', (code) => {
      child.stderr.destroy();
      resolve({ code, stderr });
    });
  });
}

const base = (): string[] => ['--exec-file', FC, '--uid', '123', '--gid', '100', '--chroot-base-dir', join(dir, 'jail')];

function devNumbers(path: string): [number, number] {
  const rdev = statSync(path).rdev;
  return [(rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)];
}

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

describe('emulated jailer: command line', () => {
  test('instance ids follow the jailer: alphanumerics and hyphens, 1 to 64 characters', () => {
    assert.equal(validateInstanceId('ab12-0001a'), undefined);
    assert.equal(validateInstanceId('a_b'), 'invalid char (_) at position 1');
    assert.equal(validateInstanceId(''), 'invalid len (0);  the length must be between 1 and 64');
    assert.equal(validateInstanceId('x'.repeat(65)), 'invalid len (65);  the length must be between 1 and 64');
  });

  test('argument errors exit 1 with the parser\'s message', () => {
    const missing = jailer(base());
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Failed to parse arguments: Argument 'id' required, but not found\./);
    const unknown = jailer(['--id', 'a1', ...base(), '--seccomp-level', '0']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Found argument 'seccomp-level' which wasn't expected, or isn't valid in this context\./);
    const noValue = jailer([...base(), '--id']);
    assert.equal(noValue.code, 1);
    assert.match(noValue.stderr, /The argument 'id' requires a value, but none was supplied\./);
    const twice = jailer(['--id', 'a1', '--id', 'a2', ...base()]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /The argument 'id' was provided more than once\./);
  });

  test('invalid values panic with "Jailer error" and exit 101, building nothing', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--id', 'bad_id', ...base()], /Jailer error: Invalid instance ID: invalid char \(_\) at position 3/],
      [['--id', 'a1', '--exec-file', join(dir, 'qemu-vmm'), '--uid', '1', '--gid', '1', '--chroot-base-dir', join(dir, 'jail')],
        /Jailer error: Invalid filename\. The filename of `--exec-file` option must contain "firecracker": qemu-vmm/],
      [['--id', 'a1', '--exec-file', join(dir, 'nope-firecracker'), '--uid', '1', '--gid', '1', '--chroot-base-dir', join(dir, 'jail')],
        /Jailer error: Failed to canonicalize path .*nope-firecracker: No such file or directory \(os error 2\)/],
      [['--id', 'a1', '--exec-file', FC, '--uid', 'root', '--gid', '1', '--chroot-base-dir', join(dir, 'jail')], /Jailer error: Invalid uid: root/],
      [['--id', 'a1', ...base(), '--cgroup-version', 'two'], /Jailer error: two is an invalid cgroup version specifier/],
      [['--id', 'a1', ...base(), '--cgroup-version', '2', '--cgroup', 'cpu.max'], /Jailer error: Invalid format for cgroups: cpu\.max/],
      [['--id', 'a1', '--exec-file', FC, '--uid', '1', '--gid', '1', '--chroot-base-dir', join(dir, 'missing')], /Jailer error: Failed to canonicalize path .*missing/],
    ];
    for (const [args, want] of cases) {
      const r = jailer(args);
      assert.equal(r.code, 101, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
    }
    assert.ok(!existsSync(join(dir, 'jail', 'firecracker', 'a1')), 'no jail for a refused call');
  });
});

describe('emulated jailer: the jail', () => {
  test('with --new-pid-ns: the real jailer\'s layout, a pid file, and Firecracker\'s API in the jail', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'))) return;
    const id = 'lay0-00001';
    const r = await jailerUntilExit(['--id', id, ...base(), '--new-pid-ns', '--', '--api-sock', '/run/firecracker.socket']);
    assert.equal(r.code, 0, r.stderr);
    const jailRoot = join(dir, 'jail', 'firecracker', id, 'root');
    const pid = Number(readFileSync(join(jailRoot, 'firecracker.pid'), 'utf8'));
    t.after(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
      rmSync(join(dir, 'jail', 'firecracker', id), { recursive: true, force: true });
    });
    assert.ok(alive(pid), 'Firecracker outlives the jailer');
    for (const [path, mode] of [['', 0o40700], ['dev', 0o40700], ['dev/net', 0o40700], ['run', 0o40700]] as const) {
      const st = statSync(join(jailRoot, path));
      assert.deepEqual([st.uid, st.gid, st.mode], [123, 100, mode], `/${path}`);
    }
    const kvm = statSync(join(jailRoot, 'dev/kvm'));
    assert.ok(kvm.isCharacterDevice());
    assert.deepEqual([kvm.uid, kvm.gid, kvm.mode & 0o777], [123, 100, 0o600]);
    assert.deepEqual(devNumbers(join(jailRoot, 'dev/kvm')), [10, 232]);
    assert.deepEqual(devNumbers(join(jailRoot, 'dev/net/tun')), [10, 200]);
    assert.equal(readFileSync(join(jailRoot, 'firecracker'), 'utf8'), readFileSync(FC, 'utf8'), 'the exec file is copied in');
    const socket = join(jailRoot, 'run/firecracker.socket');
    await waitFor(() => existsSync(socket), 30000);
    const info = await rawApiCall(socket, 'GET', '/', undefined, 5000);
    assert.deepEqual(info.body, { id, state: 'Not started', vmm_version: '1.10.1', app_name: 'Firecracker' });
    assert.equal(statSync(socket).uid, 123, 'the socket belongs to the jail\'s uid');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 10000);
  });

  test('the --resource-limit and --cgroup values are in force in the forked Firecracker; its cgroup is <parent>/<id>', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'), program('prlimit'))) return;
    const host = await detectCgroupHost();
    if (host.version === 'none') {
      if (process.env['CI'] === 'true') throw new Error(`CI host without a usable cgroup hierarchy: ${host.reason}`);
      t.skip(host.reason);
      return;
    }
    const id = 'lim0-00001';
    const settings = cgroupSettings(host.version, { vcpus: 1, memoryMib: 256, overheadMib: 128, pidsMax: 77 });
    const r = await jailerUntilExit(['--id', id, ...base(), '--cgroup-version', String(host.version), ...settings.flatMap((c) => ['--cgroup', `${c.file}=${c.value}`]),
      '--resource-limit', 'no-file=321', '--resource-limit', 'fsize=12345678', '--new-pid-ns', '--', '--api-sock', '/run/firecracker.socket']);
    assert.equal(r.code, 0, r.stderr);
    const pid = Number(readFileSync(join(dir, 'jail', 'firecracker', id, 'root', 'firecracker.pid'), 'utf8'));
    t.after(async () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
      await waitFor(() => !alive(pid), 10000);
      // A killed task leaves its cgroup a moment after it is gone from /proc: EBUSY until then.
      for (const d of cgroupDirs(host, 'firecracker', id)) {
        await waitFor(() => {
          try {
            rmdirSync(d);
            return true;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EBUSY') return false;
            throw err;
          }
        }, 10000);
      }
      rmSync(join(dir, 'jail', 'firecracker', id), { recursive: true, force: true });
    });
    assert.deepEqual(rlimit(pid, 'Max open files'), { soft: '321', hard: '321' });
    assert.deepEqual(rlimit(pid, 'Max file size'), { soft: '12345678', hard: '12345678' });
    assert.equal(cgroupDirOf(pid, host, 'pids'), cgroupDirs(host, 'firecracker', id).find((d) => host.version === 2 || d.startsWith(host.mounts.pids)));
    for (const c of settings) assert.equal(cgroupValue(pid, host, c.file), c.value, c.file);
  });

  test('a --cgroup file of a controller the host does not offer panics with the jailer\'s words', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'), program('prlimit'))) return;
    const id = 'lim0-00002';
    t.after(() => rmSync(join(dir, 'jail', 'firecracker', id), { recursive: true, force: true }));
    const r = await jailerUntilExit(['--id', id, ...base(), '--cgroup-version', '2', '--cgroup', 'nosuchctl.max=1', '--new-pid-ns']);
    assert.equal(r.code, 101);
    assert.match(r.stderr, /Jailer error: (Controller nosuchctl is unavailable|Hierarchy not found: cgroupsv2 hierarchy missing)/);
  });

  test('without --new-pid-ns the jailer process itself becomes Firecracker', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'))) return;
    const id = 'lay0-00002';
    const child = spawn(JAILER, ['--id', id, ...base()], { stdio: 'ignore' });
    t.after(() => {
      child.kill('SIGKILL');
      rmSync(join(dir, 'jail', 'firecracker', id), { recursive: true, force: true });
    });
    const jailRoot = join(dir, 'jail', 'firecracker', id, 'root');
    const socket = join(jailRoot, 'run/firecracker.socket');
    await waitFor(() => existsSync(socket), 30000);
    assert.ok(!existsSync(join(jailRoot, 'firecracker.pid')), 'no pid file without --new-pid-ns');
    assert.equal((await rawApiCall(socket, 'GET', '/', undefined, 5000)).status, 200);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  });
  test('Firecracker checks its own arguments after --: an unknown one ends it with exit code 153', async (t: TestContext) => {
    if (!requirePrereqs(t, root, program('mknod'))) return;
    const id = 'lay0-00003';
    t.after(() => rmSync(join(dir, 'jail', 'firecracker', id), { recursive: true, force: true }));
    // Without --new-pid-ns the jailer becomes Firecracker, so its exit code is Firecracker's.
    const r = await jailerUntilExit(['--id', id, ...base(), '--', '--api-sock', '/run/firecracker.socket', '--no-such-flag']);
    assert.equal(r.code, 153, r.stderr);
    assert.match(r.stderr, /Arguments parsing error: Found argument 'no-such-flag' which wasn't expected, or isn't valid in this context\./);
  });
});
