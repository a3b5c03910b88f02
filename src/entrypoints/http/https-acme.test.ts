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
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../config/load.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { signedDelivery } from '../../../bench/_payload.ts';
import { startWebhooksOnly } from '../flint.ts';
import { inPrivateNetns } from '../../../test/helpers/netns.ts';
import { httpsTo, plainGet, servedCertificate, startPebble, until } from '../../../test/helpers/pebble.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';

const DOMAIN = 'flint.test';
const SECRET = 'https-test-webhook-secret';

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
