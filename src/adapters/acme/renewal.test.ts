import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFlintError } from '../../core/errors/index.ts';
import { program, requirePrereqs } from '../../../test/helpers/prereq.ts';
import { createCertificateFiles } from './certificate-files.ts';
import type { CertificatePair } from './certificate-files.ts';
import { createRenewal, DEFAULT_BACKOFF, inspectCertificate, renewalDue } from './renewal.ts';
import type { Issuer } from './issuer.ts';

const DAY = 24 * 3600_000;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-acme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real self-signed certificate and its key, made by openssl. */
function selfSigned(dir: string, name: string, days = 90): CertificatePair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', String(days), '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

const quiet = { info: () => {}, warn: () => {} };

test('a certificate is due for renewal when a third of its lifetime is left', () => {
  const cert = { notBefore: 0, notAfter: 90 * DAY };
  assert.equal(renewalDue(cert, 59 * DAY), false);
  assert.equal(renewalDue(cert, 60 * DAY), true);
  assert.equal(renewalDue(cert, 100 * DAY), true, 'and when it has expired');
});

test('a failing CA is retried with a doubling back-off, capped, and the issuer is not called while backing off', async (t) => {
  const dir = tempDir(t);
  let now = 1_000_000;
  let calls = 0;
  const issuer: Issuer = { issue: async () => { calls++; throw new Error('connect ECONNREFUSED'); } };
  const renewal = createRenewal({ domain: 'flint.test', files: createCertificateFiles(dir), issuer, now: () => now, logger: quiet, onCertificate: () => assert.fail('no certificate') });
  const gaps: number[] = [];
  for (let i = 0; i < 9; i++) {
    await assert.rejects(renewal.pass(), (err) => isFlintError(err, 'FLINT_ERR_ACME_FAILED') && /ECONNREFUSED; next attempt after /.test(err.message));
    const retryAt = renewal.retryAt();
    assert.ok(retryAt !== undefined);
    gaps.push(retryAt - now);
    now = retryAt - 1;
    assert.equal(await renewal.pass(), 'backing-off');
    now = retryAt;
  }
  assert.equal(calls, 9);
  const m = 60_000;
  assert.deepEqual(gaps, [5 * m, 10 * m, 20 * m, 40 * m, 80 * m, 160 * m, 320 * m, DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.maxMs]);
});

test('a stored certificate goes into service at start and is kept while fresh; when due it is renewed and stored 0600', async (t) => {
  if (!requirePrereqs(t, program('openssl'))) return;
  const dir = tempDir(t);
  const files = createCertificateFiles(join(dir, 'state'));
  const old = selfSigned(dir, 'old');
  files.writeCertificate('flint.test', old);
  const oldInfo = inspectCertificate(old);
  assert.ok(oldInfo);
  const fresh = selfSigned(dir, 'fresh');
  let now = oldInfo.notBefore + DAY;
  const issued: string[] = [];
  const inService: string[] = [];
  const issuer: Issuer = { issue: async (domain) => { issued.push(domain); return fresh; } };
  const renewal = createRenewal({ domain: 'flint.test', files, issuer, now: () => now, logger: quiet, onCertificate: (c) => inService.push(c.certPem) });
  assert.deepEqual(inService, [old.certPem], 'the stored certificate is served at once');
  assert.equal(await renewal.pass(), 'fresh');
  assert.deepEqual(issued, []);
  now = oldInfo.notAfter - 29 * DAY;
  assert.equal(await renewal.pass(), 'renewed');
  assert.deepEqual(issued, ['flint.test']);
  assert.deepEqual(inService, [old.certPem, fresh.certPem]);
  assert.deepEqual(files.readCertificate('flint.test'), fresh);
  const domainDir = join(dir, 'state', 'acme', 'certs', 'flint.test');
  assert.equal(statSync(domainDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(domainDir, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(domainDir, 'cert.pem')).mode & 0o777, 0o600);
});

test('a stored certificate whose key does not match is not served; a new one is obtained at once', async (t) => {
  if (!requirePrereqs(t, program('openssl'))) return;
  const dir = tempDir(t);
  const files = createCertificateFiles(dir);
  const a = selfSigned(dir, 'a');
  const b = selfSigned(dir, 'b');
  files.writeCertificate('flint.test', { certPem: a.certPem, keyPem: b.keyPem });
  const warnings: string[] = [];
  const inService: string[] = [];
  const renewal = createRenewal({
    domain: 'flint.test', files, issuer: { issue: async () => b }, now: () => Date.now(),
    logger: { info: () => {}, warn: (_o, msg) => warnings.push(msg) }, onCertificate: (c) => inService.push(c.certPem),
  });
  assert.deepEqual(inService, []);
  assert.match(warnings.join(), /unusable/);
  assert.equal(await renewal.pass(), 'renewed');
  assert.deepEqual(inService, [b.certPem]);
});

test('certificate files refuse a domain that is not a host name (no path escapes)', (t) => {
  const files = createCertificateFiles(tempDir(t));
  assert.throws(() => files.readCertificate('../etc'));
  assert.throws(() => files.writeCertificate('a/b', { certPem: '', keyPem: '' }));
});
