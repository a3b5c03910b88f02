/**
 * One Flint host of the fleet benchmark (bench/fleet.ts), in a process of
 * its own: `startFlint` on the shared PostgreSQL store with its own
 * instance id and state directory, the fake host edges of bench/burst.ts
 * (InstantDriver, FakeNetwork, FakeDisks), and a GitHubPort that forwards
 * every call over IPC to the parent, where the one GitHub stand-in of the
 * whole fleet answers it and counts it.
 *
 * Why IPC and not the simulator over HTTP through the real client: the real
 * client spaces GitHub writes one second apart (plugin-throttling's write
 * limiter, see bench/burst.ts), so each host could register about one
 * runner a second and 2,000 jobs would take over ten minutes whatever the
 * fleet does. The forwarding port keeps GitHub's semantics (MemoryGitHub,
 * which runs the GitHubPort contract suite) and the count of calls.
 *
 *   parent → host: ToHost (start, github-reply, job-done, vms, records, poke, close)
 *   host → parent: FromHost (ready, github, started, vms, records, closed)
 *
 * The parent ends this process with SIGKILL to play a host that dies.
 */
import { demoConfig } from '../src/config/demo.ts';
import { runnerName } from '../src/core/ids.ts';
import { FlintError } from '../src/core/errors/index.ts';
import type { ErrorCode } from '../src/core/errors/index.ts';
import { createLogger } from '../src/adapters/log/logger.ts';
import type { LogLevel } from '../src/config/types.ts';
import type { GitHubPort } from '../src/daemon/ports/github.ts';
import { startFlint } from '../src/entrypoints/flint.ts';
import { FakeDisks } from '../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../test/fakes/fake-network.ts';
import { InstantDriver } from '../test/fakes/instant-driver.ts';
import type { InstantGuest } from '../test/fakes/instant-driver.ts';

export interface HostOptions {
  readonly instanceId: string;
  /** Made (and removed, also after a kill) by the parent. */
  readonly stateDir: string;
  readonly postgresUrl: string;
  readonly secret: string;
  readonly org: string;
  readonly maxRunners: number;
  readonly logLevel: LogLevel;
}

/** The GitHubPort methods, as they cross the IPC channel. */
export type GitHubMethod = keyof GitHubPort;

export interface JobRecordView {
  readonly jobId: number;
  readonly queued: number | null;
  readonly jobStarted: number | null;
  readonly runnerName: string | null;
}

export type ToHost =
  | { readonly type: 'start'; readonly options: HostOptions }
  | { readonly type: 'github-reply'; readonly id: number; readonly value?: unknown; readonly error?: { readonly code: string; readonly message: string } }
  | { readonly type: 'job-done'; readonly runner: string }
  | { readonly type: 'vms' }
  | { readonly type: 'records'; readonly jobIds: readonly number[] }
  | { readonly type: 'poke' }
  | { readonly type: 'close' };

export type FromHost =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'github'; readonly id: number; readonly method: GitHubMethod; readonly args: readonly unknown[] }
  | { readonly type: 'started'; readonly runner: string; readonly at: number }
  | { readonly type: 'vms'; readonly live: number }
  | { readonly type: 'records'; readonly records: readonly JobRecordView[] }
  | { readonly type: 'closed' };

function send(m: FromHost): void {
  process.send?.(m);
}

/** A GitHubPort whose every call is answered by the parent. */
function forwardingGitHub(): { port: GitHubPort; reply(m: Extract<ToHost, { type: 'github-reply' }>): void } {
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const call = (method: GitHubMethod, ...args: unknown[]): Promise<unknown> => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    // A Date does not survive the channel as one: `since` goes as its ISO text and comes back a Date on the other side.
    send({ type: 'github', id, method, args: args.map((a) => (a instanceof Object && 'since' in a && a.since instanceof Date ? { since: a.since.toISOString() } : a)) });
  });
  // Each method's answer is what the parent's GitHubPort answered for the same call: the casts restore its type.
  const port: GitHubPort = {
    installationId: () => call('installationId') as Promise<number>,
    listRunnerGroups: () => call('listRunnerGroups') as ReturnType<GitHubPort['listRunnerGroups']>,
    runnerGroupId: (name) => call('runnerGroupId', name) as Promise<number>,
    createJitRunner: (req) => call('createJitRunner', req) as ReturnType<GitHubPort['createJitRunner']>,
    listRunners: (scope) => call('listRunners', scope) as ReturnType<GitHubPort['listRunners']>,
    getRunner: (scope, runnerId) => call('getRunner', scope, runnerId) as ReturnType<GitHubPort['getRunner']>,
    deleteRunner: (scope, runnerId) => call('deleteRunner', scope, runnerId) as Promise<void>,
    getJob: (owner, repo, jobId) => call('getJob', owner, repo, jobId) as ReturnType<GitHubPort['getJob']>,
    listQueuedJobs: () => call('listQueuedJobs') as ReturnType<GitHubPort['listQueuedJobs']>,
    listRepositories: () => call('listRepositories') as ReturnType<GitHubPort['listRepositories']>,
    listQueuedJobsIn: (owner, repo) => call('listQueuedJobsIn', owner, repo) as ReturnType<GitHubPort['listQueuedJobsIn']>,
    listFailedDeliveries: (opts) => call('listFailedDeliveries', opts ?? {}) as ReturnType<GitHubPort['listFailedDeliveries']>,
    redeliver: (deliveryId) => call('redeliver', deliveryId) as Promise<void>,
  };
  return {
    port,
    reply(m) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (p === undefined) return;
      // The parent sends only codes of the catalogue (its MemoryGitHub throws FlintErrors).
      if (m.error !== undefined) p.reject(new FlintError(m.error.code as ErrorCode, m.error.message));
      else p.resolve(m.value);
    },
  };
}

async function main(): Promise<void> {
  // The parent gone (killed, or ended without closing this host): so is this host; nothing of the bench outlives it.
  process.once('disconnect', () => process.exit(1));
  const start = await new Promise<HostOptions>((resolve) => {
    const first = (m: ToHost): void => {
      if (m.type !== 'start') return;
      process.off('message', first);
      resolve(m.options);
    };
    process.on('message', first);
  });
  const stateDir = start.stateDir;
  const github = forwardingGitHub();
  const guests = new Map<string, InstantGuest>();
  const driver = new InstantDriver((guest) => {
    guest.say('FLINT-MARKER booted');
    guest.say('FLINT-MARKER runner-started');
    const name = runnerName(guest.spec.id);
    guests.set(name, guest);
    const at = driver.starts.find((s) => s.id === guest.spec.id)?.at ?? Date.now();
    send({ type: 'started', runner: name, at });
  });
  const config = {
    ...demoConfig({
      apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is the parent\'s', webhookSecret: start.secret, organization: start.org,
      kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir, address: '127.0.0.1:0',
      maxRunners: start.maxRunners, instanceId: start.instanceId,
    }),
    store: { postgres: { url: start.postgresUrl } },
  };
  const logger = createLogger({ level: start.logLevel, destination: process.stderr, secrets: new Set([start.secret]) });
  let flint: Awaited<ReturnType<typeof startFlint>>;
  try {
    flint = await startFlint({
      config, logger, processMetrics: false,
      // The fakes hold no vCPU or memory: only maxRunners limits the VMs. The fleet loops keep their defaults.
      maxVcpus: 1_000_000, maxMemoryMib: 1_000_000_000,
      edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks(), github: github.port },
    });
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    process.disconnect();
    return;
  }
  process.on('message', (m: ToHost) => {
    switch (m.type) {
      case 'github-reply': github.reply(m); return;
      case 'job-done': {
        const guest = guests.get(m.runner);
        guests.delete(m.runner);
        guest?.say('FLINT-MARKER runner-exited code=0');
        guest?.exit();
        return;
      }
      case 'vms': send({ type: 'vms', live: flint.supervisor.list().length }); return;
      case 'records':
        void (async () => {
          const records: JobRecordView[] = [];
          for (const jobId of m.jobIds) {
            const r = await flint.records.getJobRecord(jobId);
            records.push({ jobId, queued: r?.at.queued ?? null, jobStarted: r?.at.jobStarted ?? null, runnerName: r?.runnerName ?? null });
          }
          send({ type: 'records', records });
        })();
        return;
      case 'poke': flint.scheduler.poke(); return;
      case 'close':
        void (async () => {
          await flint.close();
          send({ type: 'closed' });
          process.exit(0);
        })();
        return;
      case 'start': return;
    }
  });
  send({ type: 'ready', url: flint.url });
}

void main();
