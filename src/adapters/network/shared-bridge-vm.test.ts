/**
 * Issue 12's done-when with real VMs: two Flints (own instance ids, own
 * state directories, one claims directory as on one host) on one bridge
 * with disjoint `range`s each boot a QEMU guest of the test image at the
 * same time; both guests get distinct addresses from their own range and
 * reach their gateway. Runs in the test runner's private network namespace;
 * shared-bridge.test.ts covers the refusals with guests played on taps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { file, program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import type { Prerequisite } from '../../../test/helpers/prereq.ts';
import { leftovers, makeRealSystem } from '../../../test/vm/real-system.ts';
import type { RealSystem } from '../../../test/vm/real-system.ts';
import { consoleLogPath } from '../../daemon/vm/console-log.ts';
import type { VmHandle } from '../../daemon/vm/supervisor.ts';

const privateNetns: Prerequisite = {
  what: 'the private network namespace of scripts/test.mjs',
  ok: () => process.env.FLINT_TEST_NETNS === '1',
  install: 'run through `node scripts/test.mjs` as root (it runs the tests under `unshare -n`)',
};
const prereqs = [root, privateNetns, program('qemu-system-x86_64'), program('mkfs.ext4'), program('ip'), program('nft'),
  file('/dev/net/tun', 'load the tun module (modprobe tun)')];

const SUBNET = '221.10';
const BRIDGE = 'flbshared';
/**
 * A TCP port of the gateway the test listens on once both guests run (see
 * GUEST_COMMAND); the network's `hostPorts` opens it to the guests, which
 * reach nothing else of the host.
 */
const GATE_PORT = 7700;
const RANGES = { lsb1: [2, 9], lsb2: [10, 19] } as const;

/**
 * Reaches the gateway, prints the guest's address to the console, then
 * waits for the gate: the test opens it only once both guests run their
 * runner, so the two VMs are up at the same time whatever the boot times
 * on a busy host. Exit 7 only after all of it (3 minutes at most).
 */
const GUEST_COMMAND = [
  `ping -c 1 -W 5 10.${SUBNET}.1 >/dev/null || exit 1`,
  'ip -4 addr show dev eth0',
  'end=$(($(date +%s) + 180))',
  `until echo | nc -w 1 10.${SUBNET}.1 ${GATE_PORT} >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || exit 2; sleep 1; done`,
  'exit 7',
].join('\n');

function lastOctet(address: string): number {
  return Number(address.split('.')[3]);
}

/** Resolves when the guest's runner command has started; rejects when the VM ends first. */
function runnerStarted(vm: VmHandle): Promise<void> {
  return new Promise((resolve, reject) => {
    const off = vm.onMarker((m) => { if (m.kind === 'runner-started') { off(); resolve(); } });
    void vm.ended.then(({ record }) => { off(); reject(new Error(`${vm.id} ended ${record.state} before its runner started: ${record.reason ?? ''}`)); });
  });
}

test('two Flints on one bridge with disjoint ranges: real guests of both boot at once, get distinct addresses from their ranges and reach their gateway', async (t) => {
  if (!requirePrereqs(t, ...prereqs)) return;
  const runDir = mkdtempSync(join(tmpdir(), 'flint-run-'));
  const systems: RealSystem[] = [];
  // One hook, in this order: the VMs and claims go before the bridge, the claims file last.
  t.after(async () => {
    for (const s of systems) await s.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });
  for (const [instanceId, [first, last]] of Object.entries(RANGES)) {
    systems.push(await makeRealSystem({
      instanceId, subnet: SUBNET, bridge: BRIDGE, runDir, hostPorts: [GATE_PORT], range: { first: `10.${SUBNET}.${first}`, last: `10.${SUBNET}.${last}` },
    }));
  }
  const [a, b] = systems;
  assert.ok(a !== undefined && b !== undefined);
  // Both started: each holds a claim of the bridge in the one claims file.
  assert.deepEqual(a.claims?.list().map((c) => `${c.bridge} ${c.instanceId}`).sort(), [`${BRIDGE} lsb1`, `${BRIDGE} lsb2`]);

  const vms = await Promise.all(systems.map(async (s) => s.supervisor.launch(await s.runner(), { FLINT_RUNNER_COMMAND: GUEST_COMMAND })));
  const [vmA, vmB] = vms;
  assert.ok(vmA !== undefined && vmB !== undefined);
  await Promise.all(vms.map(runnerStarted));

  // Both guests run now; their leases, each in its own instance's store.
  const addressOf = (s: RealSystem, vm: VmHandle): string => {
    const leased = s.leases.forVm(vm.id).map((l) => l.address);
    assert.equal(leased.length, 1, `${vm.id} holds one lease: ${leased.join(' ')}`);
    return leased[0] ?? '';
  };
  const addrA = addressOf(a, vmA);
  const addrB = addressOf(b, vmB);
  assert.notEqual(addrA, addrB);
  assert.ok(lastOctet(addrA) >= RANGES.lsb1[0] && lastOctet(addrA) <= RANGES.lsb1[1], `${addrA} is in lsb1's range`);
  assert.ok(lastOctet(addrB) >= RANGES.lsb2[0] && lastOctet(addrB) <= RANGES.lsb2[1], `${addrB} is in lsb2's range`);

  // A guest that powered off never closes its side: the test ends what is left.
  const connections = new Set<Socket>();
  const gate = createServer((socket) => { connections.add(socket); socket.on('close', () => connections.delete(socket)); socket.end(); });
  t.after(() => new Promise<void>((resolve) => { gate.close(() => resolve()); for (const c of connections) c.destroy(); }));
  await new Promise<void>((resolve) => gate.listen(GATE_PORT, `10.${SUBNET}.1`, resolve));
  const [endA, endB] = await Promise.all(vms.map((vm) => vm.ended));
  assert.ok(endA !== undefined && endB !== undefined);
  for (const [s, vm, { record }, address] of [[a, vmA, endA, addrA], [b, vmB, endB, addrB]] as const) {
    assert.equal(record.state, 'stopped', `${vm.id}: ${record.reason ?? ''}\n${s.logger.text()}`);
    assert.equal(record.runnerExitCode, 7, `${vm.id} reached its gateway and the gate (exit 7 only then)`);
    // The guest itself says which address it had.
    const log = readFileSync(consoleLogPath(s.stateDir, vm.id), 'latin1');
    assert.match(log, new RegExp(`FLINT-MARKER runner-started[\\s\\S]*inet ${address.replaceAll('.', '\\.')}/24[\\s\\S]*FLINT-MARKER runner-exited code=7`));
    t.diagnostic(`${vm.id}: ${address}, prepare ${record.prepareMs} ms, launch→booted ${(record.bootedAt ?? 0) - record.createdAt} ms, total ${(record.endedAt ?? 0) - record.createdAt} ms`);
  }
  // At once: each guest had booted before the other ended.
  assert.ok((endA.record.bootedAt ?? Infinity) < (endB.record.endedAt ?? 0) && (endB.record.bootedAt ?? Infinity) < (endA.record.endedAt ?? 0));

  // Torn down: no tap, lease, work dir or VM process; once closed, no claim.
  for (const s of systems) await s.close();
  assert.deepEqual([...leftovers(a, [vmA.id]), ...leftovers(b, [vmB.id])], []);
});
