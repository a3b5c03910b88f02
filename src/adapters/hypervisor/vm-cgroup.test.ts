/** Where a QEMU VM's cgroup goes and what is written there, on cgroup v2 and v1 hosts (pure; the real files are checked in qemu.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cgroupLayout, createVmCgroup, hostCgroupLayout, limitWrites, removeVmCgroup, vmCgroupDirs } from './vm-cgroup.ts';
import { requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { dropPrivileges, vmmCommand } from './qemu.ts';

const limits = { vcpus: 2, memoryMib: 256, overheadMib: 256, pidsMax: 130 };

const V2_HOST = [
  'sysfs /sys sysfs rw,nosuid 0 0',
  'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0',
].join('\n');

const HYBRID_HOST = [
  'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
  'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0',
  'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
  'cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0',
  'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
].join('\n');
const HYBRID_SELF = ['9:pids:/', '4:memory:/system.slice/flint.service', '2:cpu,cpuacct:/', '0::/system.slice/flint.service'].join('\n');

test('a cgroup v2 host with cpu, memory and pids: one cgroup under <root>/flint, with cpu.max, memory.max, no swap, pids.max', () => {
  const layout = cgroupLayout(V2_HOST, '0::/system.slice/flint.service', () => 'cpuset cpu io memory hugetlb pids rdma');
  assert.deepEqual(layout, { version: 2, root: '/sys/fs/cgroup' });
  assert.deepEqual(vmCgroupDirs(layout, 'ab12-00001'), ['/sys/fs/cgroup/flint/ab12-00001'], 'outside the unit\'s cgroup, beside the jailer\'s');
  assert.deepEqual(limitWrites(layout, 'ab12-00001', limits), [
    ['/sys/fs/cgroup/flint/ab12-00001/cpu.max', '200000 100000'],
    ['/sys/fs/cgroup/flint/ab12-00001/memory.max', String(512 * 1024 * 1024)],
    ['/sys/fs/cgroup/flint/ab12-00001/memory.swap.max', '0'],
    ['/sys/fs/cgroup/flint/ab12-00001/pids.max', '130'],
  ]);
});

test('a hybrid host (controllers in v1, an empty unified tree): one cgroup per controller below Flint\'s own, with the v1 limit files', () => {
  const layout = cgroupLayout(HYBRID_HOST, HYBRID_SELF, () => '');
  assert.deepEqual(layout, { version: 1, cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory/system.slice/flint.service', pids: '/sys/fs/cgroup/pids' });
  assert.deepEqual(limitWrites(layout, 'ab12-00002', limits), [
    ['/sys/fs/cgroup/cpu,cpuacct/flint/ab12-00002/cpu.cfs_period_us', '100000'],
    ['/sys/fs/cgroup/cpu,cpuacct/flint/ab12-00002/cpu.cfs_quota_us', '200000'],
    ['/sys/fs/cgroup/memory/system.slice/flint.service/flint/ab12-00002/memory.limit_in_bytes', String(512 * 1024 * 1024)],
    ['/sys/fs/cgroup/pids/flint/ab12-00002/pids.max', '130'],
  ]);
});

test('a v2 tree that lacks a controller is not used; no usable hierarchy at all is reported as none', () => {
  assert.equal(cgroupLayout(V2_HOST, '0::/', () => 'cpu memory'), undefined);
  assert.equal(cgroupLayout('proc /proc proc rw 0 0', '', () => undefined), undefined);
  // A mount point with a space is escaped in /proc/mounts.
  assert.deepEqual(cgroupLayout('cgroup2 /c\\040g cgroup2 rw 0 0', '0::/', () => 'cpu memory pids'), { version: 2, root: '/c g' });
});

test('only a Flint VM id names a cgroup: never a path', () => {
  const layout = { version: 2, root: '/sys/fs/cgroup' } as const;
  for (const bad of ['../x', 'ab12-00001/../../etc', '', 'ab12']) assert.throws(() => vmCgroupDirs(layout, bad), RangeError);
});

test('the VMM command joins the cgroups, drops to the uid/gid with no groups, capabilities or new privileges, then execs QEMU', () => {
  const drop = dropPrivileges(123, 100, []);
  assert.deepEqual(drop, ['setpriv', '--reuid', '123', '--regid', '100', '--clear-groups', '--inh-caps=-all', '--no-new-privs', '--']);
  assert.deepEqual(dropPrivileges(123, 100, [108]).slice(5, 7), ['--groups', '108'], 'KVM\'s group, when /dev/kvm needs it');
  const cmd = vmmCommand(['/cg/a/cgroup.procs', '/cg/b/cgroup.procs'], drop, 'qemu-system-x86_64', ['-M', 'microvm']);
  assert.deepEqual(cmd.slice(0, 2), ['sh', '-c']);
  assert.deepEqual(cmd.slice(3), ['flint-qemu-join', '/cg/a/cgroup.procs', '/cg/b/cgroup.procs', '--', ...drop, 'qemu-system-x86_64', '-M', 'microvm']);
  assert.match(cmd[2] ?? '', /exec "\$@"$/, 'exec: the pid that joined is the pid that becomes QEMU');
  assert.throws(() => dropPrivileges(-1, 100, []), RangeError);
});

test('the join step writes its own pid to every procs file and execs: the program that runs has that pid', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flint-join-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const cmd = vmmCommand([a, b], [], 'sh', ['-c', 'echo $$']);
  const { stdout } = await promisify(execFile)(cmd[0] ?? 'sh', cmd.slice(1));
  assert.equal(stdout.trim(), (await readFile(a, 'utf8')).trim());
  assert.equal(stdout.trim(), (await readFile(b, 'utf8')).trim());
  // A procs file that cannot be written stops the start: the program never runs.
  await writeFile(join(dir, 'ran'), '');
  const bad = vmmCommand([join(dir, 'missing', 'cgroup.procs')], [], 'sh', ['-c', `echo yes > ${join(dir, 'ran')}`]);
  await assert.rejects(promisify(execFile)(bad[0] ?? 'sh', bad.slice(1)), (err: { code?: number }) => err.code === 125);
  assert.equal(await readFile(join(dir, 'ran'), 'utf8'), '');
});

test('a VMM that joined its real cgroup and outlived its pid file is killed when the cgroup is removed; nothing is left', async (t) => {
  if (!requirePrereqs(t, root)) return;
  const layout = await hostCgroupLayout();
  assert.ok(layout !== undefined, 'this host has cgroup controllers cpu, memory and pids (v2, or v1 hierarchies)');
  const id = `cg${process.pid.toString(36).slice(-4)}-00001`;
  t.after(() => removeVmCgroup(layout, id));
  const procs = await createVmCgroup(layout, id, limits);
  const cmd = vmmCommand(procs, [], 'sleep', ['600']);
  const child = spawn(cmd[0] ?? 'sh', cmd.slice(1), { stdio: 'ignore' });
  t.after(() => { child.kill('SIGKILL'); });
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  // Joined: the child's pid is listed in every procs file.
  for (let i = 0; i < 100 && !(await readFile(procs[0] ?? '', 'utf8')).includes(String(child.pid)); i++) await new Promise((r) => setTimeout(r, 20));
  for (const f of procs) assert.ok((await readFile(f, 'utf8')).split('\n').includes(String(child.pid)), f);
  assert.deepEqual(await removeVmCgroup(layout, id), []);
  assert.equal(await ended, 'SIGKILL');
  for (const dir of vmCgroupDirs(layout, id)) assert.ok(!existsSync(dir), dir);
  assert.deepEqual(await removeVmCgroup(layout, id), [], 'again: nothing to do');
});
