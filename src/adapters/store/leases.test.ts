import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from './db.ts';
import type { Db } from './db.ts';
import { openLeaseStore } from './leases.ts';
import { addressPool } from '../../core/ipam.ts';
import { isFlintError } from '../../core/errors/index.ts';

function tempDb(t: TestContext): { dir: string; open: () => Db } {
  const dir = mkdtempSync(join(tmpdir(), 'flint-leases-'));
  const opened: Db[] = [];
  t.after(() => {
    for (const db of opened) if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, open: () => { const db = openDatabase(dir); opened.push(db); return db; } };
}

const v4 = addressPool('10.9.0.1', 29, 4, 'br0'); // guests .2 … .6
const v6 = addressPool('fd00:9::1', 126, 6, 'br0'); // guests ::2, ::3
const req = (vmId: string) => ({ network: 'br0', instanceId: 'i1', vmId, now: 1 });

test('both families are leased together or not at all', (t) => {
  const store = openLeaseStore(tempDb(t).open());
  assert.deepEqual(store.acquireAll({ ...req('i1-00001'), pools: [v4, v6] }).map((l) => l.address), ['10.9.0.2', 'fd00:9::2']);
  assert.deepEqual(store.acquireAll({ ...req('i1-00002'), pools: [v4, v6] }).map((l) => l.address), ['10.9.0.3', 'fd00:9::3']);
  // IPv4 has room, IPv6 is full: the IPv4 lease of this attempt is rolled back.
  assert.throws(() => store.acquireAll({ ...req('i1-00003'), pools: [v4, v6] }), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_POOL_EXHAUSTED') && /IPv6/.test(e.message));
  assert.deepEqual(store.forVm('i1-00003'), []);
});

test('a retried acquire returns the lease the VM already holds; another network for the same VM is a bug', (t) => {
  const store = openLeaseStore(tempDb(t).open());
  const first = store.acquire({ ...req('i1-00001'), pool: v4 });
  assert.deepEqual(store.acquire({ ...req('i1-00001'), pool: v4 }), first);
  assert.throws(() => store.acquire({ ...req('i1-00001'), network: 'br1', pool: addressPool('10.8.0.1', 24, 4, 'br1') }), (e: unknown) => isFlintError(e, 'FLINT_ERR_INTERNAL'));
});

test('the round-robin cursor survives a reopen: a released address waits for the wrap', (t) => {
  const db = tempDb(t);
  let store = openLeaseStore(db.open());
  assert.equal(store.acquire({ ...req('i1-00001'), pool: v4 }).address, '10.9.0.2');
  assert.equal(store.acquire({ ...req('i1-00002'), pool: v4 }).address, '10.9.0.3');
  assert.deepEqual(store.release('i1-00001').map((l) => l.address), ['10.9.0.2']);
  assert.deepEqual(store.release('i1-00001'), [], 'release is idempotent');
  store = openLeaseStore(db.open());
  assert.equal(store.acquire({ ...req('i1-00003'), pool: v4 }).address, '10.9.0.4', 'not .2, although it is free and lowest');
  assert.deepEqual(store.ofInstance('i1').map((l) => l.vmId), ['i1-00002', 'i1-00003']);
  assert.deepEqual(store.ofInstance('i2'), []);
});

test('two processes leasing from one state file at once never share an address', async (t) => {
  const { dir, open } = tempDb(t);
  const child = (inst: string): Promise<void> => new Promise((resolve, reject) => {
    const code = `
      import { openDatabase } from './src/adapters/store/db.ts';
      import { openLeaseStore } from './src/adapters/store/leases.ts';
      import { addressPool } from './src/core/ipam.ts';
      const store = openLeaseStore(openDatabase(${JSON.stringify(dir)}));
      const pool = addressPool('10.213.0.1', 24, 4, 'br');
      for (let i = 0; i < 100; i++) store.acquire({ network: 'br', pool, instanceId: '${inst}', vmId: '${inst}-' + String(i).padStart(5, '0'), now: 0 });
    `;
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: join(import.meta.dirname, '../../..'), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`child ${inst} exited ${c}: ${err}`))));
  });
  await Promise.all([child('pa'), child('pb')]);
  const store = openLeaseStore(open());
  const all = [...store.ofInstance('pa'), ...store.ofInstance('pb')].map((l) => l.address);
  assert.equal(all.length, 200);
  assert.equal(new Set(all).size, 200);
});
