/**
 * The "fleet-reaper" loop (docs/fleet.md, "When a host dies"): on the
 * fleet's leader only, every heartbeat interval, each other host whose
 * last heartbeat is older than `hostLostMs` and that is not marked lost yet
 * is marked lost (FleetStore.markLost: its unfinished VM records fail, its
 * runners' rows come back), and the runner registrations those rows name
 * are deleted from GitHub — through the scale set for a scale-set
 * definition — so GitHub hands no job to a runner whose VM is gone.
 *
 * A registration GitHub refuses to delete because its runner is busy is
 * left: the job it runs fails at GitHub when the runner stops answering,
 * and the host's own stale-runners loop removes the registration if that
 * host starts again. Claims of a dead host's work need nothing here: they
 * expire on their own. Safe to repeat: a host already marked is skipped by
 * the store, and the mark is re-checked against the heartbeat in the same
 * transaction, so a host that came back in between is left alone.
 */
import { isFlintError } from '../core/errors/index.ts';
import { FLEET_DEFAULTS } from './fleet.ts';
import type { FleetStore, LostHost } from './ports/fleet.ts';
import type { GitHubPort, RunnerScope } from './ports/github.ts';
import type { ScaleSetRunners } from './ports/scaleset-runners.ts';
import { startLoop } from './loop.ts';
import type { Loop, LoopTimers } from './loop.ts';

export interface FleetReaperLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FleetReaperDeps {
  readonly fleet: Pick<FleetStore, 'hosts' | 'markLost'>;
  /** This host's instance id: never marked by itself. */
  readonly hostId: string;
  readonly github: Pick<GitHubPort, 'deleteRunner'>;
  /** The scale-set runners, when some definition is in scale-set mode. */
  readonly scaleSets?: ScaleSetRunners;
  /** True for a definition in scale-set mode (its runners are removed through its scale set). */
  readonly isScaleSet: (definition: string) => boolean;
  readonly clock: { now(): number };
  readonly logger: FleetReaperLogger;
  /** A host silent this long is lost; default FLEET_DEFAULTS.hostLostMs. */
  readonly hostLostMs?: number;
}

const ORG: RunnerScope = { kind: 'organization' };

/** What one lost host's registrations came to. */
export interface ReapedHost extends LostHost {
  /** GitHub runner ids deleted (or already gone). */
  readonly deleted: readonly number[];
  /** Left because GitHub says the runner is busy. */
  readonly busy: readonly number[];
  /** Left because the deletion failed otherwise. */
  readonly failed: readonly number[];
}

/** One pass: marks every other silent host lost and removes its registrations. */
export async function reapLostHosts(d: FleetReaperDeps): Promise<ReapedHost[]> {
  const lostMs = d.hostLostMs ?? FLEET_DEFAULTS.hostLostMs;
  const now = d.clock.now();
  const cutoff = now - lostMs;
  const reaped: ReapedHost[] = [];
  for (const h of await d.fleet.hosts()) {
    if (h.id === d.hostId || h.lostAt !== undefined || h.lastHeartbeatAt >= cutoff) continue;
    // The store re-checks the heartbeat against the cut-off: a host that spoke since the read is not marked.
    const lost = await d.fleet.markLost(h.id, cutoff, now);
    if (lost === undefined) continue;
    const deleted: number[] = [];
    const busy: number[] = [];
    const failed: number[] = [];
    for (const r of lost.runners) {
      if (r.githubRunnerId === null) continue;
      try {
        if (d.isScaleSet(r.definition) && d.scaleSets !== undefined) await d.scaleSets.deleteRunner(r.definition, r.githubRunnerId);
        else await d.github.deleteRunner(ORG, r.githubRunnerId);
        deleted.push(r.githubRunnerId);
      } catch (err) {
        if (isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_BUSY')) {
          busy.push(r.githubRunnerId);
          d.logger.info({ host: lost.hostId, vmId: r.vmId, runnerId: r.githubRunnerId },
            'fleet-reaper: a lost host\'s runner is busy at GitHub; its registration is left (the job fails there when the runner stops answering)');
        } else {
          failed.push(r.githubRunnerId);
          d.logger.warn({ host: lost.hostId, vmId: r.vmId, runnerId: r.githubRunnerId, err },
            'fleet-reaper: could not remove a lost host\'s runner registration; the host\'s stale-runners loop removes it if the host starts again');
        }
      }
    }
    d.logger.warn({
      host: lost.hostId, lastHeartbeatAt: lost.lastHeartbeatAt, silentMs: now - lost.lastHeartbeatAt, vms: lost.failedVms.length,
      runners: lost.runners.length, registrationsDeleted: deleted.length, registrationsBusy: busy.length, registrationsFailed: failed.length,
    }, 'fleet-reaper: host lost: its VM records are failed and its runners removed');
    reaped.push({ ...lost, deleted, busy, failed });
  }
  return reaped;
}

export interface FleetReaperLoopDeps extends FleetReaperDeps {
  /** Default FLEET_DEFAULTS.heartbeatMs. */
  readonly intervalMs?: number;
  /** The fleet's leader only (loop.ts `gate`). */
  readonly gate?: () => boolean;
  readonly timers?: LoopTimers;
}

export function startFleetReaper(d: FleetReaperLoopDeps): Loop {
  return startLoop({
    name: 'fleet-reaper', intervalMs: d.intervalMs ?? FLEET_DEFAULTS.heartbeatMs, runAtStart: true, logger: d.logger, now: () => d.clock.now(),
    run: () => reapLostHosts(d),
    ...(d.gate === undefined ? {} : { gate: d.gate }),
    ...(d.timers === undefined ? {} : { timers: d.timers }),
  });
}
