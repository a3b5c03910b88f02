import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qemuArgs } from './qemu-args.ts';
import type { VmSpec } from '../../daemon/vm/ports.ts';

const spec: VmSpec = {
  id: 'h7k2-00001',
  vcpus: 2,
  memoryMib: 512,
  smt: false,
  kernel: '/img/vmlinuz',
  initrd: '/img/initrd.img',
  kernelArgs: 'console=ttyS0 ip=10.0.0.2::10.0.0.1:255.255.255.0:vm:eth0:off',
  drives: { rootfs: '/img/rootfs.ext4', scratch: '/vm/scratch.ext4', config: '/vm/config.tar' },
  net: { tap: 'fh7k2-00001', mac: '06:00:0A:00:00:02' },
  workDir: '/vm',
  uid: 123,
  gid: 100,
};

function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1] ?? ''] : []));
}

test('x86_64 under TCG boots a microvm with the contract drives in order', () => {
  const { binary, args } = qemuArgs(spec, { accel: 'tcg', qmpSocket: '/vm/qmp.sock' });
  assert.equal(binary, 'qemu-system-x86_64');
  assert.match(valuesOf(args, '-M')[0] ?? '', /^microvm,/);
  assert.equal(valuesOf(args, '-accel')[0], 'tcg,thread=multi');
  assert.deepEqual(valuesOf(args, '-drive'), [
    'id=vda,file=/img/rootfs.ext4,format=raw,if=none,readonly=on',
    'id=vdb,file=/vm/scratch.ext4,format=raw,if=none',
    'id=vdc,file=/vm/config.tar,format=raw,if=none,readonly=on',
  ]);
  assert.deepEqual(valuesOf(args, '-device').filter((d) => d.startsWith('virtio-blk')), [
    'virtio-blk-device,drive=vda', 'virtio-blk-device,drive=vdb', 'virtio-blk-device,drive=vdc',
  ]);
  assert.ok(args.includes('-no-reboot'));
  assert.equal(valuesOf(args, '-append')[0], `${spec.kernelArgs} tsc_early_khz=2000000`);
  assert.equal(valuesOf(args, '-initrd')[0], '/img/initrd.img');
  assert.equal(valuesOf(args, '-qmp')[0], 'unix:/vm/qmp.sock,server=on,wait=off');
  assert.equal(valuesOf(args, '-netdev')[0], 'tap,id=net0,ifname=fh7k2-00001,script=no,downscript=no');
  assert.equal(valuesOf(args, '-device').find((d) => d.startsWith('virtio-net')), 'virtio-net-device,netdev=net0,mac=06:00:0a:00:00:02');
});

test('KVM uses the host CPU model', () => {
  const { args } = qemuArgs(spec, { accel: 'kvm', qmpSocket: '/vm/qmp.sock' });
  assert.equal(valuesOf(args, '-accel')[0], 'kvm');
  assert.equal(valuesOf(args, '-cpu')[0], 'host');
});

test('SMT with an even vCPU count gives two threads per core', () => {
  const { args } = qemuArgs({ ...spec, vcpus: 4, smt: true }, { accel: 'tcg', qmpSocket: '/q' });
  assert.equal(valuesOf(args, '-smp')[0], '4,sockets=1,cores=2,threads=2');
  const odd = qemuArgs({ ...spec, vcpus: 3, smt: true }, { accel: 'tcg', qmpSocket: '/q' });
  assert.equal(valuesOf(odd.args, '-smp')[0], '3,sockets=1,cores=3,threads=1');
});

test('a path with a comma is escaped for the QEMU option parser', () => {
  const { args } = qemuArgs({ ...spec, drives: { ...spec.drives, rootfs: '/img/a,b.ext4' } }, { accel: 'tcg', qmpSocket: '/q' });
  assert.equal(valuesOf(args, '-drive')[0], 'id=vda,file=/img/a,,b.ext4,format=raw,if=none,readonly=on');
});

test('aarch64 uses the virt machine and its own binary', () => {
  const { binary, args } = qemuArgs(spec, { accel: 'tcg', qmpSocket: '/q', arch: 'aarch64' });
  assert.equal(binary, 'qemu-system-aarch64');
  assert.match(valuesOf(args, '-M')[0] ?? '', /^virt/);
  assert.ok(!valuesOf(args, '-device').includes('i8042'));
});

test('no initrd means no -initrd flag; a pid file is passed through', () => {
  const { initrd: _omit, ...noInitrd } = spec;
  const { args } = qemuArgs(noInitrd, { accel: 'tcg', qmpSocket: '/q', pidFile: '/vm/qemu.pid' });
  assert.equal(valuesOf(args, '-initrd').length, 0);
  assert.equal(valuesOf(args, '-pidfile')[0], '/vm/qemu.pid');
});

test('the seccomp filter is asked for only when given (the driver always gives it)', () => {
  assert.equal(valuesOf(qemuArgs(spec, { accel: 'tcg', qmpSocket: '/q' }).args, '-sandbox').length, 0);
  assert.deepEqual(valuesOf(qemuArgs(spec, { accel: 'tcg', qmpSocket: '/q', sandbox: 'on,spawn=deny' }).args, '-sandbox'), ['on,spawn=deny']);
});

test('a bad MAC, tap name or size is rejected before QEMU runs', () => {
  assert.throws(() => qemuArgs({ ...spec, net: { ...spec.net, mac: 'nope' } }, { accel: 'tcg', qmpSocket: '/q' }), RangeError);
  assert.throws(() => qemuArgs({ ...spec, net: { ...spec.net, tap: 'x,script=/evil' } }, { accel: 'tcg', qmpSocket: '/q' }), RangeError);
  assert.throws(() => qemuArgs({ ...spec, vcpus: 0 }, { accel: 'tcg', qmpSocket: '/q' }), RangeError);
});

test('TCG tells the guest the TSC frequency; KVM and an explicit setting are left alone', () => {
  const tcg = qemuArgs(spec, { accel: 'tcg', qmpSocket: '/q', tscKhz: 2596122 });
  assert.equal(valuesOf(tcg.args, '-append')[0], `${spec.kernelArgs} tsc_early_khz=2596122 tsc=reliable`);
  const kvm = qemuArgs(spec, { accel: 'kvm', qmpSocket: '/q' });
  assert.equal(valuesOf(kvm.args, '-append')[0], spec.kernelArgs);
  const own = qemuArgs({ ...spec, kernelArgs: 'console=ttyS0 tsc_early_khz=5' }, { accel: 'tcg', qmpSocket: '/q' });
  assert.equal(valuesOf(own.args, '-append')[0], 'console=ttyS0 tsc_early_khz=5');
});
