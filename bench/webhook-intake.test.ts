import { test } from 'node:test';
import assert from 'node:assert/strict';
import bench from './webhook-intake.ts';

test('the webhook-intake benchmark runs end to end and prints its figures as the last line', async (t) => {
  const lines: string[] = [];
  t.mock.method(console, 'log', (line: string) => { lines.push(line); });
  await bench(['--duration', '0.3', '--rounds', '1', '--connections', '4']);
  const last = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(last), ['bench', 'deliveries_per_s', 'p50_ms', 'p99_ms', 'baseline_ratio']);
  assert.equal(last.bench, 'webhook-intake');
  for (const k of ['deliveries_per_s', 'p50_ms', 'p99_ms', 'baseline_ratio']) assert.ok(typeof last[k] === 'number' && last[k] > 0, k);
  assert.ok(lines.some((l) => /stored (\d+) deliveries, acknowledged \1,/.test(l)), 'stored equals acknowledged');
});
