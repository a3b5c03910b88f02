/**
 * The secret scanner finds what it must (so the end-to-end scan in
 * src/entrypoints/flint-secrets.test.ts can fail) and says where, with the
 * secret masked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFinding, processTree, readableByOthers, scanCommandLines, scanEnvirons, scanText, scanTree, secretNeedles } from './secret-scan.ts';

const PEM = ['-----BEGIN RSA PRIVATE KEY-----', ...Array.from({ length: 6 }, (_, i) => `${String.fromCharCode(65 + i).repeat(20)}${i}abcdefghijklmnopqrstuvwxyz0123456789+/xyz`), '-----END RSA PRIVATE KEY-----', ''].join('\n');
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');
const JIT = b64({ '.runner': b64({ agentId: 1 }), '.credentials': b64({ data: { clientId: 'client-id-0123456789' } }), '.credentials_rsaparams': b64({ d: 'rsa-private-exponent-'.repeat(5) }) });
const SECRETS = { privateKeyPem: PEM, webhookSecrets: ['hook-secret-abcdef'], installationTokens: ['ghs_tokentokentokentoken0123'], jitConfigs: [JIT] };

test('a secret in a text is found with its name and a masked snippet; the secret itself is not printed', () => {
  const needles = secretNeedles(SECRETS);
  const found = scanText('a log', `{"msg":"sent","auth":"token ghs_tokentokentokentoken0123","x":1}`, needles);
  assert.equal(found.length, 1);
  const line = describeFinding(found[0] ?? { secret: '', where: '', snippet: '' });
  assert.match(line, /^installation token 1 in a log: …\{"msg":"sent","auth":"token «installation token 1»","x":1\}…$/);
  assert.doesNotMatch(line, /ghs_token/);
});

test('a PEM key is found whole, JSON-escaped and by one of its lines; a JIT config by its decoded client id', () => {
  const needles = secretNeedles(SECRETS);
  const body = PEM.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
  assert.ok(scanText('t', PEM, needles).some((f) => f.secret === 'private key (PEM body)'));
  assert.ok(scanText('t', JSON.stringify({ key: PEM }), needles).some((f) => f.secret === 'private key (PEM body, JSON-escaped)'));
  assert.ok(scanText('t', `cut: ${body[3] ?? ''}`, needles).length >= 1, 'one line of the key is enough');
  assert.ok(scanText('t', 'session client-id-0123456789 started', needles).some((f) => /decoded \.credentials|clientId/.test(f.secret)));
  assert.deepEqual(scanText('t', 'nothing to see here', needles), []);
});

test('files: one others may read is scanned and reported with its mode, an owner-only one is not; a secret across a piece boundary is found', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-scan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'open.log'), 'hook-secret-abcdef');
  chmodSync(join(dir, 'sub', 'open.log'), 0o644);
  writeFileSync(join(dir, 'closed.tar'), 'hook-secret-abcdef');
  chmodSync(join(dir, 'closed.tar'), 0o600);
  // 4 MiB pieces: the secret straddles the first boundary.
  const big = Buffer.alloc(4 * 1024 * 1024 + 64, 0x20);
  big.write('hook-secret-abcdef', 4 * 1024 * 1024 - 5, 'latin1');
  writeFileSync(join(dir, 'big.img'), big, { mode: 0o644 });
  chmodSync(join(dir, 'big.img'), 0o644);
  const needles = secretNeedles(SECRETS);
  const scan = scanTree(dir, needles);
  assert.deepEqual(scan.findings.map((f) => f.where).sort(), [`file ${join(dir, 'big.img')} (mode 0644, gid 0)`, `file ${join(dir, 'sub', 'open.log')} (mode 0644, gid 0)`].sort());
  assert.equal(scanTree(dir, needles, { all: true }).findings.length, 3, 'with all, the owner-only file too');
  assert.equal(readableByOthers(0o640, 0), false, 'group root is not "others"');
  assert.equal(readableByOthers(0o640, 100), true);
});

test('a child\'s command line and environment are scanned; its pid is in the tree of this process', async (t) => {
  const child = spawn('sh', ['-c', 'sleep 30; :', 'sh', 'hook-secret-abcdef'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SECRET: 'ghs_tokentokentokentoken0123' }, stdio: 'ignore', detached: true });
  // Its own process group: the shell and its sleep go together.
  const kill = (): void => { try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { /* gone already */ } };
  t.after(kill);
  await new Promise((r) => child.once('spawn', r));
  const needles = secretNeedles(SECRETS);
  assert.ok(child.pid !== undefined);
  assert.ok(processTree(process.pid).includes(child.pid), 'the child is in the tree');
  assert.ok(scanCommandLines(needles).some((f) => f.where === `cmdline of pid ${child.pid} (sh)` && f.secret === 'webhook secret 1'));
  assert.deepEqual(scanEnvirons([child.pid], needles).map((f) => f.secret), ['installation token 1']);
  const gone = new Promise((r) => child.once('exit', r));
  kill();
  await gone;
});

test('the snippet masks the rest of a secret around the match too (the next lines of a key)', () => {
  const needles = secretNeedles(SECRETS);
  const found = scanText('env', `KEY=${PEM}`, needles);
  const body = PEM.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
  for (const f of found) {
    for (const line of body) assert.ok(!describeFinding(f).includes(line.slice(0, 20)), `no piece of the key in: ${describeFinding(f)}`);
  }
  assert.ok(found.length >= 1);
});
