/**
 * A Flint that will be killed with SIGKILL while its VM boots: builds the
 * real VM system on the state dir it is given, launches one VM, prints
 * `BOOTING <vm id> <pid>` once the VMM runs, and waits to be killed.
 *
 *   tsx test/vm/crash-child.ts '{"instanceId":"…","subnet":"…","stateDir":"…","hypervisor":"qemu"}'
 */
import { makeRealSystem } from './real-system.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as { instanceId: string; subnet: string; stateDir: string; hypervisor: 'qemu' | 'firecracker' }; // written by the test that spawns us
const sys = await makeRealSystem(opts);
const runner = await sys.runner({ hypervisor: opts.hypervisor });
const vm = await sys.supervisor.launch(runner, { FLINT_RUNNER_COMMAND: 'sleep 600' });
vm.onState((s) => {
  if (s === 'booting') {
    void sys.store.get(vm.id).then((r) => process.stdout.write(`BOOTING ${vm.id} ${r?.pid ?? 0}\n`));
  }
});
setInterval(() => {}, 1 << 30);
