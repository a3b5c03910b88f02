import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from './load.ts';
import { nodeHostProbe } from './host-probe.ts';
import type { FileNeed, HostProbe } from './usable.ts';
import { checkUsable, privateKeyProblem } from './usable.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function config(extraRunner = '', key = rsa) {
  const text = `networks: [{name: br0, v4: 10.1.0.1/24}]
github:
  appID: 99
  organization: acme
  webhookSecret: whs-123456
  privateKey: |
${key.trim().split('\n').map((l) => `    ${l}`).join('\n')}
runners:
  - name: r
    labels: [a]
    kernel: /k/vmlinux
    filesystem: /k/rootfs
    jailer: /k/jailer
    firecracker: /k/firecracker
${extraRunner}`;
  const r = parseConfig(text, '/etc/flint/c.yaml', {}, () => '');
  if (!r.ok) assert.fail(JSON.stringify(r.problems));
  return { ...r, lineOf: (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1 };
}

/** Answers from a table: path → reason; everything else is fine. Records what was asked. */
function fakeProbe(broken: Record<string, string>): HostProbe & { asked: [string, FileNeed][] } {
  const asked: [string, FileNeed][] = [];
  return { asked, check: (p, need) => { asked.push([p, need]); return broken[p]; } };
}

test('a good key and present files: nothing to report', () => {
  const r = config();
  const probe = fakeProbe({});
  assert.deepEqual(checkUsable(r.config, r, probe), []);
  // The jailer drops to uid/gid before opening the root filesystem.
  assert.deepEqual(probe.asked.find(([p]) => p === '/k/rootfs')?.[1], { kind: 'read-as', uid: 123, gid: 100 });
  assert.deepEqual(probe.asked.find(([p]) => p === '/k/jailer')?.[1], { kind: 'exec' });
});

test('missing files are reported at their keys with the probe\'s reason', () => {
  const r = config();
  const list = checkUsable(r.config, r, fakeProbe({ '/k/vmlinux': 'does not exist', '/k/jailer': 'is not executable' }));
  assert.deepEqual(list.map((p) => [p.code, p.path, p.line]), [
    ['FLINT_ERR_CONFIG_PATH_UNUSABLE', 'runners[0].kernel', r.lineOf('kernel: /k/vmlinux')],
    ['FLINT_ERR_CONFIG_PATH_UNUSABLE', 'runners[0].jailer', r.lineOf('jailer: /k/jailer')],
  ]);
  assert.match(list[1]?.message ?? '', /jailer \/k\/jailer is not executable/);
});

test('keys that cannot sign GitHub App tokens are reported without showing the key', () => {
  assert.equal(privateKeyProblem(rsa), undefined);
  assert.match(privateKeyProblem(ec) ?? '', /ec key; GitHub App keys are RSA/);
  assert.match(privateKeyProblem('-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n') ?? '', /placeholder/);
  assert.match(privateKeyProblem('not a key') ?? '', /does not parse/);
  const r = config('', ec);
  const [p] = checkUsable(r.config, r, fakeProbe({}));
  assert.equal(p?.code, 'FLINT_ERR_CONFIG_PRIVATE_KEY_UNUSABLE');
  assert.equal(p?.path, 'github.privateKey');
  assert.ok(!(p?.message ?? '').includes('BEGIN'));
});

test('qemu runners are not asked for Firecracker programs', () => {
  const text = `networks: [{name: br0, v4: 10.1.0.1/24}]
github: {appID: 1, organization: o, webhookSecret: whs-123456, privateKey: x}
runners:
  - {name: q, labels: [a], kernel: /k/vmlinux, filesystem: /k/rootfs, hypervisor: qemu, qemu: /opt/qemu/bin/qemu-system-x86_64}
`;
  const r = parseConfig(text, '/etc/flint/c.yaml', {}, () => '');
  assert.ok(r.ok);
  const probe = fakeProbe({});
  checkUsable(r.config, r, probe);
  assert.deepEqual(probe.asked.map(([p]) => p), ['/k/vmlinux', '/k/rootfs', '/opt/qemu/bin/qemu-system-x86_64']);
});

test('the host probe tells missing, directories, non-executables and files the jailer uid cannot read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-probe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'rootfs');
  writeFileSync(f, 'x');
  chmodSync(f, 0o644);
  assert.equal(nodeHostProbe.check(f, { kind: 'read' }), undefined);
  assert.equal(nodeHostProbe.check(f, { kind: 'read-as', uid: 123, gid: 100 }), undefined);
  assert.equal(nodeHostProbe.check(join(dir, 'nope'), { kind: 'read' }), 'does not exist');
  assert.equal(nodeHostProbe.check(dir, { kind: 'read' }), 'is a directory');
  if (process.getuid?.() !== 0) assert.equal(nodeHostProbe.check(f, { kind: 'exec' }), 'is not executable');
  chmodSync(f, 0o600);
  assert.match(nodeHostProbe.check(f, { kind: 'read-as', uid: 123, gid: 100 }) ?? '', /not readable by uid 123/);
  if (process.getuid?.() === 0) {
    chownSync(f, 123, 100);
    assert.equal(nodeHostProbe.check(f, { kind: 'read-as', uid: 123, gid: 100 }), undefined);
  }
});
