import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoConfig } from './demo.ts';
import { isFlintError } from '../core/errors/index.ts';

const params = {
  apiUrl: 'http://127.0.0.1:40123/',
  appId: 1,
  privateKey: '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n',
  webhookSecret: 'demo-secret',
  stateDir: '/tmp/flint-demo/state',
  kernel: '/tmp/flint-demo/vmlinuz',
  initrd: '/tmp/flint-demo/initrd.img',
  filesystem: '/tmp/flint-demo/rootfs.ext4',
};

test('the demo config is a valid config: one QEMU runner on one created network, the simulator as API', () => {
  const c = demoConfig(params);
  assert.equal(c.github.apiUrl, 'http://127.0.0.1:40123');
  assert.equal(c.github.appId, '1');
  assert.deepEqual(c.github.webhookSecrets, ['demo-secret']);
  assert.equal(c.instanceId, 'demo');
  assert.equal(c.networks.length, 1);
  assert.equal(c.networks[0]?.create, true);
  const r = c.runners[0];
  assert.ok(r);
  assert.equal(r.hypervisor, 'qemu');
  assert.equal(r.initrd, params.initrd);
  assert.equal(r.network, c.networks[0]?.name);
  assert.equal(r.diskSize, 2 ** 30);
  assert.ok(r.maxRunners >= 1);
});

test('demo parameters go through the same validation as a file', () => {
  assert.throws(() => demoConfig({ ...params, kernel: 'relative/vmlinuz' }), (e) => isFlintError(e, 'FLINT_ERR_CONFIG_INVALID') && /runners\[0\]\.kernel/.test(e.message));
  assert.throws(() => demoConfig({ ...params, hypervisor: 'firecracker' }), (e) => isFlintError(e, 'FLINT_ERR_CONFIG_INVALID') && /jailer/.test(e.message));
});

test('the demo config can add a warm-pool definition whose jobs never meet the first one\'s', () => {
  const c = demoConfig({ ...params, warm: { minIdle: 1, maxRunners: 2 } });
  assert.deepEqual(c.runners.map((r) => [r.name, r.minIdle, r.maxRunners]), [['demo', 0, 2], ['warm', 1, 2]]);
  const [demo, warm] = c.runners;
  assert.ok(demo && warm);
  assert.ok(!demo.labels.includes('flint-demo-warm') && !warm.labels.includes('flint-demo'), 'no job label fits both');
  assert.equal(warm.kernel, demo.kernel);
  assert.equal(demoConfig(params).runners.length, 1, 'one definition unless asked');
});
