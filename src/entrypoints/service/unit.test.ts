/**
 * The systemd unit of `flint service install`: what it says for a given
 * configuration, and that systemd itself accepts it (`systemd-analyze verify`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { program, requirePrereqs } from '../../../test/helpers/prereq.ts';
import { run } from '../commands/service-install.ts';
import type { CommandIo } from '../io.ts';
import { renderUnit, timeSpan, type UnitInput } from './unit.ts';

const FLINT_BIN = fileURLToPath(new URL('../../../bin/flint.mjs', import.meta.url));

function unitFor(config: Partial<UnitInput['config']> = {}): string {
  return renderUnit({
    node: '/usr/bin/node', flint: '/opt/flint/bin/flint.mjs', configFile: '/etc/flint/config.yaml',
    config: { stateDir: '/var/lib/flint', runDir: '/run/flint', address: ':443', runners: [], acme: { directoryUrl: 'https://acme.test/dir' }, github: {}, ...config },
  });
}

const setting = (unit: string, key: string): string[] => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

test('TimeoutStopSec is shutdownGrace plus a minute, so systemd never kills a drain', () => {
  assert.deepEqual(setting(unitFor(), 'TimeoutStopSec'), ['31min'], 'the default grace, 30 min');
  assert.deepEqual(setting(unitFor({ shutdownGraceSeconds: 2 * 3600 + 15 * 60 }), 'TimeoutStopSec'), ['136min']);
  assert.deepEqual(setting(unitFor({ shutdownGraceSeconds: 3540 }), 'TimeoutStopSec'), ['1h']);
  assert.equal(timeSpan(90), '90s');
});

test('signals reach Flint alone, it restarts on failure, and root is cut down to the capabilities the jailer and networking need', () => {
  const unit = unitFor();
  assert.deepEqual(setting(unit, 'KillMode'), ['process']);
  assert.deepEqual(setting(unit, 'Restart'), ['on-failure']);
  assert.deepEqual(setting(unit, 'NoNewPrivileges'), ['yes']);
  const caps = (setting(unit, 'CapabilityBoundingSet')[0] ?? '').split(' ');
  for (const c of ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_SETUID', 'CAP_SETGID', 'CAP_NET_BIND_SERVICE', 'CAP_KILL']) assert.ok(caps.includes(c), c);
  assert.ok(!caps.includes('CAP_SYS_MODULE') && !caps.includes('CAP_SYS_TIME') && !caps.includes('CAP_SYS_PTRACE'));
  assert.deepEqual(setting(unit, 'ExecStart'), ['/usr/bin/node /opt/flint/bin/flint.mjs serve --config /etc/flint/config.yaml']);
  for (const closed of ['PrivateDevices', 'DevicePolicy', 'ProtectClock', 'ProtectControlGroups', 'ProtectKernelTunables']) {
    assert.deepEqual(setting(unit, closed), [], `${closed} would hide /dev/kvm, /dev/net/tun, cgroups or sysctls Flint needs`);
  }
});

test('the writable directories: systemd makes those under /var/lib and /run (the run dir survives restarts), others are ReadWritePaths', () => {
  let unit = unitFor();
  assert.deepEqual(setting(unit, 'ProtectSystem'), ['strict']);
  assert.deepEqual([setting(unit, 'StateDirectory'), setting(unit, 'RuntimeDirectory'), setting(unit, 'RuntimeDirectoryPreserve'), setting(unit, 'ReadWritePaths')],
    [['flint'], ['flint'], ['yes'], []]);
  unit = unitFor({ stateDir: '/srv/flint state', runDir: '/run/flint/a' });
  assert.deepEqual(setting(unit, 'ReadWritePaths'), ['"/srv/flint state"']);
  assert.deepEqual(setting(unit, 'RuntimeDirectory'), ['flint/a']);
});

test('ProtectHome and PrivateTmp give way to configured paths that live there', () => {
  const runner = (kernel: string) => ({ kernel, filesystem: '/srv/rootfs.ext4', jailer: '', firecracker: '' }) as unknown as UnitInput['config']['runners'][number]; // only the paths are read
  assert.deepEqual([setting(unitFor(), 'ProtectHome'), setting(unitFor(), 'PrivateTmp')], [['yes'], ['yes']]);
  assert.deepEqual(setting(unitFor({ runners: [runner('/root/vmlinux')] }), 'ProtectHome'), ['read-only'], 'a kernel in a home directory is read');
  assert.deepEqual(setting(unitFor({ stateDir: '/home/ci/flint' }), 'ProtectHome'), ['no'], 'a state dir there is written');
  assert.deepEqual(setting(unitFor({ runners: [runner('/tmp/vmlinux')] }), 'PrivateTmp'), ['no']);
});

function capture(): { io: CommandIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, env: {} }, out: () => out, err: () => err };
}

function tempConfig(t: { after: (fn: () => void) => void }): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'flint-service-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `address: "127.0.0.1:8080"
stateDir: ${dir}/state
runDir: ${dir}/run
shutdownGrace: 45m
networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 1
  organization: acme
  webhookSecret: {env: FLINT_WEBHOOK_SECRET}
  privateKey: {env: FLINT_KEY}
runners:
  - name: q
    labels: [self-hosted]
    kernel: ${dir}/vmlinux
    filesystem: ${dir}/rootfs.ext4
    hypervisor: qemu
`);
  chmodSync(file, 0o600);
  return { dir, file };
}

const ENV = { FLINT_WEBHOOK_SECRET: 's', FLINT_KEY: 'k' };

test('flint service install writes a unit systemd-analyze verifies, makes the directories it writes to, and says what to run next', async (t) => {
  if (!requirePrereqs(t, program('systemd-analyze'))) return;
  const { dir, file } = tempConfig(t);
  const s = capture();
  const code = await run(['--config', file, '--unit-dir', join(dir, 'units')], { ...s.io, env: ENV }, { node: process.execPath, flint: FLINT_BIN });
  assert.equal(code, 0, s.err());
  const unit = readFileSync(join(dir, 'units', 'flint.service'), 'utf8');
  assert.deepEqual(setting(unit, 'TimeoutStopSec'), ['46min']);
  assert.deepEqual(setting(unit, 'ReadWritePaths'), [`${dir}/state ${dir}/run`]);
  assert.ok(statSync(join(dir, 'state')).isDirectory() && statSync(join(dir, 'run')).isDirectory(), 'ProtectSystem=strict: Flint could not make them itself');
  assert.match(s.out(), /systemd-analyze verify: no problems/);
  assert.match(s.out(), /systemctl daemon-reload\n {2}systemctl enable --now flint/);
});

test('a unit systemd rejects (its node binary is gone) is reported, exit 1', async (t) => {
  if (!requirePrereqs(t, program('systemd-analyze'))) return;
  const { dir, file } = tempConfig(t);
  const s = capture();
  const code = await run(['--config', file, '--unit-dir', dir], { ...s.io, env: ENV }, { node: join(dir, 'no-such-node'), flint: FLINT_BIN });
  assert.equal(code, 1);
  assert.match(s.err(), /no-such-node/);
  assert.match(s.err(), /FLINT_ERR_SERVICE_INSTALL: systemd-analyze verify found problems/);
});

test('--dry-run prints the unit and writes nothing', async (t) => {
  const { dir, file } = tempConfig(t);
  const s = capture();
  assert.equal(await run(['--config', file, '--unit-dir', join(dir, 'units'), '--dry-run'], { ...s.io, env: ENV }, { node: '/usr/bin/node', flint: FLINT_BIN }), 0);
  assert.match(s.out(), /^\[Service\]$/m);
  assert.throws(() => statSync(join(dir, 'units')), { code: 'ENOENT' });
  assert.throws(() => statSync(join(dir, 'state')), { code: 'ENOENT' });
});

test('on a host systemd does not run (a container, a chroot) the unit is written and the output says it takes effect only under systemd', async (t) => {
  const { dir, file } = tempConfig(t);
  const without = capture();
  assert.equal(await run(['--config', file, '--unit-dir', join(dir, 'units'), '--no-verify'], { ...without.io, env: ENV }, { node: '/usr/bin/node', flint: FLINT_BIN }, () => false), 0);
  assert.ok(statSync(join(dir, 'units', 'flint.service')).isFile());
  assert.match(without.out(), /systemd is not running on this host .*takes effect on a host booted with systemd; here, run `flint serve --config /);
  const booted = capture();
  assert.equal(await run(['--config', file, '--unit-dir', join(dir, 'units'), '--no-verify'], { ...booted.io, env: ENV }, { node: '/usr/bin/node', flint: FLINT_BIN }, () => true), 0);
  assert.doesNotMatch(booted.out(), /systemd is not running/);
  assert.match(booted.out(), /systemctl daemon-reload/);
});
