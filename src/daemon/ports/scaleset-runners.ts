/**
 * How the scheduler registers and removes the runners of a definition in
 * scale-set mode: JIT configs from the scale set (`generatejitconfig`) and
 * the service's agent DELETE, instead of the REST JIT endpoint. The rest of
 * the runner's life (VM, config drive, markers) is the same.
 */
import type { JitRunner } from './github.ts';

export interface ScaleSetRunners {
  /** Registers runner `name` in the definition's scale set and returns its JIT config (secret: the config drive only). */
  createJitRunner(definition: string, name: string): Promise<JitRunner>;
  /** Removes the runner; one the service no longer knows counts as removed. FLINT_ERR_GITHUB_RUNNER_BUSY while it runs a job. */
  deleteRunner(definition: string, runnerId: number): Promise<void>;
}
