// The emulated Firecracker API, over real HTTP on a unix socket, with a
// recording host instead of QEMU: every rejection must be Firecracker's
// (status 400, `{"fault_message": …}` with Firecracker's wording).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Server } from 'node:http';
import { FirecrackerVmm, NOT_SUPPORTED_POST_BOOT, NOT_SUPPORTED_PRE_BOOT } from './api.ts';
import type { BootPlan, VmmHost } from './api.ts';
import { serveApi } from './server.ts';
import { rawApiCall } from '../../src/adapters/hypervisor/firecracker-api.ts';
import { resolveInJail, withThrottling } from './jail-host.ts';

const SERDE = 'An error occurred when deserializing the json body of a request: ';

interface Fixture {
  readonly socket: string;
  readonly boots: BootPlan[];
  readonly keys: number[];
  readonly vmm: FirecrackerVmm;
  close(): Promise<void>;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flint-fcapi-'));
  for (const f of ['vmlinux', 'rootfs.ext4', 'scratch.ext4', 'config.drive']) writeFileSync(join(dir, f), 'x');
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function fixture(): Promise<Fixture> {
  const boots: BootPlan[] = [];
  const keys: number[] = [];
  const host: VmmHost = {
    openInJail: (p) => resolveInJail(dir, p),
    checkTap: (name) => (name === 'tap0' ? undefined : 'No such device (os error 19)'),
    boot: async (plan) => {
      boots.push(plan);
    },
    ctrlAltDel: async () => {
      keys.push(Date.now());
    },
  };
  const vmm = new FirecrackerVmm('t-1', host);
  const socket = join(dir, `api-${n++}.sock`);
  const server: Server = await serveApi(vmm, socket);
  return { socket, boots, keys, vmm, close: () => new Promise((r) => server.close(() => r())) };
}

const put = (f: Fixture, path: string, body: unknown) => rawApiCall(f.socket, 'PUT', path, body, 5000);
/** serde_json's position after `token` in the compact JSON of `body` (one line). */
const posAfter = (body: unknown, token: string): string => `at line 1 column ${JSON.stringify(body).indexOf(token) + token.length}`;

/** PUT with a body sent byte for byte (not re-encoded). */
function putRaw(f: Fixture, path: string, text: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: f.socket, method: 'PUT', path, headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => {
        data += c.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data === '' ? undefined : JSON.parse(data) }));
    });
    req.on('error', reject);
    req.end(text);
  });
}
const fault = (msg: string) => ({ status: 400, body: { fault_message: msg } });

async function configure(f: Fixture): Promise<void> {
  const ok = [
    await put(f, '/machine-config', { vcpu_count: 2, mem_size_mib: 256, smt: false }),
    await put(f, '/boot-source', { kernel_image_path: '/vmlinux', boot_args: 'console=ttyS0' }),
    await put(f, '/drives/rootfs', { drive_id: 'rootfs', path_on_host: '/rootfs.ext4', is_root_device: true, is_read_only: true }),
    await put(f, '/drives/scratch', { drive_id: 'scratch', path_on_host: '/scratch.ext4', is_root_device: false, is_read_only: false }),
    await put(f, '/drives/config', { drive_id: 'config', path_on_host: 'config.drive', is_root_device: false, is_read_only: true }),
    await put(f, '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:0a:00:00:02' }),
  ];
  for (const r of ok) assert.equal(r.status, 204, JSON.stringify(r.body));
}

describe('emulated Firecracker API', () => {
  test('GET / reports the instance, not started; GET /machine-config the defaults', async () => {
    const f = await fixture();
    try {
      const info = await rawApiCall(f.socket, 'GET', '/', undefined, 5000);
      assert.deepEqual(info, { status: 200, body: { id: 't-1', state: 'Not started', vmm_version: '1.10.1', app_name: 'Firecracker' } });
      const mc = await rawApiCall(f.socket, 'GET', '/machine-config', undefined, 5000);
      assert.deepEqual(mc.body, { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' });
    } finally {
      await f.close();
    }
  });

  test('a full configuration boots with the root drive first and root= appended, then the state is Running', async () => {
    const f = await fixture();
    try {
      await configure(f);
      assert.equal((await put(f, '/actions', { action_type: 'InstanceStart' })).status, 204);
      assert.equal(f.boots.length, 1);
      const plan = f.boots[0]!;
      assert.deepEqual(plan.drives.map((d) => d.id), ['rootfs', 'scratch', 'config']);
      assert.equal(plan.kernelArgs, 'console=ttyS0 root=/dev/vda ro');
      assert.deepEqual([plan.vcpus, plan.memoryMib, plan.smt], [2, 256, false]);
      assert.deepEqual(plan.nets, [{ id: 'eth0', tap: 'tap0', mac: '06:00:0a:00:00:02' }]);
      const info = await rawApiCall(f.socket, 'GET', '/', undefined, 5000);
      assert.equal((info.body as { state: string }).state, 'Running');
      assert.equal((await put(f, '/actions', { action_type: 'SendCtrlAltDel' })).status, 204);
      assert.equal(f.keys.length, 1);
    } finally {
      await f.close();
    }
  });

  test('unknown field, wrong type, missing field and unknown variant are serde errors, with serde_json\'s position', async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 2, mem_size_mib: 256, foo: 1 }),
        fault(`${SERDE}unknown field \`foo\`, expected one of \`vcpu_count\`, \`mem_size_mib\`, \`smt\`, \`cpu_template\`, \`track_dirty_pages\`, \`huge_pages\` at line 1 column 40.`));
      const wrongType = { vcpu_count: '2', mem_size_mib: 256 };
      assert.deepEqual(await put(f, '/machine-config', wrongType), fault(`${SERDE}invalid type: string "2", expected u8 ${posAfter(wrongType, '"2"')}.`));
      const tooBig = { vcpu_count: 300, mem_size_mib: 256 };
      assert.deepEqual(await put(f, '/machine-config', tooBig), fault(`${SERDE}invalid value: integer \`300\`, expected u8 ${posAfter(tooBig, '300')}.`));
      const negative = { vcpu_count: 2, mem_size_mib: -1 };
      assert.deepEqual(await put(f, '/machine-config', negative), fault(`${SERDE}invalid value: integer \`-1\`, expected usize ${posAfter(negative, '-1')}.`));
      const float = { vcpu_count: 1.5, mem_size_mib: 256 };
      assert.deepEqual(await put(f, '/machine-config', float), fault(`${SERDE}invalid type: floating point \`1.5\`, expected u8 ${posAfter(float, '1.5')}.`));
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 2 }), fault(`${SERDE}missing field \`mem_size_mib\` at line 1 column 16.`));
      const notBool = { drive_id: 'rootfs', path_on_host: '/rootfs.ext4', is_root_device: 'yes' };
      assert.deepEqual(await put(f, '/drives/rootfs', notBool), fault(`${SERDE}invalid type: string "yes", expected a boolean ${posAfter(notBool, '"yes"')}.`));
      assert.deepEqual(await put(f, '/actions', { action_type: 'Reboot' }),
        fault(`${SERDE}unknown variant \`Reboot\`, expected one of \`FlushMetrics\`, \`InstanceStart\`, \`SendCtrlAltDel\` at line 1 column 23.`));
      const notJson = await rawApiCall(f.socket, 'PUT', '/boot-source', undefined, 5000).catch(() => undefined);
      assert.deepEqual(notJson, fault('Empty PUT request.'));
      assert.equal(f.vmm.state, 'Not started');
    } finally {
      await f.close();
    }
  });

  test('rate limiters: drives and both directions of a network interface are recorded for the boot; Firecracker\'s schema rules hold', async () => {
    const f = await fixture();
    try {
      const rootfs = { drive_id: 'rootfs', path_on_host: '/rootfs.ext4', is_root_device: true, is_read_only: true };
      const limiter = { bandwidth: { size: 1048576, refill_time: 1000 }, ops: { size: 100, one_time_burst: 50, refill_time: 100 } };
      // Every rejection first, while nothing is configured.
      const unknownLimiterField = { ...rootfs, rate_limiter: { bandwidth: { size: 1, refill_time: 1 }, iops: 5 } };
      assert.deepEqual(await put(f, '/drives/rootfs', unknownLimiterField),
        fault(`${SERDE}unknown field \`iops\`, expected \`bandwidth\` or \`ops\` ${posAfter(unknownLimiterField, '"iops"')}.`));
      const wrongType = { ...rootfs, rate_limiter: { bandwidth: { size: '1MiB', refill_time: 1000 } } };
      assert.deepEqual(await put(f, '/drives/rootfs', wrongType), fault(`${SERDE}invalid type: string "1MiB", expected u64 ${posAfter(wrongType, '"1MiB"')}.`));
      const missing = { ...rootfs, rate_limiter: { ops: { size: 10 } } };
      assert.deepEqual(await put(f, '/drives/rootfs', missing), fault(`${SERDE}missing field \`refill_time\` ${posAfter(missing, '{"size":10}')}.`));
      const negative = { ...rootfs, rate_limiter: { ops: { size: -1, refill_time: 1 } } };
      assert.deepEqual(await put(f, '/drives/rootfs', negative), fault(`${SERDE}invalid value: integer \`-1\`, expected u64 ${posAfter(negative, '-1')}.`));
      const notAStruct = { ...rootfs, rate_limiter: 5 };
      assert.deepEqual(await put(f, '/drives/rootfs', notAStruct), fault(`${SERDE}invalid type: integer \`5\`, expected struct RateLimiterConfig ${posAfter(notAStruct, ':5')}.`));
      // The network interface has rx_rate_limiter and tx_rate_limiter, no rate_limiter.
      const net = { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:0a:00:00:02' };
      const oneLimiter = { ...net, rate_limiter: limiter };
      assert.deepEqual(await put(f, '/network-interfaces/eth0', oneLimiter),
        fault(`${SERDE}unknown field \`rate_limiter\`, expected one of \`iface_id\`, \`host_dev_name\`, \`guest_mac\`, \`rx_rate_limiter\`, \`tx_rate_limiter\` ${posAfter(oneLimiter, '"rate_limiter"')}.`));

      // Accepted: a token bucket, unlike the rate limiter, ignores fields it does not know; null means none.
      const lenient = { ...rootfs, rate_limiter: { bandwidth: { size: 1048576, refill_time: 1000, note: [1, { a: null }] }, ops: limiter.ops } };
      assert.equal((await put(f, '/drives/rootfs', lenient)).status, 204);
      assert.equal((await put(f, '/drives/scratch', { drive_id: 'scratch', path_on_host: '/scratch.ext4', is_root_device: false, rate_limiter: null })).status, 204);
      assert.equal((await put(f, '/drives/config', { drive_id: 'config', path_on_host: '/config.drive', is_root_device: false, is_read_only: true, rate_limiter: { ops: limiter.ops } })).status, 204);
      assert.equal((await put(f, '/network-interfaces/eth0', { ...net, rx_rate_limiter: { bandwidth: limiter.bandwidth }, tx_rate_limiter: { ops: limiter.ops } })).status, 204);
      assert.equal((await put(f, '/boot-source', { kernel_image_path: '/vmlinux' })).status, 204);
      assert.equal((await put(f, '/actions', { action_type: 'InstanceStart' })).status, 204);
      const plan = f.boots[0]!; // booted once above
      assert.deepEqual(plan.drives.map((d) => d.rateLimiter), [
        { bandwidth: { size: 1048576, refillTimeMs: 1000 }, ops: { size: 100, oneTimeBurst: 50, refillTimeMs: 100 } },
        undefined,
        { ops: { size: 100, oneTimeBurst: 50, refillTimeMs: 100 } },
      ]);
      assert.deepEqual(plan.nets[0], {
        id: 'eth0', tap: 'tap0', mac: '06:00:0a:00:00:02',
        rxRateLimiter: { bandwidth: { size: 1048576, refillTimeMs: 1000 } },
        txRateLimiter: { ops: { size: 100, oneTimeBurst: 50, refillTimeMs: 100 } },
      });
    } finally {
      await f.close();
    }
  });

  test('QEMU gets the drives\' limits as block throttling at their sustained rate; a disabled bucket limits nothing', () => {
    const args = ['-m', '256', '-drive', 'id=vda,file=/r,format=raw,if=none,readonly=on', '-drive', 'id=vdb,file=/s,format=raw,if=none', '-drive', 'id=vdc,file=/c,format=raw,if=none,readonly=on'];
    const out = withThrottling(args, [
      { bandwidth: { size: 1048576, refillTimeMs: 1000 }, ops: { size: 100, oneTimeBurst: 50, refillTimeMs: 100 } },
      undefined,
      { bandwidth: { size: 0, refillTimeMs: 1000 } },
    ]);
    assert.deepEqual(out, ['-m', '256',
      '-drive', 'id=vda,file=/r,format=raw,if=none,readonly=on,throttling.bps-total=1048576,throttling.iops-total=1000',
      '-drive', 'id=vdb,file=/s,format=raw,if=none',
      '-drive', 'id=vdc,file=/c,format=raw,if=none,readonly=on']);
  });

  test('bodies are read as a stream: position across lines, duplicates, syntax errors, trailing characters', async () => {
    const f = await fixture();
    try {
      // The shape of Firecracker's own test: the missing field is noticed at the closing brace.
      const multiLine = '{\n            "vcpu_count": 2\n            }';
      assert.deepEqual(await putRaw(f, '/machine-config', multiLine), fault(`${SERDE}missing field \`mem_size_mib\` at line 3 column 13.`));
      assert.deepEqual(await putRaw(f, '/machine-config', '{"vcpu_count":2,"vcpu_count":2,"mem_size_mib":1}'),
        fault(`${SERDE}duplicate field \`vcpu_count\` at line 1 column 28.`));
      assert.deepEqual(await putRaw(f, '/machine-config', 'invalid_payload'), fault(`${SERDE}expected value at line 1 column 1.`));
      assert.deepEqual(await putRaw(f, '/machine-config', '{"vcpu_count":tru,"mem_size_mib":1}'), fault(`${SERDE}expected ident at line 1 column 18.`));
      assert.deepEqual(await putRaw(f, '/machine-config', '{"vcpu_count":2,"mem_size_mib":256} x'), fault(`${SERDE}trailing characters at line 1 column 37.`));
      // The first problem in document order wins, even before a later syntax error.
      assert.deepEqual(await putRaw(f, '/machine-config', '{"bad":1,'),
        fault(`${SERDE}unknown field \`bad\`, expected one of \`vcpu_count\`, \`mem_size_mib\`, \`smt\`, \`cpu_template\`, \`track_dirty_pages\`, \`huge_pages\` at line 1 column 6.`));
      // null is "absent" for Option fields only.
      assert.equal((await putRaw(f, '/boot-source', '{"kernel_image_path":"/vmlinux","initrd_path":null}')).status, 204);
      assert.deepEqual(await putRaw(f, '/machine-config', '{"vcpu_count":null,"mem_size_mib":1}'), fault(`${SERDE}invalid type: null, expected u8 at line 1 column 18.`));
    } finally {
      await f.close();
    }
  });

  test('value rules: vcpu_count 1..32, odd counts rejected with smt, mem_size_mib > 0', async () => {
    const f = await fixture();
    const vcpuMsg = 'Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.';
    try {
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 0, mem_size_mib: 256 }), fault(vcpuMsg));
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 33, mem_size_mib: 256 }), fault(vcpuMsg));
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 3, mem_size_mib: 256, smt: true }), fault(vcpuMsg));
      assert.equal((await put(f, '/machine-config', { vcpu_count: 1, mem_size_mib: 256, smt: true })).status, 204);
      assert.equal((await put(f, '/machine-config', { vcpu_count: 32, mem_size_mib: 256 })).status, 204);
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 2, mem_size_mib: 0 }),
        fault('Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.'));
    } finally {
      await f.close();
    }
  });

  test('InstanceStart before boot-source is rejected and boots nothing', async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await put(f, '/actions', { action_type: 'InstanceStart' }),
        fault('Start microvm error: Cannot start microvm without kernel configuration.'));
      assert.equal(f.boots.length, 0);
    } finally {
      await f.close();
    }
  });

  test('SendCtrlAltDel before boot is not supported', async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await put(f, '/actions', { action_type: 'SendCtrlAltDel' }), fault(NOT_SUPPORTED_PRE_BOOT));
      assert.equal(f.keys.length, 0);
    } finally {
      await f.close();
    }
  });

  test('after InstanceStart: drives, machine-config, boot-source, network and a second InstanceStart are rejected', async () => {
    const f = await fixture();
    try {
      await configure(f);
      assert.equal((await put(f, '/actions', { action_type: 'InstanceStart' })).status, 204);
      assert.deepEqual(await put(f, '/drives/extra', { drive_id: 'extra', path_on_host: '/scratch.ext4', is_root_device: false }), fault(NOT_SUPPORTED_POST_BOOT));
      assert.deepEqual(await put(f, '/machine-config', { vcpu_count: 1, mem_size_mib: 128 }), fault(NOT_SUPPORTED_POST_BOOT));
      assert.deepEqual(await put(f, '/boot-source', { kernel_image_path: '/vmlinux' }), fault(NOT_SUPPORTED_POST_BOOT));
      assert.deepEqual(await put(f, '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0' }), fault(NOT_SUPPORTED_POST_BOOT));
      assert.deepEqual(await put(f, '/actions', { action_type: 'InstanceStart' }), fault(NOT_SUPPORTED_POST_BOOT));
      assert.equal(f.boots.length, 1);
      // Parsing comes first: a malformed body after boot is still a serde error.
      assert.deepEqual(await put(f, '/drives/x', { drive_id: 'x', bogus: true }),
        fault(`${SERDE}unknown field \`bogus\`, expected one of \`drive_id\`, \`partuuid\`, \`is_root_device\`, \`cache_type\`, \`is_read_only\`, \`path_on_host\`, \`rate_limiter\`, \`io_engine\`, \`socket\` at line 1 column 23.`));
    } finally {
      await f.close();
    }
  });

  test('ids, paths and files: mismatched ids, bad ids, a second root, missing files, escaping the jail, a missing tap', async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await put(f, '/drives/a', { drive_id: 'b', path_on_host: '/rootfs.ext4', is_root_device: false }),
        fault('The id from the path does not match the id from the body!'));
      assert.deepEqual(await put(f, '/drives/a-b', { drive_id: 'a-b', path_on_host: '/rootfs.ext4', is_root_device: false }),
        fault('API Resource IDs can only contain alphanumeric characters and underscores.'));
      assert.equal((await put(f, '/drives/rootfs', { drive_id: 'rootfs', path_on_host: '/rootfs.ext4', is_root_device: true, is_read_only: true })).status, 204);
      assert.deepEqual(await put(f, '/drives/other', { drive_id: 'other', path_on_host: '/rootfs.ext4', is_root_device: true }),
        fault('Drive config error: A root block device already exists!'));
      const missing = await put(f, '/drives/gone', { drive_id: 'gone', path_on_host: '/nope.ext4', is_root_device: false });
      assert.equal(missing.status, 400);
      assert.match((missing.body as { fault_message: string }).fault_message, /^Drive config error: .*No such file or directory \(os error 2\)/);
      const escape = await put(f, '/boot-source', { kernel_image_path: '../../../../etc/passwd' });
      assert.equal(escape.status, 400, 'a path that leaves the jail is as good as missing');
      assert.match((escape.body as { fault_message: string }).fault_message, /^Boot source error: The kernel file cannot be opened: No such file/);
      const tap = await put(f, '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'nosuchtap' });
      assert.equal(tap.status, 400);
      assert.match((tap.body as { fault_message: string }).fault_message, /^Network config error: Could not create the network device: Open tap device failed/);
      const badMac = { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: 'zz' };
      assert.deepEqual(await put(f, '/network-interfaces/eth0', badMac), fault(`${SERDE}The provided MAC address is not valid. ${posAfter(badMac, '"zz"')}.`));
    } finally {
      await f.close();
    }
  });

  test('unknown paths and methods, and GET with a body', async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await put(f, '/nonsense', { a: 1 }), fault('Invalid request method and/or path: PUT nonsense.'));
      assert.deepEqual(await rawApiCall(f.socket, 'GET', '/nonsense', undefined, 5000), fault('Invalid request method and/or path: GET nonsense.'));
      assert.deepEqual(await rawApiCall(f.socket, 'DELETE', '/drives/x', undefined, 5000), fault('Invalid request method and/or path: DELETE drives.'));
      assert.deepEqual(await rawApiCall(f.socket, 'GET', '/', { a: 1 }, 5000), fault('GET request cannot have a body.'));
      // Real Firecracker resources Flint does not use: named as unimplemented, not as unknown.
      assert.deepEqual(await put(f, '/logger', { log_path: '/x' }), fault('The Flint Firecracker emulator does not implement PUT /logger (Flint does not use it).'));
      assert.deepEqual(await rawApiCall(f.socket, 'PATCH', '/drives/x', { drive_id: 'x' }, 5000), fault('The Flint Firecracker emulator does not implement PATCH /drives (Flint does not use it).'));
    } finally {
      await f.close();
    }
  });
});
