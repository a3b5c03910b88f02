/**
 * The composition root's taps on the running state for metrics and
 * readiness (http/metrics.ts, http/readiness.ts): decorators of the ports
 * the scheduler uses, so neither the scheduler nor the supervisor knows
 * that anyone measures them.
 */
import type { VmLauncher } from '../daemon/scheduler.ts';
import type { GitHubPort } from '../daemon/ports/github.ts';
import type { GitHubObserver } from '../daemon/ports/observer.ts';
import type { JobRecordStore } from '../daemon/ports/store.ts';
import { isFlintError } from '../core/errors/index.ts';
import type { FlintMetrics } from './http/metrics.ts';
import type { HypervisorUsability } from './http/readiness.ts';

/** Ends of a VM that say the hypervisor could not run it (not the host side, not the guest's job). */
const HYPERVISOR_FAILURES: ReadonlySet<string> = new Set(['FLINT_ERR_VM_START_FAILED', 'FLINT_ERR_VM_BOOT_TIMEOUT']);

/** One GitHub observer telling several. */
export function everyObserver(...observers: readonly GitHubObserver[]): GitHubObserver {
  return { answered: (a) => { for (const o of observers) o.answered(a); } };
}

/**
 * The launcher, measured: prepare time (launch → VMM started) and boot time
 * (VMM started → booted marker) from the VM's state changes on the root's
 * clock, each VM's end, and for readiness whether the hypervisor boots VMs.
 */
export function observedLauncher(
  launcher: VmLauncher, deps: { readonly metrics: FlintMetrics; readonly hypervisor: HypervisorUsability; readonly clock: { now(): number } },
): VmLauncher {
  const { metrics, hypervisor, clock } = deps;
  return {
    async launch(runner, guestEnv, options) {
      const launchedAt = clock.now();
      const vm = await launcher.launch(runner, guestEnv, options);
      const def = runner.name;
      let startedAt: number | undefined;
      let booted = false;
      let bootSampled = false;
      const onState = (state: string): void => {
        if (state === 'booting' && startedAt === undefined) {
          startedAt = clock.now();
          metrics.vmPrepared(def, (startedAt - launchedAt) / 1000);
        } else if (state === 'running' && !booted) {
          booted = true;
          hypervisor.booted();
          if (startedAt !== undefined) {
            bootSampled = true;
            metrics.vmBooted(def, (clock.now() - startedAt) / 1000);
          }
        }
      };
      const off = vm.onState(onState);
      // A state reached before the listener was attached is read from the handle.
      if (vm.state !== 'preparing') onState(vm.state);
      void vm.ended.then((outcome) => {
        off();
        const { record } = outcome;
        // Fallbacks from the record, for the rare VM whose changes came before the listener.
        if (startedAt === undefined && record.prepareMs !== null) metrics.vmPrepared(def, record.prepareMs / 1000);
        if (!booted && record.bootedAt !== null) hypervisor.booted();
        if (!bootSampled && record.bootedAt !== null && record.startedAt !== null) metrics.vmBooted(def, (record.bootedAt - record.startedAt) / 1000);
        if (record.bootedAt === null && outcome.code !== undefined && HYPERVISOR_FAILURES.has(outcome.code)) hypervisor.failedToBoot(outcome.code);
        metrics.vmEnded(def, record.state);
      });
      return vm;
    },
  };
}

/** JIT registrations counted by definition and outcome. */
export function countedJitRunners(create: GitHubPort['createJitRunner'], metrics: FlintMetrics, definitionOf: (runnerName: string) => string | undefined): GitHubPort['createJitRunner'] {
  return async (req) => {
    const definition = definitionOf(req.name) ?? 'unknown';
    try {
      const jit = await create(req);
      metrics.jitRegistration(definition, 'ok');
      return jit;
    } catch (err) {
      metrics.jitRegistration(definition, isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL');
      throw err;
    }
  };
}

/** On a job's in_progress: its queued → running latency from the job record. Never throws (a failed read is one sample lost). */
export async function observeJobStarted(records: Pick<JobRecordStore, 'getJobRecord'>, metrics: FlintMetrics, jobId: number): Promise<void> {
  const r = await records.getJobRecord(jobId).catch(() => undefined);
  if (r === undefined || r.at.queued === null || r.at.jobStarted === null) return;
  metrics.jobStarted(r.definition, (r.at.jobStarted - r.at.queued) / 1000);
}
