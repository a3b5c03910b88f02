import { test } from 'node:test';
import { fakeTime } from '../../test/fakes/fake-time.ts';
import assert from 'node:assert/strict';
import { createMemoryFleet } from '../adapters/store/memory-fleet.ts';
import { createMemoryRunnerStates } from '../adapters/store/memory-runner-states.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { MemoryVmStore } from '../../test/fakes/memory-vm-store.ts';
import { FLEET_DEFAULTS } from './fleet.ts';
import { reapLostHosts, startFleetReaper } from './fleet-reaper.ts';
import type { FleetReaperDeps } from './fleet-reaper.ts';
import { lostHostReason } from './ports/fleet.ts';
import type { ScaleSetRunners } from './ports/scaleset-runners.ts';
import { newVmRecord } from './vm/vm-store.ts';

const cap = { vcpus: 4, memoryMib: 4096 };

function logs() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  return {
    lines,
    info: (obj: object, msg: string) => { lines.push({ level: 'info', obj: { ...obj }, msg }); },
    warn: (obj: object, msg: string) => { lines.push({ level: 'warn', obj: { ...obj }, msg }); },
  };
}

/** Host `b2` runs a VM whose runner is registered and idle, and one whose runner is busy at GitHub; host `c3` runs one. */
async function world(time: ReturnType<typeof fakeTime>) {
  const vms = new MemoryVmStore();
  const runnerStates = createMemoryRunnerStates();
  const fleet = createMemoryFleet({ vms, runnerStates });
  const github = new MemoryGitHub();
  const ids: Record<string, number> = {};
  for (const [host, vmId, definition] of [['b2', 'b2-0', 'small'], ['b2', 'b2-1', 'small'], ['c3', 'c3-0', 'small']] as const) {
    await vms.insert(newVmRecord({ id: vmId, instanceId: host, runner: definition, hypervisor: 'qemu', workDir: `/state/vms/${vmId}`, createdAt: time.now() }));
    await vms.update(vmId, 'preparing', { state: 'running' });
    const jit = await github.createJitRunner({ scope: { kind: 'organization' }, name: `flint-${vmId}`, runnerGroupId: 1, labels: ['small'] });
    ids[vmId] = jit.runnerId;
    await runnerStates.put({ vmId, instanceId: host, definition, phase: 'idle', githubRunnerId: jit.runnerId, idleSince: time.now(), startedAt: time.now() });
  }
  const busyRunner = ids['b2-1'] ?? 0;
  github.takeJob(busyRunner, github.queueJob('app', ['small']));
  for (const host of ['a1', 'b2', 'c3']) await fleet.heartbeat({ id: host, capacity: cap, vms: 1 }, time.now());
  return { vms, runnerStates, fleet, github, ids };
}

const registrations = async (github: MemoryGitHub) => (await github.listRunners({ kind: 'organization' })).map((r) => r.name).sort();

test('a host silent for hostLostMs is marked lost by the leader: its VM records fail, its runner states go and its registrations are removed, but a busy one', async () => {
  const time = fakeTime();
  const w = await world(time);
  const log = logs();
  const reaper = startFleetReaper({
    fleet: w.fleet, hostId: 'a1', github: w.github, isScaleSet: () => false, clock: { now: time.now }, logger: log, timers: time, gate: () => true,
  });
  try {
    await time.advance(0);
    // a1 (this host) and c3 keep heartbeating; b2 has gone silent.
    for (let t = 0; t < 9; t++) {
      await time.advance(10_000);
      for (const host of ['a1', 'c3']) await w.fleet.heartbeat({ id: host, capacity: cap, vms: 1 }, time.now());
    }
    assert.equal(time.now() - 1_000_000, FLEET_DEFAULTS.hostLostMs);
    assert.ok((await w.fleet.hosts()).every((h) => h.lostAt === undefined), 'silent for exactly hostLostMs is not yet lost');
    assert.deepEqual(await registrations(w.github), ['flint-b2-0', 'flint-b2-1', 'flint-c3-0']);
    await time.advance(10_000);
    const hosts = await w.fleet.hosts();
    assert.deepEqual(hosts.map((h) => [h.id, h.lostAt]), [['a1', undefined], ['b2', 1_100_000], ['c3', undefined]]);
    const rec = await w.vms.get('b2-0');
    assert.deepEqual([rec?.state, rec?.reason, rec?.endedAt], ['failed', lostHostReason('b2'), 1_100_000]);
    assert.equal((await w.vms.get('b2-1'))?.state, 'failed');
    assert.equal((await w.vms.get('c3-0'))?.state, 'running');
    assert.deepEqual(await w.runnerStates.list('b2'), []);
    assert.equal((await w.runnerStates.list('c3')).length, 1);
    assert.deepEqual(await registrations(w.github), ['flint-b2-1', 'flint-c3-0'], 'the busy runner is left; GitHub refuses it');
    const lost = log.lines.filter((l) => l.msg.startsWith('fleet-reaper: host lost'));
    assert.equal(lost.length, 1);
    assert.deepEqual(lost[0]?.obj, {
      host: 'b2', lastHeartbeatAt: 1_000_000, silentMs: 100_000, vms: 2, runners: 2, registrationsDeleted: 1, registrationsBusy: 1, registrationsFailed: 0,
    });
    assert.ok(log.lines.some((l) => l.level === 'info' && l.obj['runnerId'] === w.ids['b2-1'] && /busy/.test(l.msg)));
    // Later passes change nothing: the host is marked already.
    await time.advance(30_000);
    assert.equal(log.lines.filter((l) => l.msg.startsWith('fleet-reaper: host lost')).length, 1);
    assert.equal((await w.fleet.hosts()).find((h) => h.id === 'b2')?.lostAt, 1_100_000);
  } finally {
    await reaper.stop();
  }
});

test('on a standby host the reaper marks nothing', async () => {
  const time = fakeTime();
  const w = await world(time);
  const reaper = startFleetReaper({
    fleet: w.fleet, hostId: 'a1', github: w.github, isScaleSet: () => false, clock: { now: time.now }, logger: logs(), timers: time, gate: () => false,
  });
  try {
    await time.advance(200_000);
    assert.ok((await w.fleet.hosts()).every((h) => h.lostAt === undefined));
    assert.equal((await w.vms.get('b2-0'))?.state, 'running');
    assert.equal(reaper.status().runs, 0);
    assert.equal(reaper.status().standby, true);
  } finally {
    await reaper.stop();
  }
});

test('the leader never marks itself, however old its own row', async () => {
  const time = fakeTime();
  const w = await world(time);
  await time.advance(500_000);
  const reaped = await reapLostHosts({ fleet: w.fleet, hostId: 'b2', github: w.github, isScaleSet: () => false, clock: { now: time.now }, logger: logs() });
  assert.deepEqual(reaped.map((r) => r.hostId), ['a1', 'c3']);
  assert.equal((await w.fleet.hosts()).find((h) => h.id === 'b2')?.lostAt, undefined);
});

test('a host that heartbeats after being marked lost is clear again, and is marked again when it goes silent again', async () => {
  const time = fakeTime();
  const w = await world(time);
  const deps: FleetReaperDeps = { fleet: w.fleet, hostId: 'a1', github: w.github, isScaleSet: () => false, clock: { now: time.now }, logger: logs(), hostLostMs: 30_000 };
  await time.advance(31_000);
  await w.fleet.heartbeat({ id: 'a1', capacity: cap, vms: 0 }, time.now());
  assert.deepEqual((await reapLostHosts(deps)).map((r) => r.hostId), ['b2', 'c3']);
  await w.fleet.heartbeat({ id: 'b2', capacity: cap, vms: 0 }, time.now());
  assert.equal((await w.fleet.hosts()).find((h) => h.id === 'b2')?.lostAt, undefined, 'it came back');
  assert.deepEqual(await reapLostHosts(deps), [], 'fresh again; c3 is marked already');
  await time.advance(31_000);
  await w.fleet.heartbeat({ id: 'a1', capacity: cap, vms: 0 }, time.now());
  assert.deepEqual((await reapLostHosts(deps)).map((r) => [r.hostId, r.runners.length]), [['b2', 0]]);
});

test('the runners of a scale-set definition are removed through its scale set; a failed removal is counted and logged', async () => {
  const time = fakeTime();
  const w = await world(time);
  await w.runnerStates.put({ vmId: 'b2-7', instanceId: 'b2', definition: 'scaled', phase: 'idle', githubRunnerId: 777, idleSince: 0, startedAt: 0 });
  await w.runnerStates.put({ vmId: 'b2-8', instanceId: 'b2', definition: 'scaled', phase: 'starting', githubRunnerId: null, idleSince: null, startedAt: 0 });
  const removed: Array<[string, number]> = [];
  const scaleSets: ScaleSetRunners = {
    createJitRunner: () => Promise.reject(new Error('not used')),
    deleteRunner: async (definition, runnerId) => { removed.push([definition, runnerId]); },
  };
  // The REST deletion of b2-0's runner fails (GitHub unreachable).
  const github = { deleteRunner: (_scope: unknown, id: number) => (id === w.ids['b2-0'] ? Promise.reject(new Error('connect ECONNREFUSED')) : w.github.deleteRunner({ kind: 'organization' }, id)) };
  const log = logs();
  await time.advance(100_000);
  await w.fleet.heartbeat({ id: 'a1', capacity: cap, vms: 0 }, time.now());
  await w.fleet.heartbeat({ id: 'c3', capacity: cap, vms: 0 }, time.now());
  const [b2] = await reapLostHosts({ fleet: w.fleet, hostId: 'a1', github, scaleSets, isScaleSet: (d) => d === 'scaled', clock: { now: time.now }, logger: log });
  assert.deepEqual(removed, [['scaled', 777]]);
  assert.deepEqual([b2?.deleted, b2?.busy, b2?.failed], [[777], [w.ids['b2-1']], [w.ids['b2-0']]]);
  assert.equal(b2?.runners.length, 4, 'the unregistered one is returned too, with nothing to delete');
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.obj['runnerId'] === w.ids['b2-0']));
});
