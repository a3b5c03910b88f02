/**
 * Automatic HTTPS against a real ACME server: Debian's pebble, with
 * pebble-challtestsrv as its DNS (every A record → 127.0.0.1), inside the
 * test's private network namespace. Pebble validates HTTP-01 on port 80 of
 * the test domain for real; a TLS client that trusts only pebble's root
 * then delivers a webhook to Flint on port 443. Renewal runs on an injected
 * clock and timer: moving the clock into the renewal window and firing the
 * loop's timer puts a new certificate in service without a restart.
 *
 * Second: the seed configuration (test/fixtures/seed-config.yaml, every key
 * as the reference system's users wrote it) with its placeholders filled
 * starts a whole `flint serve` — a child process, not --webhooks-only — that
 * serves webhooks on the seed's own `address`, example.net:443, with a
 * certificate from pebble. Filled in: the App id, organization, webhook
 * secret and private key (a fresh RSA key); added: `acme`, `stateDir` and
 * `runDir` (temporary) and `github.apiUrl` (a closed loopback port: no
 * GitHub here, so its calls fail at once). The runner's Firecracker paths
 * stay the seed's: `flint serve` starts without them and needs them only to
 * boot a VM, which this test does not.
 *
 * Both tests bind ports 80 and 443 and pebble's fixed ports: they live in
 * one file so that they never run at the same time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { loadConfigFile } from '../../config/load.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import { startWebhooksOnly } from '../flint.ts';
import { inPrivateNetns } from '../../../test/helpers/netns.ts';
import { httpsTo, plainGet, servedCertificate, startPebble, until } from '../../../test/helpers/pebble.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';

const DOMAIN = 'flint.test';
const SECRET = 'https-test-webhook-secret';
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const SEED = join(repo, 'test/fixtures/seed-config.yaml');
const SEED_SECRET = 'seed-https-webhook-secret';

function postWebhook(ca: string, deliveryId: string): ReturnType<typeof httpsTo> {
  const d = signedDelivery(SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, deliveryId);
  return httpsTo({ servername: DOMAIN, ca, method: 'POST', path: '/webhook', headers: d.headers, body: d.body });
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
  const dir = mkdtempSync(join(tmpdir(), 'flint-https-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pebble = await startPebble(t);
  const pebbleRoot = pebble.root;

  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, `address: ${DOMAIN}:443
email: ops@flint.test
acme:
  directoryUrl: ${pebble.directoryUrl}
  caFile: ${pebble.caFile}
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
  const first = await until('the first certificate', () => servedCertificate({ servername: DOMAIN, ca: pebbleRoot }))
    .catch((err: unknown) => { throw new Error(`${err instanceof Error ? err.message : String(err)}\n${lines.join('')}`); });
  const reply = await postWebhook(pebbleRoot, 'delivery-1');
  assert.equal(reply.status, 200, reply.body);
  assert.equal(JSON.parse(reply.body).outcome, 'pong');

  // Port 80 redirects to the configured host (never the Host header's), and knows no stale challenge.
  assert.deepEqual(await plainGet('/webhook?x=1', 'evil.example'), { status: 301, location: `https://${DOMAIN}/webhook?x=1` });
  assert.equal((await plainGet('/.well-known/acme-challenge/no-such-token', 'evil.example')).status, 404);

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
  assert.equal((await servedCertificate({ servername: DOMAIN, ca: pebbleRoot })).serial, first.serial, 'a fresh certificate is kept');

  // A day before expiry (well inside the last third of the lifetime): the next pass renews.
  now = Date.parse(first.validTo) - 24 * 3600_000;
  manual.fire();
  const renewed = await until('the renewed certificate', async () => {
    const c = await servedCertificate({ servername: DOMAIN, ca: pebbleRoot });
    return c.serial === first.serial ? undefined : c;
  });
  assert.notEqual(renewed.serial, first.serial);
  assert.notEqual(readFileSync(join(acmeDir, 'certs', DOMAIN, 'cert.pem'), 'utf8'), storedFirst, 'the renewed certificate is stored');
  assert.equal(readFileSync(join(acmeDir, 'account.key'), 'utf8'), accountKey, 'the account is kept');
  const again = await postWebhook(pebbleRoot, 'delivery-2');
  assert.equal(again.status, 200, again.body);
  assert.match(lines.join(''), /certificate-renewal: new certificate in service/);
});

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
  doc.setIn(['github', 'webhookSecret'], SEED_SECRET);
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
  const ping = signedDelivery(SEED_SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, 'seed-ping');
  const pong = await httpsTo({ servername: domain, ca: pebble.root, method: 'POST', path: '/webhook', headers: ping.headers, body: ping.body });
  assert.equal(pong.status, 200, pong.body);
  const queued = signedDelivery(SEED_SECRET, 'workflow_job', workflowJobPayload({ jobId: 4711, action: 'queued', labels: ['self-hosted', 'Linux', 'amd64'] }), 'seed-queued');
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
  assert.ok(!log.includes(SEED_SECRET), 'the webhook secret is not logged');
  assert.ok(!log.includes('PRIVATE KEY'), 'the private key is not logged');
});
