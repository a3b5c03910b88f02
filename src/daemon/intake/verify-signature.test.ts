import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { verify } from '@octokit/webhooks-methods';
import { signatureHeader, verifySignature } from './verify-signature.ts';

const body = Buffer.from('{"action":"queued"}');

test('the current secret verifies as index 0, the previous one as index 1, others not at all', () => {
  assert.equal(verifySignature(['new', 'old'], body, signatureHeader('new', body)), 0);
  assert.equal(verifySignature(['new', 'old'], body, signatureHeader('old', body)), 1);
  assert.equal(verifySignature(['new', 'old'], body, signatureHeader('other', body)), -1);
});

test('a missing, malformed or sha1 header never verifies', () => {
  const good = signatureHeader('s', body);
  for (const h of [undefined, '', 'sha256=', good.slice(0, -2), `${good}00`, `sha1=${good.slice(7, 47)}`, good.replace('sha256=', 'sha512='), 'sha256=zz' + good.slice(9)]) {
    assert.equal(verifySignature(['s'], body, h), -1, String(h));
  }
});

test('the hex digest is accepted in either case (GitHub sends lower case)', () => {
  const good = signatureHeader('s', body);
  assert.equal(verifySignature(['s'], body, `sha256=${good.slice(7).toUpperCase()}`), 0);
});

test('property: agrees with @octokit/webhooks-methods on any body, and any changed byte fails', async () => {
  await fc.assert(fc.asyncProperty(fc.string({ minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }), fc.nat(), async (secret, payload, at) => {
    const raw = Buffer.from(payload, 'utf8');
    const header = signatureHeader(secret, raw);
    assert.equal(verifySignature([secret], raw, header), 0);
    assert.equal(await verify(secret, payload, header), true);
    const tampered = Buffer.from(raw);
    const i = at % tampered.length;
    tampered[i] = (tampered[i] ?? 0) ^ 0x01;
    assert.equal(verifySignature([secret], tampered, header), -1);
  }), { numRuns: 200 });
});
