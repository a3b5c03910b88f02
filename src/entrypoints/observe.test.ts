import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunnerConfig } from '../config/types.ts';
import type { VmState } from '../core/vm-state.ts';
import type { VmHandle, VmOutcome } from '../daemon/vm/supervisor.ts';
import { newVmRecord } from '../daemon/vm/vm-store.ts';
import { createMetrics } from './http/metrics.ts';
import { HypervisorUsability } from './http/readiness.ts';
import { observedLauncher } from './observe.ts';
import { parsePrometheusText, sampleValue } from '../../test/helpers/prom-text.ts';

/** A VM handle whose state changes the test drives. */
function scriptedVm(runner: string) {
  const listeners = new Set<(s: VmState) => void>();
  let end: (o: VmOutcome) => void = () => undefined;
  const ended = new Promise<VmOutcome>((r) => { end = r; });
  const vm = {
    id: 'vm-1', runner, state: 'preparing' as VmState, ended,
    onConsole: () => () => undefined, onMarker: () => () => undefined,
    onState(l: (s: VmState) => void) { listeners.add(l); return () => listeners.delete(l); },
    writeConsole: () => undefined,
    stop: () => ended,
  } satisfies VmHandle;
  const move = (s: VmState): void => { vm.state = s; for (const l of listeners) l(s); };
  const finish = (state: VmState, code?: VmOutcome['code']): void => {
    move(state);
    const record = { ...newVmRecord({ id: vm.id, instanceId: 'ob', runner, hypervisor: 'qemu', workDir: '/nonexistent', createdAt: 0 }), state };
    end(code === undefined ? { record } : { record, code });
  };
  return { vm, move, finish };
}

async function setup() {
  let now = 1_000_000;
  const metrics = createMetrics({ processMetrics: false });
  const hypervisor = new HypervisorUsability(() => now);
  const scripted = scriptedVm('small');
  const launcher = observedLauncher({ launch: async () => scripted.vm }, { metrics, hypervisor, clock: { now: () => now } });
  const launch = () => launcher.launch({ name: 'small' } as RunnerConfig, {}); // only the name is read
  return { metrics, hypervisor, scripted, launch, advance: (ms: number) => { now += ms; } };
}

test('prepare and boot times come from the VM\'s state changes on the root\'s clock', async () => {
  const { metrics, scripted, launch, advance } = await setup();
  await launch();
  advance(1500);
  scripted.move('booting');
  advance(2500);
  scripted.move('running');
  scripted.finish('stopped');
  await scripted.vm.ended;
  await new Promise((r) => setImmediate(r));
  const m = parsePrometheusText((await metrics.scrape()).body);
  assert.equal(sampleValue(m, 'flint_vm_prepare_seconds_sum', { definition: 'small' }), 1.5);
  assert.equal(sampleValue(m, 'flint_vm_boot_seconds_sum', { definition: 'small' }), 2.5);
  assert.equal(sampleValue(m, 'flint_vm_boot_seconds_count', { definition: 'small' }), 1, 'sampled once, not again from the record');
  assert.equal(sampleValue(m, 'flint_vms_ended_total', { definition: 'small', state: 'stopped' }), 1);
});

test('a VMM that would not start marks the hypervisor unusable for /readyz', async () => {
  const { hypervisor, scripted, launch } = await setup();
  await launch();
  scripted.finish('failed', 'FLINT_ERR_VM_START_FAILED');
  await scripted.vm.ended;
  await new Promise((r) => setImmediate(r));
  assert.equal(hypervisor.check().ok, false);
});
