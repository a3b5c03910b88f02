/**
 * The contract every IntakeStore implementation keeps, as a test suite
 * (style.md: the fake and the real store pass the same tests). Run from
 * intake-store.test.ts against SQLite and against the in-memory store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobAction, JobCommand } from '../../core/jobs.ts';
import type { IntakeStore, JobDelivery, UnparsableDelivery } from '../../daemon/ports/store.ts';

export interface StoreUnderTest {
  readonly store: IntakeStore;
  readonly dispose: () => void | Promise<void>;
}

let seq = 0;
/** A delivery of `action` for job `jobId`; ids are unique unless given. */
export function delivery(jobId: number, action: JobAction, o: { id?: string; at?: number; definition?: string | null; runner?: string } = {}): JobDelivery {
  const job = {
    id: jobId, runId: 7000 + jobId, runAttempt: 1, name: `build ${jobId}`, workflowName: 'CI', headBranch: 'main',
    labels: ['self-hosted', 'linux'], repository: 'acme/widgets', createdAt: '2026-01-01T00:00:00Z',
  };
  const runner = o.runner === undefined ? null : { id: 1, name: o.runner };
  const command: JobCommand = action === 'completed' ? { action, job, runner, conclusion: 'success' }
    : action === 'in_progress' ? { action, job, runner }
      : { action, job };
  return {
    deliveryId: o.id ?? `d-${jobId}-${action}-${++seq}`,
    receivedAt: o.at ?? 1_000 + seq,
    command,
    definition: o.definition === null ? undefined : (o.definition ?? 'default'),
  };
}

export function intakeStoreContract(name: string, make: () => StoreUnderTest | Promise<StoreUnderTest>): void {
  const setup = async (t: { after: (fn: () => void | Promise<void>) => void }): Promise<IntakeStore> => {
    const s = await make();
    t.after(s.dispose);
    return s.store;
  };

  test(`${name}: a queued job is recorded with its facts`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.ingest([delivery(1, 'queued', { id: 'a', at: 5 })]), ['accepted']);
    const job = await store.getJob(1);
    assert.equal(job?.status, 'queued');
    assert.deepEqual(job?.labels, ['self-hosted', 'linux']);
    assert.equal(job?.definition, 'default');
    assert.equal(job?.firstSeenAt, 5);
    assert.deepEqual(await store.getDelivery('a'), { id: 'a', event: 'workflow_job', action: 'queued', jobId: 1, receivedAt: 5, outcome: 'accepted' });
  });

  test(`${name}: \`committed\` is called once per batch, before ingest resolves, with the batch visible to reads; not for an empty batch`, async (t) => {
    const store = await setup(t);
    // A read started when told: it must find the batch (it is awaited below, whatever the store's reads take).
    const reads: Array<Promise<string | undefined>> = [];
    const committed = (): void => { reads.push(store.getJob(11).then((j) => j?.status)); };
    let calls = 0;
    let resolved = false;
    const beforeResolved: boolean[] = [];
    const counted = (): void => { calls++; beforeResolved.push(!resolved); committed(); };
    const outcomes = store.ingest([delivery(11, 'queued'), delivery(12, 'queued')], counted);
    void outcomes.then(() => { resolved = true; });
    assert.deepEqual(await outcomes, ['accepted', 'accepted']);
    assert.equal(calls, 1, 'once for the batch');
    assert.deepEqual(beforeResolved, [true], 'before ingest resolved');
    assert.deepEqual(await Promise.all(reads), ['queued'], 'the job was on record when it was called');
    await store.ingest([], counted);
    assert.equal(calls, 1, 'an empty batch commits nothing');
  });

  test(`${name}: a duplicate delivery id changes nothing, also within one batch`, async (t) => {
    const store = await setup(t);
    await store.ingest([delivery(1, 'queued', { id: 'x' })]);
    // Same id, different news: still a duplicate, and the job must not move.
    assert.deepEqual(await store.ingest([delivery(1, 'completed', { id: 'x' })]), ['duplicate']);
    assert.equal((await store.getJob(1))?.status, 'queued');
    assert.deepEqual(await store.ingest([delivery(2, 'queued', { id: 'y' }), delivery(2, 'in_progress', { id: 'y' })]), ['accepted', 'duplicate']);
    assert.equal((await store.getJob(2))?.status, 'queued');
    assert.equal(await store.countDeliveries(), 2);
  });

  test(`${name}: completed arrives before queued and the job is not resurrected`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.ingest([delivery(3, 'completed', { runner: 'flint-a-00001' })]), ['accepted']);
    assert.deepEqual(await store.ingest([delivery(3, 'queued'), delivery(3, 'in_progress')]), ['stale', 'stale']);
    const job = await store.getJob(3);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.conclusion, 'success');
    assert.deepEqual(await store.listJobs({ status: 'queued' }), []);
  });

  test(`${name}: the runner named by in_progress is kept when completed names none`, async (t) => {
    const store = await setup(t);
    await store.ingest([delivery(4, 'queued'), delivery(4, 'in_progress', { runner: 'flint-a-00002' }), delivery(4, 'completed')]);
    const job = await store.getJob(4);
    assert.equal(job?.runnerName, 'flint-a-00002');
    assert.equal(job?.status, 'completed');
  });

  test(`${name}: a job no definition can serve is recorded as ignored, with no job row`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.ingest([delivery(5, 'queued', { id: 'ign', definition: null })]), ['ignored']);
    assert.equal(await store.getJob(5), undefined);
    assert.equal((await store.getDelivery('ign'))?.outcome, 'ignored');
    assert.deepEqual(await store.ingest([delivery(5, 'queued', { id: 'ign', definition: null })]), ['duplicate']);
  });

  test(`${name}: a delivery id already on record changes no job, also one that would create or move it`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.ingest([delivery(6, 'queued', { id: 'seen', definition: null })]), ['ignored']);
    assert.deepEqual(await store.ingest([delivery(6, 'queued', { id: 'seen' })]), ['duplicate']);
    assert.equal(await store.getJob(6), undefined, 'no job created under a known delivery id');
    await store.ingest([delivery(7, 'queued', { id: 'q7' }), delivery(7, 'in_progress', { id: 'p7', runner: 'flint-a-00001' })]);
    assert.deepEqual(await store.ingest([delivery(7, 'completed', { id: 'q7' })]), ['duplicate']);
    assert.equal((await store.getJob(7))?.status, 'in_progress', 'not moved under a known delivery id');
  });

  test(`${name}: listJobs filters by status, oldest first`, async (t) => {
    const store = await setup(t);
    await store.ingest([delivery(12, 'queued', { at: 20 }), delivery(11, 'queued', { at: 10 }), delivery(13, 'in_progress', { at: 5 })]);
    assert.deepEqual((await store.listJobs({ status: 'queued' })).map((j) => j.id), [11, 12]);
    assert.deepEqual((await store.listJobs()).map((j) => j.id), [13, 11, 12]);
  });

  test(`${name}: countJobsByDefinition counts one status per definition and follows each job's moves`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.countJobsByDefinition('queued'), new Map());
    await store.ingest([
      delivery(31, 'queued'), delivery(32, 'queued'), delivery(33, 'queued', { definition: 'large' }),
      delivery(34, 'in_progress', { runner: 'r1' }), delivery(35, 'queued', { definition: null }),
    ]);
    assert.deepEqual(await store.countJobsByDefinition('queued'), new Map([['default', 2], ['large', 1]]));
    await store.ingest([delivery(31, 'in_progress', { runner: 'r2' }), delivery(33, 'completed')]);
    assert.deepEqual(await store.countJobsByDefinition('queued'), new Map([['default', 1]]));
    assert.deepEqual(await store.countJobsByDefinition('in_progress'), new Map([['default', 2]]));
    assert.deepEqual(await store.countJobsByDefinition('completed'), new Map([['large', 1]]));
  });

  test(`${name}: busyRunnerNames names each runner of a job in progress once, and follows the jobs' moves`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.busyRunnerNames(), new Set());
    await store.ingest([
      delivery(41, 'queued'), delivery(42, 'in_progress', { runner: 'r1' }), delivery(43, 'in_progress', { runner: 'r2' }),
      delivery(44, 'in_progress', { runner: 'r2', definition: 'large' }), delivery(45, 'completed', { runner: 'r3' }),
    ]);
    assert.deepEqual(await store.busyRunnerNames(), new Set(['r1', 'r2']));
    await store.ingest([delivery(42, 'completed', { runner: 'r1' }), delivery(41, 'in_progress', { runner: 'r4' })]);
    assert.deepEqual(await store.busyRunnerNames(), new Set(['r2', 'r4']));
  });

  test(`${name}: prune forgets old deliveries and old completed jobs only`, async (t) => {
    const store = await setup(t);
    await store.ingest([delivery(21, 'completed', { at: 10 }), delivery(22, 'queued', { at: 10 }), delivery(23, 'completed', { at: 100 })]);
    await store.keepUnparsable([unparsable('old-bad', { at: 10 }), unparsable('new-bad', { at: 100 })]);
    assert.deepEqual(await store.prune(50), { deliveries: 2, jobs: 1, unparsable: 1 });
    assert.deepEqual((await store.listUnparsable()).map((u) => u.deliveryId), ['new-bad']);
    assert.equal(await store.getJob(21), undefined);
    assert.equal((await store.getJob(22))?.status, 'queued');
    assert.equal((await store.getJob(23))?.status, 'completed');
    assert.equal(await store.countDeliveries(), 1);
  });

  test(`${name}: an empty batch is fine`, async (t) => {
    const store = await setup(t);
    assert.deepEqual(await store.ingest([]), []);
    assert.deepEqual(await store.keepUnparsable([]), []);
  });

  test(`${name}: an unparsable delivery is kept whole, once, and touches no job or delivery row`, async (t) => {
    const store = await setup(t);
    const body = Uint8Array.from([0x7b, 0x22, 0xff, 0x00, 0x7d]);
    const u = unparsable('bad-1', { at: 30, body });
    assert.deepEqual(await store.keepUnparsable([u, unparsable('bad-1', { at: 31 })]), ['kept', 'duplicate']);
    assert.deepEqual(await store.keepUnparsable([unparsable('bad-1')]), ['duplicate']);
    const [kept, ...rest] = await store.listUnparsable();
    assert.deepEqual(rest, []);
    assert.equal(kept?.deliveryId, 'bad-1');
    assert.equal(kept?.event, 'workflow_job');
    assert.equal(kept?.receivedAt, 30);
    assert.deepEqual(kept?.headers, u.headers);
    assert.deepEqual(Buffer.from(kept?.body ?? []), Buffer.from(body), 'the raw bytes, not a re-encoding');
    assert.deepEqual(kept?.error, u.error);
    assert.equal(kept?.state, 'unparsable');
    assert.equal(kept?.replayedAt, null);
    assert.equal(await store.countDeliveries(), 0);
    assert.deepEqual(await store.listJobs(), []);
  });

  test(`${name}: a replay's result is recorded on the kept delivery, and listUnparsable filters by state`, async (t) => {
    const store = await setup(t);
    await store.keepUnparsable([unparsable('b', { at: 2 }), unparsable('a', { at: 1 }), unparsable('c', { at: 3 })]);
    await store.updateUnparsable('a', { state: 'replayed', at: 50, outcome: 'accepted' });
    await store.updateUnparsable('c', { state: 'unparsable', at: 60, error: { code: 'FLINT_ERR_WEBHOOK_MALFORMED_JSON', message: 'still broken' } });
    await store.updateUnparsable('nobody', { state: 'replayed', at: 70, outcome: 'accepted' });
    assert.deepEqual((await store.listUnparsable()).map((u) => u.deliveryId), ['a', 'b', 'c'], 'oldest first');
    assert.deepEqual((await store.listUnparsable({ state: 'unparsable' })).map((u) => u.deliveryId), ['b', 'c']);
    const [a] = await store.listUnparsable({ state: 'replayed' });
    assert.equal(a?.replayedAt, 50);
    assert.equal(a?.replayOutcome, 'accepted');
    const c = (await store.listUnparsable()).find((u) => u.deliveryId === 'c');
    assert.deepEqual(c?.error, { code: 'FLINT_ERR_WEBHOOK_MALFORMED_JSON', message: 'still broken' });
    assert.equal(c?.replayedAt, 60);
  });
}

/** A kept unparsable workflow_job delivery with id `id`. */
export function unparsable(id: string, o: { at?: number; body?: Uint8Array } = {}): UnparsableDelivery {
  return {
    deliveryId: id, event: 'workflow_job', receivedAt: o.at ?? 1_000,
    headers: { 'x-github-event': 'workflow_job', 'x-github-delivery': id, 'content-type': 'application/json', 'x-github-enterprise-version': '3.14.0' },
    body: o.body ?? Buffer.from('{"action":"queued","workflow_job":{}}'),
    error: { code: 'FLINT_ERR_WEBHOOK_INVALID_PAYLOAD', message: 'workflow_job payload: workflow_job.id: required' },
  };
}
