import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fleetStaleView, removeStaleRunners } from './stale-runners.ts';
import type { SelfHostedRunner } from './ports/github.ts';
import { newVmRecord } from './vm/vm-store.ts';
import type { VmState } from '../core/vm-state.ts';
import { createMemoryFleet } from '../adapters/store/memory-fleet.ts';
import { MemoryVmStore } from '../../test/fakes/memory-vm-store.ts';

const r = (id: number, name: string, busy = false): SelfHostedRunner => ({ id, name, os: 'linux', status: 'offline', busy, ephemeral: true, runnerGroupId: 1, labels: [] });
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('only this instance’s runners without a live VM are removed; busy, live, foreign and other-instance runners stay', async () => {
  const deleted: number[] = [];
  const removed = await removeStaleRunners({
    github: {
      listRunners: async () => [r(1, 'flint-h7-00001'), r(2, 'flint-h7-00002'), r(3, 'flint-h7-00003', true), r(4, 'flint-h7x-00001'), r(5, 'build-box'), r(6, 'flint-h8-00001')],
      deleteRunner: async (_s, id) => { deleted.push(id); },
    },
    instanceId: 'h7',
    liveVmIds: () => new Set(['h7-00002']),
    logger: quiet,
  });
  assert.deepEqual(deleted, [1]);
  assert.deepEqual(removed, ['flint-h7-00001']);
});

test('in a fleet: registrations of every host on record (and this one\'s) without an unfinished VM record are removed; one listing for the fleet', async () => {
  const fleet = createMemoryFleet();
  const vms = new MemoryVmStore();
  await fleet.heartbeat({ id: 'h7', capacity: { vcpus: 4, memoryMib: 8192 }, vms: 1 }, 1_000);
  await fleet.heartbeat({ id: 'h8', capacity: { vcpus: 4, memoryMib: 8192 }, vms: 2 }, 1_000);
  const vm = (id: string, state: VmState) => ({ ...newVmRecord({ id, instanceId: id.split('-')[0] ?? '', runner: 'small', hypervisor: 'qemu', workDir: `/w/${id}`, createdAt: 1 }), state });
  // h8 runs 00001 and is preparing 00003; its 00002 has ended. h9 has no heartbeat: not of this fleet.
  for (const r of [vm('h8-00001', 'running'), vm('h8-00002', 'stopped'), vm('h8-00003', 'preparing'), vm('h9-00001', 'stopped')]) await vms.insert(r);
  const deleted: number[] = [];
  let listings = 0;
  const removed = await removeStaleRunners({
    github: {
      listRunners: async () => {
        listings++;
        return [r(1, 'flint-h7-00001'), r(2, 'flint-h7-00002'), r(3, 'flint-h8-00001'), r(4, 'flint-h8-00002'), r(5, 'flint-h8-00003'),
          r(6, 'flint-h8-00004', true), r(7, 'flint-h9-00001'), r(8, 'flint-ld-00001'), r(9, 'flint-ld-00002'), r(10, 'build-box')];
      },
      deleteRunner: async (_s, id) => { deleted.push(id); },
    },
    // This host (the leader) is "ld": no heartbeat of its own on record yet, its live VMs from its supervisor.
    instanceId: 'ld',
    liveVmIds: () => new Set(['ld-00002']),
    fleet: fleetStaleView(fleet, vms),
    logger: quiet,
  });
  assert.equal(listings, 1);
  assert.deepEqual(deleted, [1, 2, 4, 8]);
  assert.deepEqual(removed, ['flint-h7-00001', 'flint-h7-00002', 'flint-h8-00002', 'flint-ld-00001']);
});

test('in a fleet: a VM whose record is written while the runners are listed keeps its registration', async () => {
  const fleet = createMemoryFleet();
  const vms = new MemoryVmStore();
  await fleet.heartbeat({ id: 'h8', capacity: { vcpus: 4, memoryMib: 8192 }, vms: 0 }, 1_000);
  const deleted: number[] = [];
  await removeStaleRunners({
    github: {
      listRunners: async () => {
        // Another host starts a VM and registers its runner during the listing.
        await vms.insert(newVmRecord({ id: 'h8-00007', instanceId: 'h8', runner: 'small', hypervisor: 'qemu', workDir: '/w', createdAt: 2 }));
        return [r(1, 'flint-h8-00007')];
      },
      deleteRunner: async (_s, id) => { deleted.push(id); },
    },
    instanceId: 'ld', liveVmIds: () => new Set(), fleet: fleetStaleView(fleet, vms), logger: quiet,
  });
  assert.deepEqual(deleted, []);
});
