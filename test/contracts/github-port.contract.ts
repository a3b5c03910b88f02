/**
 * The behaviour every GitHubPort must have. The real client runs it against
 * the GitHub simulator (src/adapters/github/client-contract.test.ts), the
 * in-memory fake directly (test/fakes/memory-github.test.ts): a daemon test
 * written against the fake can rely on what the real client does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFlintError } from '../../src/core/errors/index.ts';
import type { GitHubPort, JitRunner } from '../../src/daemon/ports/github.ts';

/** A GitHub to test against, with the staging the cases need. */
export interface GitHubWorld {
  readonly port: GitHubPort;
  readonly org: string;
  /** A queued job in `repo`; its id. */
  queueJob(repo: string, labels: readonly string[]): Promise<number>;
  /** The runner registered with `jit` comes online and takes job `jobId` (the only one its labels fit). */
  takeJob(jit: JitRunner, jobId: number): Promise<void>;
  /** An event whose webhook delivery failed (the receiver answered 500); later deliveries and redeliveries succeed. */
  failedEvent(): Promise<void>;
  close(): Promise<void>;
}

export interface WorldOptions {
  readonly repos: readonly string[];
  readonly runnerGroups: readonly string[];
}

export function githubPortContract(name: string, make: (opts: WorldOptions) => Promise<GitHubWorld>): void {
  const world = async (t: { after: (fn: () => Promise<void>) => void }, opts: Partial<WorldOptions> = {}) => {
    const w = await make({ repos: opts.repos ?? ['app', 'web'], runnerGroups: opts.runnerGroups ?? ['Default', 'flint'] });
    t.after(() => w.close());
    return w;
  };
  const ORG = { kind: 'organization' } as const;

  test(`${name}: the installation id is a number and stays the same`, async (t) => {
    const w = await world(t);
    const id = await w.port.installationId();
    assert.ok(Number.isInteger(id) && id > 0);
    assert.equal(await w.port.installationId(), id);
  });

  test(`${name}: runner groups resolve by name, case-insensitively; a missing one names those that exist`, async (t) => {
    const w = await world(t);
    const groups = await w.port.listRunnerGroups();
    assert.deepEqual(groups.map((g) => g.name), ['Default', 'flint']);
    assert.equal(groups.filter((g) => g.isDefault).length, 1);
    const id = await w.port.runnerGroupId('flint');
    assert.equal(await w.port.runnerGroupId('FLINT'), id);
    await assert.rejects(w.port.runnerGroupId('gpu'), (err) => {
      assert.ok(isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND'));
      assert.match(err.message, /"Default", "flint"/);
      return true;
    });
  });

  test(`${name}: a JIT runner is registered offline and idle with exactly its labels, in its scope only`, async (t) => {
    const w = await world(t);
    const group = await w.port.runnerGroupId('flint');
    const jit = await w.port.createJitRunner({ scope: ORG, name: 'flint-c1-00000', runnerGroupId: group, labels: ['flint', 'kvm'] });
    assert.equal(jit.runnerName, 'flint-c1-00000');
    assert.ok(jit.encodedJitConfig.length > 0);
    const listed = await w.port.listRunners(ORG);
    assert.deepEqual(listed.map((r) => r.id), [jit.runnerId]);
    const r = await w.port.getRunner(ORG, jit.runnerId);
    assert.ok(r);
    assert.deepEqual({ name: r.name, status: r.status, busy: r.busy, group: r.runnerGroupId }, { name: 'flint-c1-00000', status: 'offline', busy: false, group });
    // A JIT runner gets exactly the labels it is registered with: GitHub adds no defaults (docs/config.md).
    assert.deepEqual(r.labels.map((l) => l.toLowerCase()).sort(), ['flint', 'kvm']);
    const repo = { kind: 'repository', owner: w.org, repo: 'app' } as const;
    assert.deepEqual(await w.port.listRunners(repo), []);
    assert.equal(await w.port.getRunner(repo, jit.runnerId), undefined);
  });

  test(`${name}: deleting a runner twice succeeds and it is gone`, async (t) => {
    const w = await world(t);
    const jit = await w.port.createJitRunner({ scope: ORG, name: 'flint-c1-00001', runnerGroupId: 1, labels: ['flint'] });
    await w.port.deleteRunner(ORG, jit.runnerId);
    await w.port.deleteRunner(ORG, jit.runnerId);
    assert.equal(await w.port.getRunner(ORG, jit.runnerId), undefined);
    assert.deepEqual(await w.port.listRunners(ORG), []);
  });

  test(`${name}: registering a name again while its runner is offline replaces that runner`, async (t) => {
    const w = await world(t);
    const req = { scope: ORG, name: 'flint-c1-00002', runnerGroupId: 1, labels: ['flint'] } as const;
    const a = await w.port.createJitRunner(req);
    const b = await w.port.createJitRunner(req);
    assert.notEqual(a.runnerId, b.runnerId);
    assert.deepEqual((await w.port.listRunners(ORG)).map((r) => r.id), [b.runnerId]);
  });

  test(`${name}: a runner running a job can be neither deleted nor replaced; the job shows it`, async (t) => {
    const w = await world(t);
    const req = { scope: ORG, name: 'flint-c1-00003', runnerGroupId: 1, labels: ['contract-busy'] } as const;
    const jit = await w.port.createJitRunner(req);
    const jobId = await w.queueJob('web', ['contract-busy']);
    await w.takeJob(jit, jobId);
    await assert.rejects(w.port.deleteRunner(ORG, jit.runnerId), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_BUSY'));
    await assert.rejects(w.port.createJitRunner(req), (err) => isFlintError(err, 'FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN'));
    const job = await w.port.getJob(w.org, 'web', jobId);
    assert.equal(job?.status, 'in_progress');
    assert.equal(job.runnerName, 'flint-c1-00003');
    assert.equal((await w.port.getRunner(ORG, jit.runnerId))?.busy, true);
  });

  test(`${name}: queued jobs of every repository are listed; a job that was taken is not`, async (t) => {
    const w = await world(t, { repos: ['app', 'web', 'api'] });
    const a = await w.queueJob('app', ['flint']);
    const b = await w.queueJob('api', ['flint', 'large']);
    const taken = await w.queueJob('web', ['contract-taken']);
    const jit = await w.port.createJitRunner({ scope: ORG, name: 'flint-c1-00004', runnerGroupId: 1, labels: ['contract-taken'] });
    await w.takeJob(jit, taken);
    const jobs = await w.port.listQueuedJobs();
    assert.deepEqual(jobs.map((j) => [j.id, j.owner, j.repo, j.status]), [[a, w.org, 'app', 'queued'], [b, w.org, 'api', 'queued']]);
    assert.deepEqual(jobs.find((j) => j.id === b)?.labels, ['flint', 'large']);
  });

  test(`${name}: a job that does not exist, or not in that repository, reads as undefined`, async (t) => {
    const w = await world(t);
    const id = await w.queueJob('app', ['flint']);
    assert.equal((await w.port.getJob(w.org, 'app', id))?.status, 'queued');
    assert.equal(await w.port.getJob(w.org, 'web', id), undefined);
    assert.equal(await w.port.getJob(w.org, 'app', id + 100_000), undefined);
  });

  test(`${name}: an event whose delivery failed is listed once until a redelivery succeeds`, async (t) => {
    const w = await world(t);
    assert.deepEqual(await w.port.listFailedDeliveries(), []);
    await w.failedEvent();
    await w.failedEvent();
    const failed = await w.port.listFailedDeliveries();
    assert.equal(failed.length, 2);
    assert.notEqual(failed[0]?.guid, failed[1]?.guid);
    assert.ok(failed.every((d) => d.statusCode === 500 && !d.redelivery));
    const first = failed[0];
    assert.ok(first);
    await w.port.redeliver(first.id);
    // GitHub redelivers asynchronously (202 Accepted): wait for the outcome.
    let after = await w.port.listFailedDeliveries();
    for (let i = 0; i < 50 && after.length > 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await w.port.listFailedDeliveries();
    }
    assert.deepEqual(after.map((d) => d.guid), [failed[1]?.guid]);
    assert.deepEqual(await w.port.listFailedDeliveries({ since: new Date(Date.now() + 60_000) }), []);
  });
}
