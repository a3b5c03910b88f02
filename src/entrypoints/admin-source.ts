/**
 * The running daemon as the admin socket sees it: the AdminSource the
 * composition root hands to entrypoints/http/admin.ts, gathering the inputs
 * of the status snapshot (daemon/status.ts) from the scheduler, the
 * supervisor, the stores and the loops.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlintConfig } from '../config/types.ts';
import type { HostBudget } from '../core/capacity.ts';
import { FlintError } from '../core/errors/index.ts';
import type { LoopStatus } from '../daemon/loop.ts';
import type { FleetStore } from '../daemon/ports/fleet.ts';
import type { WorkClaims } from '../daemon/ports/work-claims.ts';
import type { IntakeStore, JobRecord, JobRecordStore } from '../daemon/ports/store.ts';
import type { Scheduler } from '../daemon/scheduler.ts';
import { buildStatus, fleetView, jobViews, vmViews } from '../daemon/status.ts';
import type { FleetInputs, StatusInputs } from '../daemon/status.ts';
import type { VmSupervisor } from '../daemon/vm/supervisor.ts';
import type { AdminServerOptions, AdminSource } from './http/admin.ts';
import { resolveGroup } from './http/admin.ts';

/** Jobs the status snapshot shows. */
const STATUS_JOBS = 50;
/** Most jobs `GET /jobs` answers with. */
const MAX_JOBS = 1000;

/** Where the admin socket goes and who may use it, from the configuration. */
export function adminSocketSettings(config: Pick<FlintConfig, 'admin' | 'runDir'>, groupFile: () => string = () => readFileSync('/etc/group', 'utf8')):
  Pick<AdminServerOptions, 'path' | 'gid'> {
  const path = config.admin?.socket ?? join(config.runDir, 'admin.sock');
  const group = config.admin?.group;
  if (group === undefined) return { path };
  const gid = resolveGroup(group, typeof group === 'number' ? '' : groupFile());
  if (gid === undefined) {
    throw new FlintError('FLINT_ERR_ADMIN_SOCKET_FAILED', `admin.group "${String(group)}" is not a group of this host`, {
      hint: 'Create the group (groupadd flint-admin), or set admin.group to an existing group name or gid.',
    });
  }
  return { path, gid };
}

export interface AdminSourceDeps {
  readonly config: Pick<FlintConfig, 'instanceId' | 'runners'>;
  readonly scheduler: Scheduler;
  readonly supervisor: VmSupervisor;
  readonly store: Pick<IntakeStore, 'countJobsByDefinition'>;
  readonly records: Pick<JobRecordStore, 'listJobRecords'>;
  readonly loops: () => LoopStatus[];
  readonly clock: { now(): number };
  readonly capacity: () => { readonly limit: HostBudget; readonly free: HostBudget };
  /** True once the SIGTERM drain began. */
  readonly shuttingDown: () => boolean;
  /** The fleet's records (PostgreSQL store); absent on SQLite. */
  readonly fleet?: FleetSourceDeps;
}

export interface FleetSourceDeps {
  readonly store: Pick<FleetStore, 'hosts' | 'lease'>;
  /** Claims per host, when the fleet shares work through claims. */
  readonly claims?: Pick<WorkClaims, 'claimsByHost'>;
  readonly leaseName: string;
  readonly heartbeatMs: number;
  readonly lostAfterMs: number;
}

/** The fleet's rows read now: three small queries, at each snapshot (never cached, so a lost host shows as it goes). */
export async function readFleet(f: FleetSourceDeps, now: number): Promise<FleetInputs> {
  const [hosts, lease, claims] = await Promise.all([f.store.hosts(), f.store.lease(f.leaseName), f.claims?.claimsByHost(now)]);
  return { hosts, lease, heartbeatMs: f.heartbeatMs, lostAfterMs: f.lostAfterMs, ...(claims === undefined ? {} : { claims }) };
}

function unique(jobs: readonly JobRecord[]): JobRecord[] {
  return [...new Map(jobs.map((j) => [j.jobId, j])).values()];
}

export function daemonAdminSource(deps: AdminSourceDeps): AdminSource {
  const { scheduler, supervisor, records, clock } = deps;
  const inputs = async (jobLimit: number, withFleet: boolean): Promise<StatusInputs> => {
    const now = clock.now();
    const fleet = deps.fleet === undefined || !withFleet ? undefined : await readFleet(deps.fleet, now);
    return {
      now,
      instanceId: deps.config.instanceId,
      shuttingDown: deps.shuttingDown() || scheduler.isDraining(),
      paused: scheduler.paused(),
      definitions: deps.config.runners,
      queued: await deps.store.countJobsByDefinition('queued'),
      runners: scheduler.snapshot(),
      health: scheduler.health(),
      vms: supervisor.describe(),
      runnerPhases: scheduler.runnerPhases(),
      // The newest jobs, and every running one (a long job's VM still shows what it runs).
      jobs: unique([...await records.listJobRecords({ limit: jobLimit }), ...await records.listJobRecords({ status: 'in_progress' })]),
      loops: deps.loops(),
      capacity: deps.capacity(),
      ...(fleet === undefined ? {} : { fleet }),
    };
  };
  return {
    status: async () => buildStatus(await inputs(STATUS_JOBS, true)),
    vms: async () => vmViews(await inputs(STATUS_JOBS, false)),
    hosts: async () => {
      if (deps.fleet === undefined) return null;
      const now = clock.now();
      return fleetView(await readFleet(deps.fleet, now), now, deps.config.instanceId);
    },
    jobs: async (since) => jobViews(await records.listJobRecords({ limit: MAX_JOBS }), since),
    consoleLog: (id) => ({ path: supervisor.consoleLogPath(id), live: supervisor.list().find((vm) => vm.id === id) }),
    drain: (definition) => (scheduler.pause(definition) ? scheduler.paused() : undefined),
    resume: (definition) => (scheduler.resume(definition) ? scheduler.paused() : undefined),
  };
}
