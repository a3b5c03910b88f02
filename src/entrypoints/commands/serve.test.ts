import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../config/load.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { openDatabase } from '../../adapters/store/db.ts';
import { createSqliteIntakeStore } from '../../adapters/store/intake-store.ts';
import { signedDelivery, workflowJobPayload } from '../../../bench/_payload.ts';
import { listenPlan } from '../../config/listen-plan.ts';
import { startWebhooksOnly } from '../flint.ts';
import { unusableOnThisHost } from './serve.ts';

const SECRET = 'serve-test-secret-value';
const root = fileURLToPath(new URL('../../../', import.meta.url));

function writeConfig(dir: string, address = '127.0.0.1:0'): string {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, `logLevel: info
address: "${address}"
stateDir: ${join(dir, 'state')}
networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 1234
  organization: acme
  webhookSecret: {env: FLINT_TEST_WEBHOOK_SECRET}
  previousWebhookSecret: old-serve-secret
  privateKey: inline-key
runners:
  - name: small
    labels: [self-hosted, linux, x64]
    kernel: /srv/flint/vmlinux
    filesystem: /srv/flint/rootfs.ext4
    hypervisor: qemu
    network: br-flint
`);
  return path;
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-serve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function post(url: string, jobId: number, id?: string): Promise<Response> {
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId, action: 'queued' }), id);
  return fetch(`${url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
}

test('serve --webhooks-only takes a webhook, and after a graceful stop the delivery is in the state database', async (t) => {
  const dir = tempDir(t);
  const config = loadConfigFile(writeConfig(dir), { FLINT_TEST_WEBHOOK_SECRET: SECRET });
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (l: string) => lines.push(l) }, secrets: new Set(config.github.webhookSecrets) });
  const serving = await startWebhooksOnly({ config, logger, synchronous: 'NORMAL' });
  let stopped = false;
  t.after(async () => { if (!stopped) await serving.close(); });
  const health = await fetch(`${serving.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok', ok: true, database: 'open', synchronous: 'NORMAL' }, '--db-sync is what the connection runs at');
  assert.deepEqual(serving.loops().map((l) => l.name), ['delivery-retention'], 'no VM, no GitHub: only the intake\'s own loop');
  const replies = await Promise.all([post(serving.url, 1, 'a'), post(serving.url, 2, 'b'), post(serving.url, 3, 'c')]);
  assert.deepEqual(replies.map((r) => r.status), [202, 202, 202]);
  assert.equal((await post(serving.url, 1, 'a')).status, 200, 'a duplicate');
  await serving.close();
  stopped = true;
  await assert.rejects(fetch(`${serving.url}/healthz`));
  const db = openDatabase(config.stateDir);
  t.after(() => db.close());
  const store = createSqliteIntakeStore(db);
  assert.equal(await store.countDeliveries(), 3);
  assert.deepEqual((await store.listJobs({ status: 'queued' })).map((j) => j.definition), ['small', 'small', 'small']);
  const log = lines.join('');
  assert.match(log, /listening for webhooks/);
  assert.ok(!log.includes(SECRET) && !log.includes('old-serve-secret'), 'no webhook secret in the log');
});

test('the address picks the listening mode: 443 is ACME for its host, tls files win, other ports are plain HTTP', () => {
  const acme = { directoryUrl: 'https://ca.test/dir' };
  assert.deepEqual(listenPlan({ address: 'Flint.Example.com:443', email: 'ops@example.com', acme }), {
    kind: 'acme', domain: 'flint.example.com', port: 443, challengePort: 80, email: 'ops@example.com', directoryUrl: 'https://ca.test/dir',
  });
  assert.throws(() => listenPlan({ address: ':443', email: 'ops@example.com', acme }), { code: 'FLINT_ERR_CONFIG_CONFLICT' });
  assert.deepEqual(listenPlan({ address: ':443', acme, tls: { certFile: '/c', keyFile: '/k' } }), { kind: 'tls-files', host: '', port: 443, certFile: '/c', keyFile: '/k' });
  assert.deepEqual(listenPlan({ address: ':8080', acme }), { kind: 'http', host: '', port: 8080 });
  assert.deepEqual(listenPlan({ address: '[::1]:8080', acme }), { kind: 'http', host: '::1', port: 8080 });
});

test('an address already in use is FLINT_ERR_LISTEN_FAILED', async (t) => {
  const dir = tempDir(t);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port; // TCP listener
  const config = loadConfigFile(writeConfig(dir, `127.0.0.1:${port}`), { FLINT_TEST_WEBHOOK_SECRET: SECRET });
  const logger = createLogger({ level: 'silent' });
  await assert.rejects(startWebhooksOnly({ config, logger }), { code: 'FLINT_ERR_LISTEN_FAILED' });
});

test('flint serve --webhooks-only as a process: listens, takes deliveries, stops on SIGTERM with exit 0 and loses none it acknowledged', async (t) => {
  const dir = tempDir(t);
  const configPath = writeConfig(dir);
  chmodSync(configPath, 0o644); // holds previousWebhookSecret and privateKey inline: serve warns
  const child = spawn(process.execPath, [join(root, 'bin/flint.mjs'), 'serve', '--webhooks-only', '--config', configPath, '--log-level', 'debug'], {
    env: { ...process.env, FLINT_FROM_SOURCE: '1', FLINT_TEST_WEBHOOK_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`flint serve exited with ${code}: ${err}`)));
  });
  assert.equal((await post(url, 77, 'proc-1')).status, 202);
  // A burst, and SIGTERM while it is in flight: whatever was answered 2xx
  // must be in the database afterwards.
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const burst = Array.from({ length: 40 }, (_, i) => post(url, 100 + i, `burst-${i}`).then((r) => (r.status === 202 ? `burst-${i}` : undefined), () => undefined));
  setTimeout(() => child.kill('SIGTERM'), 5);
  const acked = (await Promise.all(burst)).filter((id): id is string => id !== undefined);
  assert.equal(await exited, 0, err);
  assert.match(out, /flint serve: stopped/);
  assert.ok(!out.includes(SECRET), 'no webhook secret in the log');
  assert.match(out, /"level":"warn".*"code":"FLINT_ERR_CONFIG_READABLE_BY_OTHERS".*holds github\.previousWebhookSecret, github\.privateKey and its group and every user of this host may read it/);
  assert.ok(!out.includes('old-serve-secret'), 'nor the previous one');
  const db = openDatabase(join(dir, 'state'));
  t.after(() => db.close());
  const store = createSqliteIntakeStore(db);
  assert.equal((await store.getDelivery('proc-1'))?.outcome, 'accepted');
  for (const id of acked) assert.ok(await store.getDelivery(id), `${id} was acknowledged but is not stored`);
});

test('a state directory that cannot be used is FLINT_ERR_STORE_OPEN_FAILED', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'state'), 'a file, not a directory');
  const config = loadConfigFile(writeConfig(dir), { FLINT_TEST_WEBHOOK_SECRET: SECRET });
  await assert.rejects(startWebhooksOnly({ config, logger: createLogger({ level: 'silent' }) }), { code: 'FLINT_ERR_STORE_OPEN_FAILED' });
});

test('flint serve --help, and unknown or bad options are usage errors (exit 2)', async () => {
  const { main } = await import('../cli.ts');
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const code = await main(argv, { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, env: {} });
    return { code, out, err };
  };
  const help = await run(['serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /--webhooks-only/);
  for (const argv of [['serve', '--bogus'], ['serve', '--db-sync', 'OFF'], ['serve', '--webhook-body-limit', '12'], ['serve', '--config']]) {
    const r = await run(argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, /FLINT_ERR_USAGE/);
  }
});

test('what flint serve warns about at start: the settings flint config check calls not usable on this host (missing kernel and image, a key that does not parse)', (t) => {
  const dir = tempDir(t);
  const configPath = writeConfig(dir);
  const env = { FLINT_TEST_WEBHOOK_SECRET: SECRET };
  const found = unusableOnThisHost(configPath, env);
  assert.deepEqual(found.map((p) => p.path).sort(), ['github.privateKey', 'runners[0].filesystem', 'runners[0].kernel']);
  assert.match(found.find((p) => p.path === 'runners[0].kernel')?.message ?? '', /\/srv\/flint\/vmlinux does not exist/);
  const present = { check: () => undefined };
  assert.deepEqual(unusableOnThisHost(configPath, env, present).map((p) => p.path), ['github.privateKey'], 'files present: only the key is left');
});
