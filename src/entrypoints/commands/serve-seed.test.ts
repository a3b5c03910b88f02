/**
 * The seed configuration (test/fixtures/seed-config.yaml, every key as the
 * reference system's users wrote it) with its placeholders filled starts a
 * whole `flint serve` — a child process, not --webhooks-only — that serves
 * webhooks over HTTPS on the seed's own `address`, example.net:443, with a
 * certificate obtained by ACME from a real ACME server (pebble, whose DNS
 * answers 127.0.0.1 for every name) inside the test's network namespace.
 *
 * Filled in: the App id, organization, webhook secret and private key (a
 * fresh RSA key); added: `acme` (pebble's directory and its HTTPS CA),
 * `stateDir` and `runDir` (temporary), and `github.apiUrl` (a closed
 * loopback port: no GitHub here, so its calls fail at once). The runner's
 * Firecracker paths stay the seed's: `flint serve` starts without them and
 * would need them only to boot a VM, which this test does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import { inPrivateNetns } from '../../../test/helpers/netns.ts';
import { httpsTo, plainGet, servedCertificate, startPebble, until } from '../../../test/helpers/pebble.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const SEED = join(repo, 'test/fixtures/seed-config.yaml');
const SECRET = 'seed-https-webhook-secret';

test('the seed configuration, placeholders filled: flint serve takes a signed webhook over HTTPS on example.net:443 with a certificate from ACME, and port 80 redirects', async (t) => {
  if (!requirePrereqs(t, root, program('pebble'), program('pebble-challtestsrv'), program('openssl'))) return;
  if (!(await inPrivateNetns())) {
    t.skip('needs a private network namespace for ports 80 and 443 (run through scripts/test.mjs)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'flint-seed-https-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pebble = await startPebble(t);

  const doc = parseDocument(readFileSync(SEED, 'utf8'));
  const domain = String(doc.get('address')).replace(/:443$/, '');
  assert.equal(domain, 'example.net', 'the seed serves HTTPS on its own host name');
  doc.setIn(['github', 'appID'], '1234');
  doc.setIn(['github', 'organization'], 'acme');
  doc.setIn(['github', 'webhookSecret'], SECRET);
  doc.setIn(['github', 'privateKey'], generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  doc.setIn(['github', 'apiUrl'], 'http://127.0.0.1:9');
  doc.set('acme', { directoryUrl: pebble.directoryUrl, caFile: pebble.caFile });
  doc.set('stateDir', join(dir, 'state'));
  doc.set('runDir', join(dir, 'run'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, doc.toString(), { mode: 0o600 });

  const child = spawn(process.execPath, [join(repo, 'bin/flint.mjs'), 'serve', '--config', configPath], {
    env: { ...process.env, FLINT_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (b: Buffer) => { log += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { log += b.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  });
  const failed = (err: unknown): never => { throw new Error(`${err instanceof Error ? err.message : String(err)}\nflint serve's output:\n${log.slice(-6000)}`); };

  // The certificate: issued by pebble for the seed's name, verified against pebble's root only.
  const cert = await until('the certificate from ACME', async () => {
    if (child.exitCode !== null) throw new Error(`flint serve exited with ${child.exitCode}`);
    return servedCertificate({ servername: domain, ca: pebble.root });
  }, 90_000).catch(failed);
  assert.match(cert.subjectAltName, /DNS:example\.net/);
  assert.match(log, /"mode":"full"/, 'the whole Flint runs, not the webhook intake alone');

  // Signed webhooks over that TLS connection.
  const ping = signedDelivery(SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, 'seed-ping');
  const pong = await httpsTo({ servername: domain, ca: pebble.root, method: 'POST', path: '/webhook', headers: ping.headers, body: ping.body });
  assert.equal(pong.status, 200, pong.body);
  const queued = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId: 4711, action: 'queued', labels: ['self-hosted', 'Linux', 'amd64'] }), 'seed-queued');
  const accepted = await httpsTo({ servername: domain, ca: pebble.root, method: 'POST', path: '/webhook', headers: queued.headers, body: queued.body });
  assert.equal(accepted.status, 202, accepted.body);
  const unsigned = await httpsTo({ servername: domain, ca: pebble.root, method: 'POST', path: '/webhook', headers: { ...queued.headers, 'x-hub-signature-256': 'sha256=00' }, body: queued.body });
  assert.equal(unsigned.status, 401, 'a delivery with a wrong signature is refused');

  // Port 80: HTTPS only, to the configured name whatever the Host header says.
  assert.deepEqual(await plainGet('/webhook', domain), { status: 301, location: `https://${domain}/webhook` });
  assert.deepEqual(await plainGet('/healthz?x=1', 'evil.example'), { status: 301, location: `https://${domain}/healthz?x=1` });

  // SIGTERM drains (no busy runner) and stops cleanly; no secret reached the log.
  child.kill('SIGTERM');
  assert.equal(await exited, 0, log.slice(-4000));
  assert.ok(!log.includes(SECRET), 'the webhook secret is not logged');
  assert.ok(!log.includes('PRIVATE KEY'), 'the private key is not logged');
});
