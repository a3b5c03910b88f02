import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.ts';
import type { FleetMetrics } from './metrics.ts';

test('the fleet gauges: hosts by state (every state listed, 0 when none) and 1 on the leader, from one read of the store per scrape', async () => {
  const metrics = createMetrics({ processMetrics: false });
  let reads = 0;
  let now: FleetMetrics = { hosts: { up: 2, lost: 1 }, leader: true };
  metrics.collectFrom({ loops: () => [], fleet: async () => { reads += 1; return now; } });
  const first = (await metrics.scrape()).body;
  assert.match(first, /^flint_fleet_hosts\{state="up"\} 2$/m);
  assert.match(first, /^flint_fleet_hosts\{state="late"\} 0$/m);
  assert.match(first, /^flint_fleet_hosts\{state="lost"\} 1$/m);
  assert.match(first, /^flint_fleet_leader 1$/m);
  assert.equal(reads, 1);
  now = { hosts: { up: 1, late: 1 }, leader: false };
  const second = (await metrics.scrape()).body;
  assert.match(second, /^flint_fleet_hosts\{state="lost"\} 0$/m);
  assert.match(second, /^flint_fleet_leader 0$/m);
  assert.equal(reads, 2, 'read again at the next scrape, never kept');
});

test('no fleet source (SQLite store): no fleet gauge at all', async () => {
  const metrics = createMetrics({ processMetrics: false });
  metrics.collectFrom({ loops: () => [] });
  assert.doesNotMatch((await metrics.scrape()).body, /flint_fleet_/);
});

test('claim hand-overs: a counter per result, as the store counts them at each scrape; none without a PostgreSQL store', async () => {
  const metrics = createMetrics({ processMetrics: false });
  let counts = { passed: 3, owed: 1, settled: 1, cleared: 0, dropped: 0 };
  metrics.collectFrom({ loops: () => [], claimHandOvers: () => counts });
  const first = (await metrics.scrape()).body;
  assert.match(first, /^# TYPE flint_claim_handovers_total counter$/m);
  assert.match(first, /^flint_claim_handovers_total\{result="passed"\} 3$/m);
  assert.match(first, /^flint_claim_handovers_total\{result="owed"\} 1$/m);
  assert.match(first, /^flint_claim_handovers_total\{result="dropped"\} 0$/m);
  counts = { ...counts, passed: 5 };
  assert.match((await metrics.scrape()).body, /^flint_claim_handovers_total\{result="passed"\} 5$/m, 'the total now, not added to the last scrape');
  const sqlite = createMetrics({ processMetrics: false });
  sqlite.collectFrom({ loops: () => [] });
  assert.doesNotMatch((await sqlite.scrape()).body, /flint_claim_handovers/);
});
