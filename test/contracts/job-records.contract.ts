/**
 * The contract every JobRecordStore keeps, with the intake and VM stores it
 * joins (SQLite: one file; memory: the in-memory twins). The stores are fed
 * only through their ports, as the daemon feeds them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runnerName } from '../../src/core/ids.ts';
import type { IntakeStore, JobRecord, JobRecordStore } from '../../src/daemon/ports/store.ts';
import { JOB_RECORD_STEPS } from '../../src/daemon/ports/store.ts';
import type { VmStore } from '../../src/daemon/vm/vm-store.ts';
import { newVmRecord } from '../../src/daemon/vm/vm-store.ts';
import { delivery } from '../../src/adapters/store/intake-store.contract.ts';

export interface JobRecordStoresUnderTest {
  readonly intake: IntakeStore;
  readonly vms: VmStore;
  readonly records: JobRecordStore;
  readonly dispose: () => void | Promise<void>;
}

/** A VM that went through its whole life: made at `t`, VMM started, booted, runner online 10 ms apart. */
async function vmThatRan(vms: VmStore, id: string, t: number): Promise<void> {
  await vms.insert(newVmRecord({ id, instanceId: id.split('-')[0] ?? 'ab1', runner: 'default', hypervisor: 'qemu', workDir: `/state/vms/${id}`, createdAt: t }));
  assert.ok(await vms.update(id, 'preparing', { state: 'booting', pid: 4242, startedAt: t + 10, prepareMs: 10 }));
  assert.ok(await vms.update(id, 'booting', { state: 'running', bootedAt: t + 20 }));
  assert.ok(await vms.update(id, 'running', { runnerStartedAt: t + 30 }));
}

export function jobRecordContract(name: string, make: () => JobRecordStoresUnderTest | Promise<JobRecordStoresUnderTest>): void {
  const setup = async (t: { after: (fn: () => void | Promise<void>) => void }): Promise<JobRecordStoresUnderTest> => {
    const s = await make();
    t.after(s.dispose);
    return s;
  };

  test(`${name}: a job that made a VM has every step on record, in order, with the VM and runner that ran it`, async (t) => {
    const { intake, vms, records } = await setup(t);
    const vm = 'ab1-00000';
    await intake.ingest([delivery(1, 'queued', { at: 100 })]);
    await vms.insert(newVmRecord({ id: vm, instanceId: 'ab1', runner: 'default', hypervisor: 'qemu', workDir: `/state/vms/${vm}`, createdAt: 105 }));
    await records.recordRunnerRequest({ runnerName: runnerName(vm), vmId: vm, requestedAt: 110, githubRunnerId: 77 });
    assert.ok(await vms.update(vm, 'preparing', { state: 'booting', startedAt: 120 }));
    assert.ok(await vms.update(vm, 'booting', { state: 'running', bootedAt: 130 }));
    assert.ok(await vms.update(vm, 'running', { runnerStartedAt: 140 }));
    await intake.ingest([delivery(1, 'in_progress', { at: 150, runner: runnerName(vm) })]);
    await intake.ingest([delivery(1, 'completed', { at: 160, runner: runnerName(vm) })]);
    const rec = await records.getJobRecord(1);
    assert.deepEqual(rec, {
      jobId: 1, repository: 'acme/widgets', name: 'build 1', definition: 'default', status: 'completed', conclusion: 'success',
      runnerName: 'flint-ab1-00000', vmId: vm, githubRunnerId: 77,
      at: { queued: 100, runnerRequested: 110, vmStarted: 120, booted: 130, runnerOnline: 140, jobStarted: 150, finished: 160 },
    } satisfies JobRecord);
    const times = JOB_RECORD_STEPS.map((s) => rec?.at[s]);
    assert.deepEqual(times, [...times].sort((a, b) => (a ?? 0) - (b ?? 0)), 'the steps are listed in the order they happen');
  });

  test(`${name}: a warm-pool job shows its runner online before it was queued`, async (t) => {
    const { intake, vms, records } = await setup(t);
    const vm = 'ab1-00001';
    await vmThatRan(vms, vm, 10);
    await records.recordRunnerRequest({ runnerName: runnerName(vm), vmId: vm, requestedAt: 12, githubRunnerId: 5 });
    await intake.ingest([delivery(2, 'queued', { at: 500 }), delivery(2, 'in_progress', { at: 510, runner: runnerName(vm) })]);
    const rec = await records.getJobRecord(2);
    assert.equal(rec?.status, 'in_progress');
    assert.deepEqual(rec?.at, { queued: 500, runnerRequested: 12, vmStarted: 20, booted: 30, runnerOnline: 40, jobStarted: 510, finished: null });
  });

  test(`${name}: a job no runner has taken has its queued time and nothing else`, async (t) => {
    const { intake, vms, records } = await setup(t);
    // A VM is up, but GitHub has not said which runner took the job: no guessing.
    await vmThatRan(vms, 'ab1-00002', 10);
    await intake.ingest([delivery(3, 'queued', { at: 50 })]);
    assert.deepEqual(await records.getJobRecord(3), {
      jobId: 3, repository: 'acme/widgets', name: 'build 3', definition: 'default', status: 'queued', conclusion: null,
      runnerName: null, vmId: null, githubRunnerId: null,
      at: { queued: 50, runnerRequested: null, vmStarted: null, booted: null, runnerOnline: null, jobStarted: null, finished: null },
    } satisfies JobRecord);
    assert.equal(await records.getJobRecord(999), undefined, 'an unknown job has no record');
  });

  test(`${name}: a job taken by a runner that is not Flint's keeps its job times and has no VM`, async (t) => {
    const { intake, records } = await setup(t);
    await intake.ingest([delivery(4, 'queued', { at: 1 }), delivery(4, 'in_progress', { at: 2, runner: 'someone-elses-runner' }), delivery(4, 'completed', { at: 3 })]);
    const rec = await records.getJobRecord(4);
    assert.equal(rec?.runnerName, 'someone-elses-runner');
    assert.equal(rec?.vmId, null);
    assert.deepEqual(rec?.at, { queued: 1, runnerRequested: null, vmStarted: null, booted: null, runnerOnline: null, jobStarted: 2, finished: 3 });
  });

  test(`${name}: each status keeps the time of its first delivery; a job first heard of in progress has no queued time`, async (t) => {
    const { intake, records } = await setup(t);
    await intake.ingest([delivery(5, 'in_progress', { at: 20, runner: 'flint-ab1-00009' })]);
    // Late queued (stale) and a repeat of completed: neither moves a time.
    await intake.ingest([delivery(5, 'queued', { at: 21 }), delivery(5, 'completed', { at: 30 }), delivery(5, 'completed', { at: 40 })]);
    const rec = await records.getJobRecord(5);
    assert.deepEqual(rec?.at, { queued: null, runnerRequested: null, vmStarted: null, booted: null, runnerOnline: null, jobStarted: 20, finished: 30 });
    assert.equal(rec?.vmId, null, 'a Flint-shaped runner name with no VM on record has no VM');
  });

  test(`${name}: recording a runner registration twice keeps the first`, async (t) => {
    const { intake, records } = await setup(t);
    await records.recordRunnerRequest({ runnerName: 'flint-ab1-00003', vmId: 'ab1-00003', requestedAt: 7, githubRunnerId: 1 });
    await records.recordRunnerRequest({ runnerName: 'flint-ab1-00003', vmId: 'ab1-00003', requestedAt: 8, githubRunnerId: 2 });
    await intake.ingest([delivery(6, 'in_progress', { at: 9, runner: 'flint-ab1-00003' })]);
    const rec = await records.getJobRecord(6);
    assert.equal(rec?.at.runnerRequested, 7);
    assert.equal(rec?.githubRunnerId, 1);
  });

  test(`${name}: listJobRecords is oldest first, filters by status, and a limit keeps the newest`, async (t) => {
    const { intake, records } = await setup(t);
    await intake.ingest([delivery(13, 'queued', { at: 30 }), delivery(11, 'queued', { at: 10 }), delivery(12, 'in_progress', { at: 20, runner: 'x' })]);
    assert.deepEqual((await records.listJobRecords()).map((r) => r.jobId), [11, 12, 13]);
    assert.deepEqual((await records.listJobRecords({ status: 'queued' })).map((r) => r.jobId), [11, 13]);
    assert.deepEqual((await records.listJobRecords({ limit: 2 })).map((r) => r.jobId), [12, 13]);
    assert.deepEqual((await records.listJobRecords({ status: 'queued', limit: 1 })).map((r) => r.jobId), [13]);
  });

  test(`${name}: prune forgets old runner registrations only`, async (t) => {
    const { records } = await setup(t);
    await records.recordRunnerRequest({ runnerName: 'flint-ab1-00004', vmId: 'ab1-00004', requestedAt: 10, githubRunnerId: 1 });
    await records.recordRunnerRequest({ runnerName: 'flint-ab1-00005', vmId: 'ab1-00005', requestedAt: 100, githubRunnerId: 2 });
    assert.deepEqual(await records.prune(50), { runnerRequests: 1 });
    assert.deepEqual(await records.prune(50), { runnerRequests: 0 });
  });
}
