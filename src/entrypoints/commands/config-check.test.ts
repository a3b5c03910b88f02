import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../cli.ts';

const SEED = fileURLToPath(new URL('../../../test/fixtures/seed-config.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flint-config-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const WEBHOOK_SECRET = 'whsec-do-not-print-4711';

function file(name: string, content: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

async function check(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = {
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: (s: string) => { err += s; } },
    env: { FLINT_WEBHOOK_SECRET: WEBHOOK_SECRET },
  };
  const code = await main(['config', 'check', ...argv], io);
  return { code, out, err };
}

file('vmlinux', 'kernel');
file('rootfs.ext4', 'rootfs');
file('jailer', '#!/bin/sh\n', 0o755);
file('firecracker', '#!/bin/sh\n', 0o755);
file('app.pem', pem, 0o600);
const GOOD = `logLevel: info
address: "127.0.0.1:8080"
stateDir: ${dir}/state
instanceId: t1
networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 4242
  organization: acme
  webhookSecret: {env: FLINT_WEBHOOK_SECRET}
  privateKeyFile: app.pem
runners:
  - name: small
    labels: [self-hosted, linux, x64]
    kernel: vmlinux
    filesystem: rootfs.ext4
    jailer: jailer
    firecracker: firecracker
    network: br-flint
    maxRunners: 4
    minIdle: 1
`;

test('a valid, usable file: summary on stdout, exit 0, and no secret anywhere in the output', async () => {
  const path = file('good.yaml', GOOD);
  const r = await check(path);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  assert.match(r.out, /valid configuration/);
  assert.match(r.out, /organization acme, App 4242, API https:\/\/api\.github\.com/);
  assert.match(r.out, /small {2}labels \[self-hosted, linux, x64\]/);
  assert.match(r.out, /max 4, warm 1, timeout 6h/);
  assert.match(r.out, /br-flint {2}10\.0\.0\.1\/24/);
  assert.match(r.out, new RegExp(`state in ${dir}/state`));
  assert.match(r.out, /usable on this host/);
  assert.ok(!r.out.includes(WEBHOOK_SECRET), 'webhook secret printed');
  assert.ok(!r.out.includes(pem.split('\n')[3] ?? 'x'), 'private key printed');
});

test('the seed file is valid but its placeholder key, app id and paths are not usable yet (exit 3)', async () => {
  const r = await check(SEED);
  assert.equal(r.code, 3);
  assert.match(r.out, /valid configuration/);
  const lines = r.err.trim().split('\n');
  assert.ok(lines.some((l) => /seed-config\.yaml:11:15: github\.privateKey: the private key is a placeholder \("\.\.\."\)/.test(l)), r.err);
  assert.ok(lines.some((l) => /seed-config\.yaml:8:10: github\.appID: "ID" is not a GitHub App id/.test(l)), r.err);
  for (const key of ['kernel', 'filesystem', 'jailer', 'firecracker']) {
    assert.ok(lines.some((l) => new RegExp(`runners\\[0\\]\\.${key}: .* does not exist`).test(l)), `${key}: ${r.err}`);
  }
  assert.match(r.err, /FLINT_ERR_CONFIG_UNUSABLE: .* is valid, but 6 settings are not usable on this host yet/);
  assert.ok(!r.err.includes('WEBHOOK_SECRET') && !r.out.includes('WEBHOOK_SECRET'), 'the seed webhook secret was printed');
});

test('--no-host-checks checks the structure only: the seed passes', async () => {
  const r = await check('--no-host-checks', SEED);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /host checks skipped/);
});

test('an invalid file: every problem as FILE:LINE:COL: key.path: message (hint), exit 2', async () => {
  const path = file('bad.yaml', GOOD.replace('    maxRunners: 4\n', '    maxRunnrs: 4\n').replace('v4: 10.0.0.1/24', 'v4: 10.0.0.0/24').replace('  webhookSecret: {env: FLINT_WEBHOOK_SECRET}', '  webhookSecret: {env: FLINT_NOT_SET}'));
  const r = await check('--config', path);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  const lines = r.err.trim().split('\n');
  assert.equal(lines[0], `${path}:7:9: networks[0].v4: 10.0.0.0 is the network address of 10.0.0.0/24; use a host address such as 10.0.0.1/24 (the bridge's own IPv4 address with prefix, e.g. "10.0.0.1/24"; guests get the other addresses)`);
  assert.equal(lines[1], `${path}:11:18: github.webhookSecret: environment variable FLINT_NOT_SET is not set (set FLINT_NOT_SET in Flint's environment, or write the value in the file)`);
  assert.equal(lines[2], `${path}:21:5: runners[0].maxRunnrs: unknown key \`maxRunnrs\` (did you mean \`maxRunners\`?)`);
  assert.match(lines[3] ?? '', /^flint: FLINT_ERR_CONFIG_INVALID: .* is not a valid configuration \(3 problems\)$/);
  assert.match(lines[4] ?? '', /^ {2}hint: /);
  assert.equal(lines.length, 5);
});

test('a file that cannot be read is FLINT_ERR_CONFIG_UNREADABLE, exit 1', async () => {
  const r = await check(join(dir, 'missing.yaml'));
  assert.equal(r.code, 1);
  assert.match(r.err, /FLINT_ERR_CONFIG_UNREADABLE: cannot read configuration file .*missing\.yaml \(ENOENT\)/);
});

test('usage errors exit 2; --help exits 0', async () => {
  assert.equal((await check('--frobnicate')).code, 2);
  assert.equal((await check('a.yaml', 'b.yaml')).code, 2);
  const help = await check('--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /Exit status: 0 valid, 2 not valid, 3 valid but not usable/);
});

test('a file holding the webhook secret inline that others may read: a warning with the chmod, the exit status unchanged', async () => {
  const inline = GOOD.replace('webhookSecret: {env: FLINT_WEBHOOK_SECRET}', `webhookSecret: ${WEBHOOK_SECRET}`);
  const open = file('readable.yaml', inline, 0o644);
  let r = await check(open);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, `flint: warning: FLINT_ERR_CONFIG_READABLE_BY_OTHERS: ${open} holds github.webhookSecret and its group and every user of this host may read it (mode 644)\n` +
    `  hint: chmod 600 ${open} (owned by the user Flint runs as), or move the secrets out: \`privateKeyFile:\` (mode 0600) for the key, {env: VARIABLE} for the webhook secret and the status token\n`);
  assert.ok(!r.err.includes(WEBHOOK_SECRET) && !r.out.includes(WEBHOOK_SECRET));
  r = await check(file('private.yaml', inline, 0o600));
  assert.equal(r.err, '', 'owner-only: nothing to say');
  r = await check(file('no-secret.yaml', GOOD, 0o644));
  assert.equal(r.err, '', 'secrets from the environment and a key file: a readable file leaks nothing');
});

test('a private key file that others may read: a warning naming it with the chmod, the exit status unchanged', async () => {
  file('open.pem', pem, 0o640);
  const r = await check(file('open-key.yaml', GOOD.replace('privateKeyFile: app.pem', 'privateKeyFile: open.pem'), 0o600));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, `flint: warning: FLINT_ERR_CONFIG_READABLE_BY_OTHERS: ${join(dir, 'open.pem')} holds the App's private key and its group may read it (mode 640)\n` +
    `  hint: chmod 600 ${join(dir, 'open.pem')} (owned by the user Flint runs as)\n`);
  assert.ok(!r.err.includes(pem.split('\n')[1] ?? 'x') && !r.out.includes(pem.split('\n')[1] ?? 'x'), 'the key itself is not shown');
});
