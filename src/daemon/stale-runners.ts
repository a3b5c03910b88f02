/**
 * The "stale-runners" loop: runner registrations in GitHub that carry this
 * instance's tag (`flint-<instance>-…`) but have no live VM behind them —
 * left by a crash, a VM that failed to boot, or a deletion that failed — are
 * removed, so GitHub never hands a job to a runner that will not come.
 * Runners of other Flint instances and runners Flint did not create are
 * never touched. A busy runner is left alone (GitHub would refuse anyway).
 */
import { runnerName } from '../core/ids.ts';
import type { GitHubPort, RunnerScope } from './ports/github.ts';
import type { Logger } from './vm/supervisor.ts';

export interface StaleRunnerDeps {
  readonly github: Pick<GitHubPort, 'listRunners' | 'deleteRunner'>;
  readonly instanceId: string;
  /** Ids of the VMs alive right now. */
  readonly liveVmIds: () => ReadonlySet<string>;
  readonly logger: Logger;
}

const ORG: RunnerScope = { kind: 'organization' };

export async function removeStaleRunners(deps: StaleRunnerDeps): Promise<string[]> {
  const prefix = runnerName(`${deps.instanceId}-`);
  const runners = await deps.github.listRunners(ORG);
  // Read the live set after the (slow) listing: a VM started meanwhile is in it.
  const live = new Set([...deps.liveVmIds()].map((id) => runnerName(id)));
  const removed: string[] = [];
  for (const r of runners) {
    if (!r.name.startsWith(prefix) || live.has(r.name) || r.busy) continue;
    try {
      await deps.github.deleteRunner(ORG, r.id);
      removed.push(r.name);
    } catch (err) {
      deps.logger.warn({ err, runner: r.name }, 'stale-runners: could not remove a runner registration');
    }
  }
  if (removed.length > 0) deps.logger.info({ runners: removed }, 'stale-runners: removed registrations without a VM');
  return removed;
}
