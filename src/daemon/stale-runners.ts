/**
 * The "stale-runners" loop: runner registrations in GitHub that carry a
 * Flint instance tag (`flint-<instance>-…`) but have no live VM behind them
 * — left by a crash, a VM that failed to boot, or a deletion that failed —
 * are removed, so GitHub never hands a job to a runner that will not come.
 * Runners Flint did not create, and runners of instances it does not know,
 * are never touched. A busy runner is left alone (GitHub would refuse anyway).
 *
 * Alone (SQLite), a host judges its own instance's registrations by its own
 * live VMs. In a fleet (PostgreSQL) the loop runs on the leader only, once
 * per fleet: it judges the registrations of every host on record (and its
 * own) by every host's unfinished VM records, so the fleet lists runners
 * once per interval whatever its size.
 *
 * No grace is needed for a VM being started: its record is written before
 * its runner is registered (the supervisor inserts it, then asks for the
 * JIT config), and the live VMs are read after the (slow) listing, so a
 * registration in the listing has its record in that read, unless the VM
 * has ended — and then the registration is stale.
 */
import { runnerName } from '../core/ids.ts';
import type { GitHubPort, RunnerScope } from './ports/github.ts';
import type { Logger } from './vm/supervisor.ts';
import type { FleetStore } from './ports/fleet.ts';
import type { VmStore } from './vm/vm-store.ts';

/** The fleet-wide view the leader judges by (PostgreSQL). */
export interface StaleRunnerFleet {
  /** Instance ids of every host on record (FleetStore.hosts()). */
  instanceIds(): Promise<readonly string[]>;
  /** Ids of the VMs of these instances whose records are not finished (any host's). */
  liveVmIds(instanceIds: readonly string[]): Promise<ReadonlySet<string>>;
}

export interface StaleRunnerDeps {
  readonly github: Pick<GitHubPort, 'listRunners' | 'deleteRunner'>;
  readonly instanceId: string;
  /** Ids of this host's VMs alive right now. */
  readonly liveVmIds: () => ReadonlySet<string>;
  /** With a fleet: every host's registrations, judged by every host's VM records. */
  readonly fleet?: StaleRunnerFleet;
  readonly logger: Logger;
}

const ORG: RunnerScope = { kind: 'organization' };

export async function removeStaleRunners(deps: StaleRunnerDeps): Promise<string[]> {
  const runners = await deps.github.listRunners(ORG);
  // Read the live sets after the (slow) listing: a VM started meanwhile is in them.
  const instances = [...new Set([deps.instanceId, ...(deps.fleet === undefined ? [] : await deps.fleet.instanceIds())])];
  const live = new Set([...deps.liveVmIds()].map((id) => runnerName(id)));
  if (deps.fleet !== undefined) for (const id of await deps.fleet.liveVmIds(instances)) live.add(runnerName(id));
  const prefixes = instances.map((i) => runnerName(`${i}-`));
  const removed: string[] = [];
  for (const r of runners) {
    if (!prefixes.some((p) => r.name.startsWith(p)) || live.has(r.name) || r.busy) continue;
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

/** The fleet-wide view from the fleet's heartbeats and the shared VM records. */
export function fleetStaleView(fleet: Pick<FleetStore, 'hosts'>, vms: Pick<VmStore, 'listUnfinished'>): StaleRunnerFleet {
  return {
    instanceIds: async () => (await fleet.hosts()).map((h) => h.id),
    async liveVmIds(instanceIds) {
      const records = await Promise.all(instanceIds.map((id) => vms.listUnfinished(id)));
      return new Set(records.flat().map((r) => r.id));
    },
  };
}
