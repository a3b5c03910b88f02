import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ProcHostProcesses } from './proc-host-processes.ts';

test('a live process is found by the VM id on its command line, killed, and then seen as gone', async (t) => {
  const procs = new ProcHostProcesses();
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '/tmp/flint-test/vms/zz9-0abcd/x'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => child.once('spawn', r));
  assert.deepEqual(procs.findVm('zz9-0abcd'), [child.pid]);
  const exited = new Promise((r) => child.once('exit', r));
  procs.kill(child.pid ?? -1);
  await exited;
  assert.equal(procs.isAlive(child.pid ?? -1), false);
  assert.deepEqual(procs.findVm('zz9-0abcd'), []);
  procs.kill(child.pid ?? -1); // already gone: no throw
});
