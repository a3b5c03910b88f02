import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { catalogue, FlintError, isFlintError } from './index.ts';
import { renderErrorDocs } from '../../../scripts/gen-error-docs.ts';

test('every code is FLINT_ERR_ prefixed, titled and has a hint that says what to do', () => {
  for (const [code, entry] of Object.entries(catalogue)) {
    assert.match(code, /^FLINT_ERR_[A-Z0-9_]+$/, code);
    assert.ok(entry.title.length > 0, `${code} has a title`);
    assert.ok(entry.hint.length > 10, `${code} has a hint`);
  }
});

test('docs/errors.md is generated from the catalogue and up to date', () => {
  const have = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(have, renderErrorDocs(), 'run `npm run docs:errors`');
});

test('a FlintError carries its code and the catalogue hint', () => {
  const err = new FlintError('FLINT_ERR_USAGE', 'bad flag');
  assert.ok(isFlintError(err, 'FLINT_ERR_USAGE'));
  assert.equal(err.hint, catalogue.FLINT_ERR_USAGE.hint);
  assert.ok(!isFlintError(new Error('x')));
});
