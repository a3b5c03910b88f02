import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testRunner } from '../../../test/fakes/rig.ts';
import type { NetworkLease } from './ports.ts';
import { buildVmSpec, guestSettings, kernelCommandLine } from './vm-spec.ts';

const lease: NetworkLease = {
  vmId: 'ab1-00001', tap: 'fab1-00001', mac: '06:00:0a:d5:00:02',
  guest: { hostname: 'flint-ab1-00001', ipv4: { address: '10.213.0.2', prefixLength: 24, gateway: '10.213.0.1' }, dns: ['10.213.0.1'] },
};
const disks = { scratch: '/s/vms/ab1-00001/scratch.ext4', config: '/s/vms/ab1-00001/config.tar' };

test('the drives follow the guest contract: rootfs, scratch, config drive', () => {
  const spec = buildVmSpec('ab1-00001', '/s/vms/ab1-00001', testRunner({ filesystem: '/img/rootfs.ext4' }), disks, lease);
  assert.deepEqual(spec.drives, { rootfs: '/img/rootfs.ext4', scratch: disks.scratch, config: disks.config });
  assert.deepEqual(spec.net, { tap: 'fab1-00001', mac: '06:00:0a:d5:00:02' });
  assert.equal(spec.workDir, '/s/vms/ab1-00001');
});

test('the kernel command line is the console, then the guest network, then the runner\'s own arguments; blank parts are dropped', () => {
  const line = kernelCommandLine(lease, testRunner({ kernelArgs: '  quiet  ' }));
  assert.match(line, /^console=ttyS0 reboot=k panic=1 \S/);
  assert.ok(line.endsWith(' quiet'), line);
  assert.ok(line.includes('10.213.0.2'), 'the guest address is on the line');
  assert.ok(!line.includes('  '), 'no empty parts');
  assert.ok(kernelCommandLine(lease, testRunner({ kernelArgs: '' })).length < line.length);
});

test('only a Firecracker runner carries the jailer and Firecracker binaries; an initrd only when configured', () => {
  const qemu = buildVmSpec('ab1-00001', '/w', testRunner({ hypervisor: 'qemu' }), disks, lease);
  assert.equal(qemu.firecracker, undefined);
  assert.ok(!('initrd' in qemu));
  const fc = buildVmSpec('ab1-00001', '/w', testRunner({ hypervisor: 'firecracker', jailer: '/j', firecracker: '/f', initrd: '/i' }), disks, lease);
  assert.deepEqual(fc.firecracker, { jailer: '/j', binary: '/f' });
  assert.equal(fc.initrd, '/i');
});

test('the definition\'s pidsMax and rate limits reach the VmSpec; none set, none passed', () => {
  const rateLimits = { disk: { bytesPerSecond: 2 ** 20 }, network: { txBytesPerSecond: 4096 } };
  const spec = buildVmSpec('ab1-00001', '/w', testRunner({ pidsMax: 99, rateLimits }), disks, lease);
  assert.equal(spec.pidsMax, 99);
  assert.deepEqual(spec.rateLimits, rateLimits);
  const plain = buildVmSpec('ab1-00001', '/w', testRunner(), disks, lease);
  assert.ok(!('rateLimits' in plain));
});

test('the config drive names the runner after the VM and carries the job timeout; the caller\'s environment comes last', () => {
  const env = guestSettings('ab1-00001', testRunner({ jobTimeoutSeconds: 600 }), { FLINT_JITCONFIG: 'secret' });
  assert.deepEqual(env, { FLINT_RUNNER_NAME: 'flint-ab1-00001', FLINT_JOB_TIMEOUT: '600', FLINT_JITCONFIG: 'secret' });
  assert.equal(guestSettings('ab1-00001', testRunner(), { FLINT_JOB_TIMEOUT: '5' }).FLINT_JOB_TIMEOUT, '5');
});
