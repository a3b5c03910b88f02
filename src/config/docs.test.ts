import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from './load.ts';
import { formatProblem } from './problems.ts';
import { KNOWN_KEYS } from './schema.ts';

const docs = readFileSync(fileURLToPath(new URL('../../docs/config.md', import.meta.url)), 'utf8');
const seed = readFileSync(fileURLToPath(new URL('../../test/fixtures/seed-config.yaml', import.meta.url)), 'utf8');
const yamlBlocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

test('docs/config.md documents every key the loader accepts', () => {
  for (const key of [...KNOWN_KEYS.file, ...KNOWN_KEYS.network, ...KNOWN_KEYS.github, ...KNOWN_KEYS.runner]) {
    assert.match(docs, new RegExp(`^\\| [^|]*\`${key}\``, 'm'), `docs/config.md has no table row for \`${key}\``);
  }
});

test('the complete example in docs/config.md is a valid configuration', () => {
  const example = yamlBlocks.find((b) => b.includes('linux-small'));
  assert.ok(example);
  const r = parseConfig(example, 'docs/config.md', { FLINT_WEBHOOK_SECRET: 'x'.repeat(20) }, () => 'PEM', { baseDir: '/etc/flint' });
  assert.ok(r.ok, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
});

test('the annotated seed file in docs/config.md means exactly what the seed file means', () => {
  const annotated = yamlBlocks.find((b) => b.includes('br-default'));
  assert.ok(annotated);
  const a = parseConfig(annotated, 'seed', {}, () => '', { hostname: 'h' });
  const b = parseConfig(seed, 'seed', {}, () => '', { hostname: 'h' });
  assert.ok(a.ok && b.ok);
  assert.deepEqual(a.config, b.config);
});
