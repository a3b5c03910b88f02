/**
 * Scale-set mode end to end, with no webhook configured: the runner
 * definition listens to a scale set of the GitHub simulator's Actions
 * service; two jobs queued for its labels complete in real VMs (QEMU, the
 * test image). On the way: a stale session of this Flint's own left at the
 * service (as after a crash: 409, then deleted as its own), a listener
 * restart (Flint stopped and started on the same state), and the scale set
 * deleted by the service between the two jobs (created again under a new
 * id). Two VM boots in all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { createLogger } from '../adapters/log/logger.ts';
import { openDatabase } from '../adapters/store/db.ts';
import { createSqliteScaleSetState } from '../adapters/store/scaleset-state.ts';
import { createScaleSetClient } from '../adapters/github/scaleset-client.ts';
import { signJwt } from '../../tools/github-sim/index.ts';
import { e2eSetup, until } from '../../test/helpers/e2e-flint.ts';
import { startFlint } from './flint.ts';
import type { FlintConfig } from '../config/types.ts';

const GATEWAY = '10.219.0.1';
const SCALE_SET = { name: 'flint-ssm', runnerGroup: 'Default' };

test('scale-set mode without a webhook: jobs complete in VMs through a stale session, a listener restart and a deleted scale set', { timeout: 900_000 }, async (t) => {
  const setup = await e2eSetup(t, { org: 'flint-ssm', instanceId: 'ssm', bridge: 'br-flint-ssm', gateway: GATEWAY, jobSeconds: 3 });
  if (setup === undefined) return;
  const { sim, guestExtras } = setup;
  const config: FlintConfig = {
    ...setup.config,
    github: { ...setup.config.github, webhookSecrets: [] },
    runners: setup.config.runners.map((r) => ({ ...r, scaleSet: SCALE_SET })),
  };
  const def = config.runners[0];
  assert.ok(def !== undefined);
  const owner = `flint-${config.instanceId}`;
  let logText = '';
  const logger = createLogger({ level: 'info', destination: new Writable({ write(chunk: Buffer, _e, cb) { logText += chunk.toString(); cb(); } }) });
  const start = async () => {
    const f = await startFlint({ tickMs: 300, reconcileMs: 2000, config, logger, guestExtras, sessionConflict: { retries: 1, baseMs: 500, maxMs: 500 } });
    setup.closeFirst(() => f.close());
    return f;
  };
  const job = (id: number) => sim.jobs().find((j) => j.id === id);

  // A previous run of this Flint crashed: the service still holds its session, and the state names it.
  const client = createScaleSetClient({
    apiUrl: sim.apiUrl, githubUrl: sim.apiUrl, organization: sim.org,
    installationToken: async () => {
      const s = Math.floor(Date.now() / 1000);
      const jwt = signJwt({ iat: s - 30, exp: s + 500, iss: sim.appId }, sim.privateKeyPem);
      const res = await fetch(`${sim.apiUrl}/app/installations/${sim.installationId}/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
      return (await res.json() as { token: string }).token; // REST contract, checked by the simulator's contract test
    },
  });
  const made = await client.ensureScaleSet({ ...SCALE_SET, labels: def.labels });
  const stale = sim.actions.staleSession(made.id, owner);
  const seed = openDatabase(config.stateDir);
  try {
    await createSqliteScaleSetState(seed).put({ ...SCALE_SET, scaleSetId: made.id, sessionId: stale, lastMessageId: 0, owner, updatedAt: Date.now() });
  } finally {
    seed.close();
  }

  const first = await start();
  const a = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'job a' });
  await until('job a to complete', 300_000, () => job(a.jobId)?.status === 'completed');
  assert.match(logText, /stale-session-deleted/, 'the own stale session was deleted after the 409');
  assert.match(logText, /session-conflict/);
  assert.match(job(a.jobId)?.runnerName ?? '', /^flint-ssm-/, 'a Flint VM ran it');
  assert.equal(job(a.jobId)?.conclusion, 'success');
  assert.equal((await first.records.getJobRecord(a.jobId))?.status, 'completed', 'the listener recorded its end');
  assert.ok(first.loops().some((l) => l.name === 'scaleset-listener:demo' && l.runs > 0), 'the listener is shown among the loops');
  await until('the VM of job a to end', 120_000, () => first.supervisor.list().length === 0);

  // Listener restart: a clean stop deletes the session; the next start opens a new one and resumes after the recorded message.
  await first.close();
  assert.equal(sim.actions.scaleSets().find((s) => s.id === made.id)?.session, null, 'the session was deleted on stop');
  const second = await start();
  await until('the second session', 60_000, () => sim.actions.scaleSets().some((s) => s.session !== null));

  // The service drops the scale set: the listener creates it again, and job b reaches a runner of the new one.
  sim.actions.removeScaleSet(made.id);
  const b = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: 'job b' });
  await until('job b to complete', 300_000, () => job(b.jobId)?.status === 'completed');
  assert.equal(job(b.jobId)?.conclusion, 'success');
  assert.match(logText, /scale-set-recreated/);
  const now = sim.actions.scaleSets();
  assert.equal(now.length, 1);
  assert.notEqual(now[0]?.id, made.id, 'a new scale set');
  await until('the VM of job b to end and its runner to be gone', 120_000, async () => {
    await sim.settled();
    return second.supervisor.list().length === 0 && sim.runners().every((r) => !r.name.startsWith('flint-ssm-'));
  });
  await second.close();

  const db = openDatabase(config.stateDir);
  try {
    const rows = db.prepare('SELECT id, state FROM vms').all() as Array<{ id: string; state: string }>; // the vms table's columns
    assert.equal(rows.length, 2, 'one VM per job, no more');
    const st = await createSqliteScaleSetState(db).get(SCALE_SET);
    assert.equal(st?.scaleSetId, now[0]?.id, 'the new scale set id is on record');
    assert.equal(st?.sessionId, null, 'no session left on record');
  } finally {
    db.close();
  }
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args']).toString(), /qemu-system.*ssm-/, 'no VM process is left');
});
