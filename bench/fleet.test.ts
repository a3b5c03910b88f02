import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresPrereqs } from '../test/helpers/postgres.ts';
import { requirePrereqs } from '../test/helpers/prereq.ts';
import bench from './fleet.ts';

test('npm run bench -- fleet with 60 jobs: three hosts complete every job, no start beyond demand, the lease moves after the leader is killed, and the last line is the JSON figures', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const lines: string[] = [];
  t.mock.method(console, 'log', (line: unknown) => { lines.push(String(line)); });
  await bench(['--jobs', '60', '--window-ms', '500', '--max-runners', '5', '--warmup', '3', '--pause-ms', '0', '--timeout-ms', '120000']);
  t.mock.restoreAll();
  const last = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(last), ['bench', 'hosts', 'jobs', 'completed', 'duplicate_starts', 'github_calls_per_job', 'failover_s', 'p99_ms']);
  assert.equal(last.bench, 'fleet');
  assert.equal(last.hosts, 3);
  assert.equal(last.jobs, 60);
  assert.equal(last.completed, 60, lines.join('\n'));
  assert.equal(last.duplicate_starts, 0, lines.join('\n'));
  // Each job registers a runner and its host removes it (not the killed host: GitHub drops its ephemeral runners after their jobs), plus the leader's few scans.
  assert.ok(typeof last.github_calls_per_job === 'number' && last.github_calls_per_job >= 1.5 && last.github_calls_per_job < 3, lines.join('\n'));
  // The default 30 s ttl, renewed every 10 s: another host holds the lease 20 – 40 s after the kill.
  assert.ok(typeof last.failover_s === 'number' && last.failover_s > 0 && last.failover_s <= 40, lines.join('\n'));
  assert.ok(typeof last.p99_ms === 'number' && Number.isFinite(last.p99_ms), lines.join('\n'));
});
