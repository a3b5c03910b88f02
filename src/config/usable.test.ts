import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  // The jailer drops to uid/gid before the VMM opens kernel and root filesystem (hard-linked into its jail).
  for (const path of ['/k/vmlinux', '/k/rootfs']) {
    assert.deepEqual(probe.asked.filter(([p]) => p === path).map(([, n]) => n), [{ kind: 'read' }, { kind: 'read-as', uid: 123, gid: 100, via: 'jail' }]);
  }
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
  assert.deepEqual(probe.asked.map(([p]) => p), ['/k/vmlinux', '/k/vmlinux', '/k/rootfs', '/k/rootfs', '/opt/qemu/bin/qemu-system-x86_64']);
  // QEMU opens the images at their paths as the definition's uid/gid (setpriv): the directories count too.
  assert.deepEqual(probe.asked[1]?.[1], { kind: 'read-as', uid: 123, gid: 100, via: 'path' });
});

test('an image the definition\'s uid/gid cannot read is reported with a chmod hint, for Firecracker and QEMU alike; uid 0 is not asked', () => {
  const text = `networks: [{name: br0, v4: 10.1.0.1/24}]
github: {appID: 1, organization: o, webhookSecret: whs-123456, privateKey: x}
runners:
  - {name: fc, labels: [a], kernel: /k/vmlinux, filesystem: /k/rootfs, jailer: /k/jailer, firecracker: /k/firecracker}
  - {name: q, labels: [a], kernel: /k/bzImage, initrd: /k/initrd, filesystem: /k/rootfs, hypervisor: qemu}
  - {name: root, labels: [a], kernel: /k/bzImage, filesystem: /k/rootfs, hypervisor: qemu, uid: 0, gid: 0}
`;
  const r = parseConfig(text, '/etc/flint/c.yaml', {}, () => '');
  assert.ok(r.ok);
  const probe: HostProbe & { asked: [string, FileNeed][] } = {
    asked: [],
    check(p, need) {
      this.asked.push([p, need]);
      return need.kind === 'read-as' && p !== '/k/initrd' ? 'is not readable by uid 123 / gid 100 (owner 0:0, mode 0600)' : undefined;
    },
  };
  const list = checkUsable(r.config, r, probe).filter((p) => p.code === 'FLINT_ERR_CONFIG_PATH_UNUSABLE');
  assert.deepEqual(list.map((p) => p.path), ['runners[0].kernel', 'runners[0].filesystem', 'runners[1].kernel', 'runners[1].filesystem']);
  assert.match(list[1]?.message ?? '', /^root filesystem \/k\/rootfs is not readable by uid 123 \/ gid 100 \(owner 0:0, mode 0600\), which the jailer runs Firecracker as$/);
  assert.match(list[1]?.hint ?? '', /`chmod o\+r \/k\/rootfs`, or `chgrp 100 \/k\/rootfs && chmod g\+r \/k\/rootfs`/);
  assert.doesNotMatch(list[1]?.hint ?? '', /DIR/, 'a hard link into the jail passes no directory');
  assert.match(list[2]?.message ?? '', /which QEMU runs as$/);
  assert.match(list[2]?.hint ?? '', /chmod o\+x DIR/);
  assert.ok(!probe.asked.some(([, n]) => n.kind === 'read-as' && n.uid === 0), 'uid 0 reads anything');
});

test('the host probe tells missing, directories, non-executables and files the jailer uid cannot read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-probe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const f = join(dir, 'rootfs');
  writeFileSync(f, 'x');
  chmodSync(f, 0o644);
  const jail = { kind: 'read-as', uid: 123, gid: 100, via: 'jail' } as const;
  assert.equal(nodeHostProbe.check(f, { kind: 'read' }), undefined);
  assert.equal(nodeHostProbe.check(f, jail), undefined);
  assert.equal(nodeHostProbe.check(join(dir, 'nope'), { kind: 'read' }), 'does not exist');
  assert.equal(nodeHostProbe.check(dir, { kind: 'read' }), 'is a directory');
  if (process.getuid?.() !== 0) assert.equal(nodeHostProbe.check(f, { kind: 'exec' }), 'is not executable');
  chmodSync(f, 0o600);
  assert.match(nodeHostProbe.check(f, jail) ?? '', /^is not readable by uid 123 \/ gid 100 \(owner \d+:\d+, mode 0600\)$/);
  assert.equal(nodeHostProbe.check(f, { ...jail, uid: 0, gid: 0 }), undefined, 'uid 0 reads anything');
  if (process.getuid?.() === 0) {
    chownSync(f, 123, 100);
    assert.equal(nodeHostProbe.check(f, jail), undefined);
  }
});

test('a kernel readable by root only fails for uid 123 with the chmod hint; under QEMU a closed directory above it does too', { skip: process.getuid?.() !== 0 ? 'needs root (files owned by root, read as another uid)' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-probe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const images = join(dir, 'images');
  mkdirSync(images, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const kernel = join(images, 'vmlinux');
  writeFileSync(kernel, 'x', { mode: 0o600 });
  chmodSync(kernel, 0o600);
  const text = `networks: [{name: br0, v4: 10.1.0.1/24}]
github: {appID: 1, organization: o, webhookSecret: whs-123456, privateKey: x}
runners:
  - {name: fc, labels: [a], kernel: ${kernel}, filesystem: ${kernel}, jailer: /bin/sh, firecracker: /bin/sh}
  - {name: q, labels: [a], kernel: ${kernel}, filesystem: ${kernel}, hypervisor: qemu, qemu: /bin/sh}
`;
  const r = parseConfig(text, '/etc/flint/c.yaml', {}, () => '');
  assert.ok(r.ok);
  const kernels = () => checkUsable(r.config, r, nodeHostProbe).filter((p) => p.path.endsWith('.kernel'));
  const [fc, q] = kernels();
  assert.equal(nodeHostProbe.check(kernel, { kind: 'read' }), undefined, 'root reads it');
  assert.equal(fc?.code, 'FLINT_ERR_CONFIG_PATH_UNUSABLE');
  assert.equal(fc?.message, `kernel ${kernel} is not readable by uid 123 / gid 100 (owner 0:0, mode 0600), which the jailer runs Firecracker as`);
  assert.equal(fc?.hint, `make it readable by uid 123 / gid 100 without changing its owner: \`chmod o+r ${kernel}\`, or \`chgrp 100 ${kernel} && chmod g+r ${kernel}\``);
  assert.match(q?.message ?? '', /which QEMU runs as$/);
  // Readable, but its directory closed to others: the jailer's hard link gets through, QEMU's path does not.
  chmodSync(kernel, 0o644);
  chmodSync(images, 0o700);
  const closed = kernels();
  assert.deepEqual(closed.map((p) => p.path), ['runners[1].kernel']);
  assert.equal(closed[0]?.message, `kernel ${kernel} cannot be reached by uid 123 / gid 100: ${images} (owner 0:0, mode 0700) does not let them pass, which QEMU runs as`);
  assert.match(closed[0]?.hint ?? '', /chmod o\+x DIR/);
  chmodSync(images, 0o711);
  assert.deepEqual(kernels(), []);
});
