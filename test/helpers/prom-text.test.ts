import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText, sampleValue } from './prom-text.ts';

test('the strict exposition parser reads counters, labels with escapes and histograms', () => {
  const f = parsePrometheusText([
    '# HELP a_total A counter.', '# TYPE a_total counter', 'a_total{x="q\\"u\\\\o\\nte"} 3',
    '# TYPE g gauge', 'g Nan',
    '# TYPE h histogram', 'h_bucket{le="1"} 1', 'h_bucket{le="+Inf"} 2', 'h_sum 2.5', 'h_count 2', '',
  ].join('\n'));
  assert.equal(sampleValue(f, 'a_total', { x: 'q"u\\o\nte' }), 3);
  assert.equal(sampleValue(f, 'h_count'), 2);
  assert.equal(f.get('a_total')?.help, 'A counter.');
  assert.ok(Number.isNaN(sampleValue(f, 'g')), 'NaN in any case, as Prometheus reads it');
});

test('the strict exposition parser refuses what a Prometheus server would not take', () => {
  const bad = [
    'a 1\n', // no TYPE
    '# TYPE a gauge\na{x=1} 1\n', // unquoted label value
    '# TYPE a gauge\na one\n', // not a float
    '# TYPE a gauge\na 1\na 2\n', // one series twice
    '# TYPE a gauge\n# TYPE a gauge\n', // family twice
    '# TYPE a counter\na -1\n', // a counter below zero
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n', // not cumulative
    '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 2\n', // count differs
    '# TYPE a gauge\na 1', // no final newline
  ];
  for (const text of bad) assert.throws(() => parsePrometheusText(text), Error, JSON.stringify(text));
});
