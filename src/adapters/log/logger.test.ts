import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createLogger, logLevelFrom } from './logger.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { REDACTED, scrubText } from './redact.ts';

function collector() {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => { lines.push(s); } } };
}

const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const pemBody = pem.split('\n')[5] ?? '';
const SECRETS = {
  webhookSecret: 'whsec-3f9a1c0d7e',
  token: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a',
  bearer: 'v1.0123456789abcdef0123456789abcdef01234567',
  jit: 'eyJydW5uZXIiOiJmbGludC1oN2syLTAwMDAxIn0xxxxJITCONFIGBLOB',
  password: 'hunter2-but-longer',
};

test('no kind of secret reaches the log output, whatever the key, depth or shape', () => {
  const { lines, destination } = collector();
  const log = createLogger({ level: 'trace', destination, secrets: new Set([SECRETS.webhookSecret]) });
  log.info({ privateKey: pem }, 'app key loaded');
  log.info({ github: { privateKey: pem, webhookSecrets: [SECRETS.webhookSecret] } }, 'config');
  log.info({ request: { headers: { authorization: `token ${SECRETS.token}`, Authorization: `Bearer ${SECRETS.bearer}` } } }, 'request');
  log.info({ deep: { a: { b: { c: { token: SECRETS.token } } } } }, 'deep');
  log.info({ body: { encoded_jit_config: SECRETS.jit, runner: { id: 7 } } }, 'jit registered');
  log.info({ env: { FLINT_JITCONFIG: SECRETS.jit }, jitConfig: SECRETS.jit }, 'config drive');
  log.info({ user: { password: SECRETS.password } }, 'login');
  // Secrets inside free text: the message and a field named innocently.
  log.warn({ note: `installation token is ${SECRETS.token}` }, `webhook secret ${SECRETS.webhookSecret} rejected`);
  log.warn(`curl -H "Authorization: Bearer ${SECRETS.bearer}"`);
  log.debug({ raw: pem }, 'a key in a field with an innocent name');
  // Errors: message, own fields, cause.
  const err = Object.assign(new Error(`GitHub said 401 for token ${SECRETS.token}`), {
    request: { headers: { authorization: `Bearer ${SECRETS.bearer}` } },
    cause: Object.assign(new Error('inner'), { jitConfig: SECRETS.jit }),
  });
  log.error({ err }, 'call failed');
  log.error(err);
  // Child bindings.
  log.child({ token: SECRETS.token, vm: 'h7k2-00001' }).info('child');

  const out = lines.join('');
  assert.equal(lines.length, 13);
  for (const [kind, secret] of Object.entries(SECRETS)) {
    assert.ok(!out.includes(secret), `${kind} leaked: ${out}`);
  }
  assert.ok(!out.includes(pemBody), 'private key body leaked');
  assert.ok(!out.includes('BEGIN RSA PRIVATE KEY'), 'private key header leaked');
  assert.ok(out.includes(REDACTED));
  // What is not secret still gets through.
  assert.match(out, /"vm":"h7k2-00001"/);
  assert.match(out, /"id":7/);
  assert.match(out, /GitHub said 401/);
});

test('a secret registered after the logger was made is scrubbed too', () => {
  const { lines, destination } = collector();
  const secrets = new Set<string>();
  const log = createLogger({ level: 'info', destination, secrets });
  secrets.add('late-added-secret-value');
  log.info({ harmless: 'late-added-secret-value' }, 'value late-added-secret-value');
  assert.ok(!lines.join('').includes('late-added-secret-value'));
});

test('lines are JSON with level label, time and message; below the level nothing is written', () => {
  const { lines, destination } = collector();
  const log = createLogger({ level: 'warn', destination, base: { instance: 'h7k2' } });
  log.info('quiet');
  log.warn({ vm: 'h7k2-00001' }, 'loud');
  assert.equal(lines.length, 1);
  // Each pino line is one JSON object.
  const rec = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(rec['level'], 'warn');
  assert.equal(rec['msg'], 'loud');
  assert.equal(rec['instance'], 'h7k2');
  assert.equal(typeof rec['time'], 'string');
});

test('short registered secrets are not used for scrubbing (they would shred every line)', () => {
  assert.equal(scrubText('the cat sat', ['at']), 'the cat sat');
});

test('--log-level overrides the configured level; a bad level is a usage error', () => {
  assert.equal(logLevelFrom(['serve'], 'info'), 'info');
  assert.equal(logLevelFrom(['serve', '--log-level', 'debug'], 'info'), 'debug');
  assert.equal(logLevelFrom(['--log-level=TRACE'], 'info'), 'trace');
  assert.throws(() => logLevelFrom(['--log-level', 'loud'], 'info'), (e) => isFlintError(e, 'FLINT_ERR_USAGE'));
});

test('prose about tokens is kept; credentials after the same words are not', () => {
  assert.equal(scrubText('installation token refreshed for org'), 'installation token refreshed for org');
  assert.equal(scrubText('Authorization: token 0123456789abcdef01234'), `Authorization: token ${REDACTED}`);
});
