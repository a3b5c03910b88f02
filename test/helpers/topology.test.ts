// The end-to-end topology on its own (no VMs): the simulator answers across
// the veth from its namespace, the host's default route points there, and
// closing — or its stdin ending, as when the test process dies — removes the
// process, the namespace and the veth pair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { program, requirePrereqs, root } from './prereq.ts';
import { startTopology } from './topology.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const links = (): string => execFileSync('ip', ['-o', 'link', 'show']).toString();

test('the simulator plays the internet: its own namespace behind a veth, the default route, driven over its control API; close leaves nothing', { timeout: 120_000 }, async (t) => {
  if (!requirePrereqs(t, root, program('ip'), program('unshare'), program('nsenter'))) return;
  const net = await startTopology(t, { org: 'topo' });
  assert.notEqual(readlinkSync(`/proc/${net.pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the simulator has a namespace of its own');
  assert.match(execFileSync('ip', ['-4', 'route', 'show', 'default']).toString(), new RegExp(`via ${net.internetAddress.replaceAll('.', '\\.')} `));
  assert.equal(net.sim.apiUrl, net.simUrl);

  const { jobId } = await net.sim.queueJob({ repo: 'app', labels: ['self-hosted'] });
  assert.deepEqual(net.sim.jobs().map((j) => [j.id, j.status]), [[jobId, 'queued']], 'a synchronous read sees the job at once');
  net.sim.faults.set({ webhooks: { drop: 1 } });
  assert.throws(() => net.sim.faults.set({ serverErrors: { count: 1, match: '(' } }), /422 .*bad faults/, 'a refused fault fails the call that set it');
  await net.sim.cancelJob(jobId);
  await net.sim.settled();
  assert.equal(net.sim.jobs()[0]?.conclusion, 'cancelled');

  assert.match(links(), /flint-up\d+@/);
  await net.close();
  assert.equal(alive(net.pid), false, 'the simulator process is gone');
  assert.doesNotMatch(links(), /flint-up\d+@/, 'the veth pair went with the namespace');
  assert.equal(execFileSync('ip', ['-4', 'route', 'show', 'default']).toString().trim(), '', 'and the default route with it');
  assert.throws(() => net.sim.jobs(), /closed/);
  await net.close(); // idempotent
});
