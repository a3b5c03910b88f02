/**
 * `flint doctor` as an operator runs it: the real probes on this machine,
 * GitHub played by the simulator. This machine has no Firecracker binary,
 * so the doctor must say so, with the fix, and exit 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../../tools/github-sim/index.ts';
import { main } from '../cli.ts';
import type { CheckResult } from '../doctor/checks.ts';

async function doctor(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['doctor', ...argv], { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, env: {} });
  return { code, out, err };
}

test('on this machine (no firecracker binary) the real doctor fails that check with its fix, checks the App against GitHub, and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-doctor-cmd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sim = await startSimulator({ org: 'doctor-org' });
  t.after(() => sim.close());
  writeFileSync(join(dir, 'vmlinux'), 'kernel');
  writeFileSync(join(dir, 'rootfs.ext4'), 'rootfs', { mode: 0o644 });
  writeFileSync(join(dir, 'app.pem'), sim.privateKeyPem, { mode: 0o600 });
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `address: "127.0.0.1:9"
stateDir: ${dir}/state
networks:
  - name: brdoc0
    v4: 10.0.0.1/24
github:
  appID: ${sim.appId}
  organization: ${sim.org}
  webhookSecret: doctor-secret
  privateKeyFile: ${dir}/app.pem
  apiUrl: ${sim.apiUrl}
runners:
  - name: fc
    labels: [self-hosted]
    kernel: ${dir}/vmlinux
    filesystem: ${dir}/rootfs.ext4
    jailer: ${dir}/bin/jailer
    firecracker: ${dir}/bin/firecracker
`);
  chmodSync(file, 0o640);

  const { code, out, err } = await doctor(['--config', file, '--json']);
  assert.equal(code, 1, err);
  const report = JSON.parse(out) as { ok: boolean; checks: CheckResult[] };
  assert.equal(report.ok, false);
  const check = (name: string): CheckResult => {
    const c = report.checks.find((x) => x.name === name);
    assert.ok(c !== undefined, name);
    return c;
  };
  assert.deepEqual([check('runner fc: firecracker').status, check('runner fc: jailer').status], ['fail', 'fail']);
  assert.match(check('runner fc: firecracker').detail, /firecracker binary .*\/bin\/firecracker does not exist/);
  assert.match(check('runner fc: firecracker').hint, /install Firecracker/);
  assert.equal(check('bridge brdoc0').status, 'fail', 'no such bridge in this test\'s network namespace');
  assert.equal(check('program ip').status, 'ok', 'iproute2 is a prerequisite of the tests');
  assert.equal(check('github: app installation').status, 'ok', check('github: app installation').detail);
  assert.match(check('github: clock').detail, /this host's clock is/);
  assert.equal(check('config file').status, 'warn', 'the webhook secret is inline and the group may read the file');
  assert.match(check('config file').detail, /holds github\.webhookSecret and its group may read it \(mode 640\)/);
  assert.ok(report.checks.every((c) => c.status === 'ok' || c.hint !== '' || c.status === 'skip'), 'every warning and failure says how to fix it');
  assert.ok(!out.includes(sim.privateKeyPem.split('\n')[1] ?? '-') && !out.includes('doctor-secret'), 'no secret in the report');

  const table = await doctor(['--config', file, '--offline']);
  assert.equal(table.code, 1);
  assert.match(table.out, /^FAIL {2}runner fc: firecracker +firecracker binary/m);
  assert.match(table.out, /^ +fix: install Firecracker/m);
  assert.match(table.out, /failed, .* `flint serve` would not work on this host as configured\n$/);
});

test('an invalid configuration is not doctored: its problems, exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-doctor-cmd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, 'address: 1\n');
  const { code, err } = await doctor(['--config', file]);
  assert.equal(code, 2);
  assert.match(err, /FLINT_ERR_CONFIG_INVALID: .* fix it before the host can be checked/);
});
