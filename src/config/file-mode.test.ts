import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inlineSecrets, referencedFileWarnings, referencedSecretFiles, secretFileWarning } from './file-mode.ts';

test('inline secrets are plain strings under github:; {env: NAME} references and privateKeyFile are not', () => {
  assert.deepEqual(inlineSecrets({ github: { webhookSecret: 's', previousWebhookSecret: 'p', privateKey: '-----BEGIN' } }), ['github.webhookSecret', 'github.previousWebhookSecret', 'github.privateKey']);
  assert.deepEqual(inlineSecrets({ github: { webhookSecret: { env: 'S' }, privateKeyFile: '/etc/flint/app.pem' } }), []);
  assert.deepEqual(inlineSecrets(null), []);
  assert.deepEqual(inlineSecrets({ github: 'x' }), []);
  assert.deepEqual(inlineSecrets({ status: { token: 't'.repeat(20) } }), ['status.token'], 'the status page token is a secret');
  assert.deepEqual(inlineSecrets({ status: { token: { env: 'T' } } }), []);
});

test('which permission bits leak a secret: group or other read; owner-only and no-secret files are fine', () => {
  const s = ['github.privateKey'];
  assert.equal(secretFileWarning('/c', 0o100600, s), undefined);
  assert.equal(secretFileWarning('/c', 0o100400, s), undefined);
  assert.equal(secretFileWarning('/c', 0o100620, s), undefined, 'group write alone does not reveal the content');
  assert.match(secretFileWarning('/c', 0o100640, s)?.message ?? '', /its group may read it \(mode 640\)$/);
  assert.match(secretFileWarning('/c', 0o100604, s)?.message ?? '', /every user of this host may read it \(mode 604\)$/);
  assert.equal(secretFileWarning('/c', 0o100644, []), undefined);
  assert.equal(secretFileWarning('/c', 0o100644, s)?.code, 'FLINT_ERR_CONFIG_READABLE_BY_OTHERS');
});

test('the files a configuration names that hold secrets: the private key file and the TLS key, each warned about when others may read it', () => {
  const modes: Record<string, number> = { '/k.pem': 0o100644, '/tls.key': 0o100600 };
  const config = { github: { privateKeyFile: '/k.pem' }, tls: { certFile: '/tls.crt', keyFile: '/tls.key' } } as unknown as Parameters<typeof referencedFileWarnings>[0]; // only the two paths are read
  assert.deepEqual(referencedSecretFiles(config).map((f) => f.file), ['/k.pem', '/tls.key']);
  const ws = referencedFileWarnings(config, (f) => modes[f]);
  assert.equal(ws.length, 1);
  assert.match(ws[0]?.message ?? '', /^\/k\.pem holds the App's private key and its group and every user of this host may read it \(mode 644\)$/);
  assert.equal(ws[0]?.hint, 'chmod 600 /k.pem (owned by the user Flint runs as)');
  modes['/tls.key'] = 0o100604;
  assert.match(referencedFileWarnings(config, (f) => modes[f])[1]?.message ?? '', /^\/tls\.key holds the TLS private key and every user/);
  assert.deepEqual(referencedFileWarnings(config, () => undefined), [], 'a file that cannot be examined: the loader reports it');
  assert.deepEqual(referencedSecretFiles({ github: {} } as unknown as Parameters<typeof referencedSecretFiles>[0]), []); // an inline key, no TLS
});
