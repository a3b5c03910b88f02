// Which cgroup hierarchy holds a VMM's limits, decided from /proc/mounts and
// the hierarchies' own files (a fake tree here), and the files written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDirs, cgroupSettings, detectCgroupHost, parseMounts } from './cgroup.ts';
import type { CgroupFs } from './cgroup.ts';

function fakeFs(files: Record<string, string>, readOnly: readonly string[] = []): CgroupFs {
  return {
    readFile: async (p) => {
      const v = files[p];
      if (v === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return v;
    },
    writable: async (p) => {
      if (readOnly.includes(p)) throw Object.assign(new Error(`EROFS: ${p}`), { code: 'EROFS' });
    },
  };
}

const V2 = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n';
const HYBRID = ['cpu,cpuacct', 'memory', 'pids'].map((c) => `cgroup /sys/fs/cgroup/${c} cgroup rw,relatime,${c} 0 0`).join('\n') + '\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';

test('a unified host with cpu, memory and pids at its root: cgroup v2', async () => {
  const host = await detectCgroupHost(fakeFs({ '/proc/mounts': V2, '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n' }));
  assert.deepEqual(host, { version: 2, mount: '/sys/fs/cgroup' });
  assert.deepEqual(cgroupDirs(host, 'firecracker', 'ab1-00001'), ['/sys/fs/cgroup/firecracker/ab1-00001']);
});

test('a hybrid host (v2 without controllers, v1 with them, cpu shared with cpuacct): cgroup v1, one directory per hierarchy', async () => {
  const host = await detectCgroupHost(fakeFs({ '/proc/mounts': HYBRID, '/sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n' }));
  assert.deepEqual(host, { version: 1, mounts: { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' } });
  assert.deepEqual(cgroupDirs(host, 'firecracker', 'x'), ['/sys/fs/cgroup/cpu,cpuacct/firecracker/x', '/sys/fs/cgroup/memory/firecracker/x', '/sys/fs/cgroup/pids/firecracker/x']);
});

test('a container with a read-only cgroup tree: none, and the reason names the hierarchy and the error', async () => {
  const host = await detectCgroupHost(fakeFs({ '/proc/mounts': V2, '/sys/fs/cgroup/cgroup.controllers': 'cpu memory pids\n' }, ['/sys/fs/cgroup']));
  assert.equal(host.version, 'none');
  assert.match(host.version === 'none' ? host.reason : '', /cgroup v2 hierarchy at \/sys\/fs\/cgroup is not writable \(EROFS\)/);
  const noPids = await detectCgroupHost(fakeFs({ '/proc/mounts': V2, '/sys/fs/cgroup/cgroup.controllers': 'cpu memory\n' }));
  assert.match(noPids.version === 'none' ? noPids.reason : '', /offers no pids controller/);
  const nothing = await detectCgroupHost(fakeFs({ '/proc/mounts': 'proc /proc proc rw 0 0\n' }));
  assert.deepEqual(nothing, { version: 'none', reason: 'no cgroup hierarchy is mounted' });
  assert.deepEqual(cgroupDirs(nothing, 'firecracker', 'x'), []);
});

test('the same limits in v2 and v1 files; mount points with escaped spaces are read back', () => {
  const l = { vcpus: 3, memoryMib: 1024, overheadMib: 128, pidsMax: 64 };
  assert.deepEqual(cgroupSettings(2, l), [
    { file: 'cpu.max', value: '300000 100000' },
    { file: 'memory.max', value: String(1152 * 2 ** 20) },
    { file: 'pids.max', value: '64' },
  ]);
  assert.deepEqual(cgroupSettings(1, l), [
    { file: 'cpu.cfs_period_us', value: '100000' },
    { file: 'cpu.cfs_quota_us', value: '300000' },
    { file: 'memory.limit_in_bytes', value: String(1152 * 2 ** 20) },
    { file: 'pids.max', value: '64' },
  ]);
  assert.equal(parseMounts('cgroup2 /mnt/my\\040cg cgroup2 rw 0 0')[0]?.dir, '/mnt/my cg');
});
