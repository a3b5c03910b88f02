import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeListening, describePlan, listenPlan } from './listen-plan.ts';
import { parseConfig } from './load.ts';
import { summarizeConfig } from './summary.ts';
import type { FlintConfig } from './types.ts';

function config(head: string): FlintConfig {
  const text = `${head}
networks: [{name: br-flint, v4: 10.0.0.1/24}]
github: {appID: 1234, organization: acme, webhookSecret: s3cret-webhook, privateKey: inline-key}
runners:
  - {name: small, labels: [self-hosted], kernel: /srv/flint/vmlinux, filesystem: /srv/flint/rootfs.ext4, hypervisor: qemu}
`;
  const r = parseConfig(text, '/etc/flint/config.yaml', {}, () => 'PEM', { baseDir: '/etc/flint' });
  if (!r.ok) assert.fail(JSON.stringify(r.problems));
  return r.config;
}

/** The listen line of `flint config check`'s summary. */
function summaryLine(c: FlintConfig): string {
  const line = summarizeConfig(c).find((l) => l.startsWith('listen '));
  assert.ok(line !== undefined);
  return line;
}

test('port 443: HTTPS from ACME for the host, naming the directory and the contact, in config check and the start-up log alike', () => {
  const c = config('address: Flint.Example.com:443\nemail: ops@example.com\nacme: {directoryUrl: "https://ca.example.com/dir"}');
  const said = 'HTTPS with a certificate for flint.example.com from the ACME directory https://ca.example.com/dir, contact ops@example.com, ' +
    'renewed automatically; port 80 answers the challenges and redirects the rest to HTTPS';
  assert.equal(describePlan(listenPlan(c)), said);
  assert.equal(summaryLine(c), `listen Flint.Example.com:443 (${said})`);
  assert.match(summaryLine(config('address: ci.example.org:443\nemail: ops@example.com')), /from the ACME directory https:\/\/acme-v02\.api\.letsencrypt\.org\/directory,/, 'the default directory is named too');
});

test('tls files: HTTPS with the operator\'s certificate and key, on any port, re-read when they change', () => {
  const c = config('address: ":8443"\ntls: {certFile: /etc/flint/tls/cert.pem, keyFile: /etc/flint/tls/key.pem}');
  const said = 'HTTPS with the certificate in /etc/flint/tls/cert.pem and its key in /etc/flint/tls/key.pem, re-read when they change';
  assert.equal(describePlan(listenPlan(c)), said);
  assert.equal(summaryLine(c), `listen :8443 (${said})`);
});

test('any other port: plain HTTP', () => {
  const c = config('address: "127.0.0.1:8080"');
  assert.equal(describePlan(listenPlan(c)), 'plain HTTP');
  assert.equal(summaryLine(c), 'listen 127.0.0.1:8080 (plain HTTP)');
});

test('a hand-built configuration with port 443 and no email is described as not usable, not thrown', () => {
  const c = config('address: "127.0.0.1:8080"');
  assert.match(describeListening({ ...c, address: ':443' }), /^not usable: address :443: port 443 means HTTPS with an ACME certificate/);
});
