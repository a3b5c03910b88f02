import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FlintError } from '../../core/errors/index.ts';
import { createCertificateFiles } from './certificate-files.ts';
import { createChallenges } from './challenges.ts';
import { createAcmeIssuer } from './issuer.ts';

/** A loopback port nothing listens on: taken, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise((r) => server.close(r));
  return address.port;
}

test('an ACME server nobody answers for is named as unreachable, with the network error, not as the ACME client\'s own crash', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-acme-issuer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const directoryUrl = `http://127.0.0.1:${await closedPort()}/dir`;
  const issuer = createAcmeIssuer({
    directoryUrl, email: 'ops@flint.test', files: createCertificateFiles(dir), challenges: createChallenges(),
    backoff: { attempts: 1, minMs: 1, maxMs: 1, requests: 0 },
  });
  await assert.rejects(issuer.issue('flint.test'), (err: unknown) => {
    assert.ok(err instanceof FlintError);
    assert.equal(err.code, 'FLINT_ERR_ACME_FAILED');
    assert.match(err.message, new RegExp(`from ${directoryUrl.replace(/[.]/g, '\\.')}: the ACME server could not be reached: connect ECONNREFUSED`));
    assert.doesNotMatch(err.message, /Cannot read properties/);
    return true;
  });
});
