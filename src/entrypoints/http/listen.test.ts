import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChallenges } from '../../adapters/acme/challenges.ts';
import { program, requirePrereqs } from '../../../test/helpers/prereq.ts';
import { challengeHandler, startListening } from './listen.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-listen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '30', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:flint.test'], { stdio: 'ignore' });
  return { cert, key };
}

function get(port: number, path: string, host = 'somewhere.else'): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function servedSubject(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'flint.test', ca }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.end();
      resolve(Array.isArray(cn) ? cn.join() : cn ?? '');
    });
    socket.on('error', reject);
  });
}

function manualTimers() {
  const pending = new Map<number, () => void>();
  let seq = 0;
  return {
    timers: {
      setTimeout: (fn: () => void): unknown => { seq += 1; pending.set(seq, fn); return seq; },
      clearTimeout: (h: unknown): void => { pending.delete(h as number); }, // handles are the numbers made above
    },
    fire(): void {
      const fns = [...pending.values()];
      pending.clear();
      for (const fn of fns) fn();
    },
  };
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

test('port 80 answers an open HTTP-01 challenge and redirects everything else to https on the configured host', async (t) => {
  const challenges = createChallenges();
  challenges.set('tok_en-1', 'tok_en-1.thumbprint');
  const server = createServer(challengeHandler(challenges, 'flint.test'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as AddressInfo; // TCP listener
  assert.deepEqual(await get(port, '/.well-known/acme-challenge/tok_en-1'), { status: 200, location: undefined, body: 'tok_en-1.thumbprint' });
  assert.equal((await get(port, '/.well-known/acme-challenge/other')).status, 404);
  assert.equal((await get(port, '/.well-known/acme-challenge/../../etc')).status, 404);
  challenges.delete('tok_en-1');
  assert.equal((await get(port, '/.well-known/acme-challenge/tok_en-1')).status, 404, 'a closed challenge is gone');
  assert.deepEqual(await get(port, '/webhook?a=b', 'attacker.example'), { status: 301, location: 'https://flint.test/webhook?a=b', body: 'moved to https://flint.test/webhook?a=b\n' });
});

test('tls files: the operator\'s certificate is served, a replaced one goes into service without restart, a broken one is refused and the old kept', async (t) => {
  if (!requirePrereqs(t, program('openssl'))) return;
  const dir = tempDir(t);
  const a = selfSigned(dir, 'first');
  const b = selfSigned(dir, 'second');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  copyFileSync(a.cert, certFile);
  copyFileSync(a.key, keyFile);
  const manual = manualTimers();
  const warnings: string[] = [];
  const listening = await startListening({
    plan: { kind: 'tls-files', host: '127.0.0.1', port: 0, certFile, keyFile },
    handler: (_req, res) => res.end('ok'), stateDir: dir, now: () => 0, timers: manual.timers,
    logger: { ...quiet, warn: (o: object) => warnings.push(JSON.stringify(o)) },
  });
  t.after(() => listening.close());
  const port = listening.bound[0]?.port ?? 0;
  const caBoth = readFileSync(a.cert, 'utf8') + readFileSync(b.cert, 'utf8');
  assert.match(listening.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await servedSubject(port, caBoth), 'first');

  manual.fire();
  assert.equal(await servedSubject(port, caBoth), 'first', 'unchanged files: nothing reloaded');

  copyFileSync(b.cert, certFile);
  copyFileSync(b.key, keyFile);
  // Same-second copies may keep the mtime a coarse filesystem had; make the change visible.
  utimesSync(certFile, new Date(), new Date(Date.now() + 5000));
  manual.fire();
  await new Promise((r) => setImmediate(r));
  assert.equal(await servedSubject(port, caBoth), 'second');

  writeFileSync(keyFile, 'not a key');
  utimesSync(keyFile, new Date(), new Date(Date.now() + 10_000));
  manual.fire();
  await new Promise((r) => setImmediate(r));
  assert.match(warnings.join(), /FLINT_ERR_TLS_FILES/);
  assert.equal(await servedSubject(port, caBoth), 'second', 'the previous pair stays in service');
});

test('tls files that cannot be read stop the start with FLINT_ERR_TLS_FILES', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(startListening({
    plan: { kind: 'tls-files', host: '127.0.0.1', port: 0, certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'missing.key') },
    handler: (_req, res) => res.end('ok'), stateDir: dir, now: () => 0, logger: quiet,
  }), { code: 'FLINT_ERR_TLS_FILES' });
});
