/**
 * Automatic HTTPS against a real ACME server: Debian's pebble, with
 * pebble-challtestsrv as its DNS (every A record → 127.0.0.1), inside the
 * test's private network namespace. Pebble validates HTTP-01 on port 80 of
 * the test domain for real; a TLS client that trusts only pebble's root
 * then delivers a webhook to Flint on port 443. Renewal runs on an injected
 * clock and timer: moving the clock into the renewal window and firing the
 * loop's timer puts a new certificate in service without a restart.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../config/load.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { signedDelivery } from '../../../bench/_payload.ts';
import { startWebhooksOnly } from '../flint.ts';
import { inPrivateNetns } from '../../../test/helpers/netns.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';

const DOMAIN = 'flint.test';
const SECRET = 'https-test-webhook-secret';
// Fixed ports inside the test's own network namespace.
const PEBBLE = { acme: 14000, management: 15000, dns: 8053, dnsManagement: 8055 };

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-https-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function startProcess(t: TestContext, cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  });
  child.once('exit', (code, signal) => { if (code !== 0 && signal !== 'SIGTERM') t.diagnostic(`${cmd} exited ${code ?? signal}: ${out.slice(-2000)}`); });
  return child;
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The certificate Flint serves on 127.0.0.1:443 for DOMAIN, verified against `ca` (throws when it does not verify). */
function servedCertificate(ca: string): Promise<{ serial: string; validTo: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: 443, servername: DOMAIN, ca }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({ serial: cert.serialNumber, validTo: cert.valid_to });
    });
    socket.on('error', reject);
  });
}

function postWebhook(ca: string, deliveryId: string): Promise<{ status: number; body: string }> {
  const d = signedDelivery(SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, deliveryId);
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: 443, servername: DOMAIN, ca, method: 'POST', path: '/webhook', headers: { ...d.headers, host: DOMAIN } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(d.body);
  });
}

function plainGet(path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: 80, path, headers: { host: 'evil.example' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Test timers: the renewal loop's next pass runs when the test fires it. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let seq = 0;
  return {
    pending,
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

test('port 443: a certificate from pebble by real HTTP-01 on port 80, a webhook over TLS, and a renewal served without restart', async (t) => {
  if (!requirePrereqs(t, root, program('pebble'), program('pebble-challtestsrv'), program('openssl'))) return;
  if (!(await inPrivateNetns())) {
    t.skip('needs a private network namespace for ports 80 and 443 (run through scripts/test.mjs)');
    return;
  }
  const dir = tempDir(t);
  // Pebble's own HTTPS listener: a self-signed certificate, which is also what acme.caFile trusts.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'pebble.key'), '-out', join(dir, 'pebble.crt'),
    '-days', '2', '-subj', '/CN=pebble', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${PEBBLE.acme}`, managementListenAddress: `127.0.0.1:${PEBBLE.management}`,
      certificate: join(dir, 'pebble.crt'), privateKey: join(dir, 'pebble.key'),
      httpPort: 80, tlsPort: 443, ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  startProcess(t, 'pebble-challtestsrv', ['-dns01', `127.0.0.1:${PEBBLE.dns}`, '-management', `127.0.0.1:${PEBBLE.dnsManagement}`,
    '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']);
  // No random sleeps or nonce rejections (determinism); no authorization reuse, so the renewal is validated again.
  startProcess(t, 'pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${PEBBLE.dns}`],
    { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' });
  const pebbleTls = readFileSync(join(dir, 'pebble.crt'), 'utf8');
  await until('pebble', async () => ((await get(`https://127.0.0.1:${PEBBLE.acme}/dir`, pebbleTls)).status === 200 ? true : undefined));
  const pebbleRoot = (await get(`https://127.0.0.1:${PEBBLE.management}/roots/0`, pebbleTls)).body;
  assert.match(pebbleRoot, /BEGIN CERTIFICATE/);

  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, `address: ${DOMAIN}:443
email: ops@flint.test
acme:
  directoryUrl: https://127.0.0.1:${PEBBLE.acme}/dir
  caFile: ${join(dir, 'pebble.crt')}
stateDir: ${join(dir, 'state')}
networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 1234
  organization: acme
  webhookSecret: ${SECRET}
  privateKey: inline-key
runners:
  - name: small
    labels: [self-hosted, linux, x64]
    kernel: /srv/flint/vmlinux
    filesystem: /srv/flint/rootfs.ext4
    hypervisor: qemu
`);
  const config = loadConfigFile(configPath, {});
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } });
  let now = Date.now();
  const manual = manualTimers();
  const serving = await startWebhooksOnly({ config, logger, clock: { now: () => now }, listen: { timers: manual.timers } });
  t.after(() => serving.close());
  assert.equal(serving.url, `https://${DOMAIN}:443`);

  // On a timeout, Flint's log says which ACME step went wrong.
  const first = await until('the first certificate', () => servedCertificate(pebbleRoot))
    .catch((err: unknown) => { throw new Error(`${err instanceof Error ? err.message : String(err)}\n${lines.join('')}`); });
  const reply = await postWebhook(pebbleRoot, 'delivery-1');
  assert.equal(reply.status, 200, reply.body);
  assert.equal(JSON.parse(reply.body).outcome, 'pong');

  // Port 80 redirects to the configured host (never the Host header's), and knows no stale challenge.
  assert.deepEqual(await plainGet('/webhook?x=1'), { status: 301, location: `https://${DOMAIN}/webhook?x=1` });
  assert.equal((await plainGet('/.well-known/acme-challenge/no-such-token')).status, 404);

  // Secrets on disk: directories 0700, files 0600.
  const acmeDir = join(config.stateDir, 'acme');
  for (const d of [acmeDir, join(acmeDir, 'certs'), join(acmeDir, 'certs', DOMAIN)]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
  for (const f of [join(acmeDir, 'account.key'), join(acmeDir, 'certs', DOMAIN, 'key.pem'), join(acmeDir, 'certs', DOMAIN, 'cert.pem')]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  const accountKey = readFileSync(join(acmeDir, 'account.key'), 'utf8');
  const storedFirst = readFileSync(join(acmeDir, 'certs', DOMAIN, 'cert.pem'), 'utf8');

  // Not yet due: a pass changes nothing.
  await until('the loop to arm its next pass', async () => (manual.pending.size === 1 ? true : undefined), 10_000);
  manual.fire();
  await until('the loop to arm its next pass', async () => (manual.pending.size === 1 ? true : undefined), 10_000);
  assert.equal((await servedCertificate(pebbleRoot)).serial, first.serial, 'a fresh certificate is kept');

  // A day before expiry (well inside the last third of the lifetime): the next pass renews.
  now = Date.parse(first.validTo) - 24 * 3600_000;
  manual.fire();
  const renewed = await until('the renewed certificate', async () => {
    const c = await servedCertificate(pebbleRoot);
    return c.serial === first.serial ? undefined : c;
  });
  assert.notEqual(renewed.serial, first.serial);
  assert.notEqual(readFileSync(join(acmeDir, 'certs', DOMAIN, 'cert.pem'), 'utf8'), storedFirst, 'the renewed certificate is stored');
  assert.equal(readFileSync(join(acmeDir, 'account.key'), 'utf8'), accountKey, 'the account is kept');
  const again = await postWebhook(pebbleRoot, 'delivery-2');
  assert.equal(again.status, 200, again.body);
  assert.match(lines.join(''), /certificate-renewal: new certificate in service/);
});
