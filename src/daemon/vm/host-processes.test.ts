import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cmdlineNamesVm } from './host-processes.ts';

test('a command line names a VM by its id as a path component or an option value', () => {
  assert.ok(cmdlineNamesVm(['jailer', '--id', 'ab1-00001'], 'ab1-00001'));
  assert.ok(cmdlineNamesVm(['qemu', '-drive', 'file=/var/lib/flint/vms/ab1-00001/scratch.img,format=raw'], 'ab1-00001'));
  assert.ok(cmdlineNamesVm(['x', '--api-sock=/srv/jail/firecracker/ab1-00001/root/api.sock'], 'ab1-00001'));
});

test('a log viewer, a longer id and another instance are not mistaken for the VM', () => {
  assert.ok(!cmdlineNamesVm(['tail', '-f', '/var/lib/flint/consoles/ab1-00001.log'], 'ab1-00001'));
  assert.ok(!cmdlineNamesVm(['qemu', '/vms/ab1-000012/x'], 'ab1-00001'));
  assert.ok(!cmdlineNamesVm(['qemu', '/vms/xab1-00001/x'], 'ab1-00001'));
  assert.ok(!cmdlineNamesVm(['qemu', '/vms/ab2-00001/x'], 'ab1-00001'));
});
