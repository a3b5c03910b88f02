import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inlineSecrets, secretFileWarning } from './file-mode.ts';

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
