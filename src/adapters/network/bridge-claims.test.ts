// Host-wide bridge claims in a temp directory (never /run/flint); no
// network devices are touched, so these run anywhere.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBridgeClaims, procClaimHost } from './bridge-claims.ts';
import type { BridgeClaims, ClaimHost } from './bridge-claims.ts';
import { isFlintError } from '../../core/errors/index.ts';
import { parseAddressSpan } from '../../core/ipam.ts';
import type { AddressSpan } from '../../core/ipam.ts';

function span(text: string): AddressSpan {
  const r = parseAddressSpan(text);
  assert.ok(r.ok, text);
  return r.span;
}

const WHOLE = span('10.79.0.2-10.79.0.254');

function tempRunDir(t: TestContext): { dir: string; open: (instanceId: string, stateDir: string, host?: ClaimHost) => BridgeClaims } {
  const dir = mkdtempSync(join(tmpdir(), 'flint-claims-'));
  const opened: BridgeClaims[] = [];
  t.after(() => {
    for (const c of opened) c.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    open(instanceId, stateDir, host) {
      const c = openBridgeClaims({ dir, instanceId, stateDir, ...(host === undefined ? {} : { host }) });
      opened.push(c);
      return c;
    },
  };
}

test('a second instance with its own state directory is refused on a claimed bridge, with the first one named; other bridges are free', (t) => {
  const run = tempRunDir(t);
  const a = run.open('a1', '/var/lib/flint-a');
  const b = run.open('b1', '/var/lib/flint-b');
  assert.deepEqual(a.claim({ bridge: 'br0', v4: WHOLE, now: 1_700_000_000_000 }), []);
  assert.throws(() => b.claim({ bridge: 'br0', v4: WHOLE, now: 2 }), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED'));
    assert.equal(e.message, `bridge br0 is already used by Flint instance "a1" (pid ${process.pid}, state directory /var/lib/flint-a, since 2023-11-14T22:13:20.000Z): both hand out IPv4 addresses from 10.79.0.2-10.79.0.254 and 10.79.0.2-10.79.0.254, which overlap`);
    assert.equal(e.details.otherInstance, 'a1');
    return true;
  });
  b.claim({ bridge: 'br1', v4: WHOLE, now: 3 });
  // A repeated claim of the same instance is fine (ensureNetwork claims again).
  a.claim({ bridge: 'br0', v4: WHOLE, now: 4 });
  assert.deepEqual(a.list().map((c) => `${c.bridge} ${c.instanceId}`), ['br0 a1', 'br1 b1']);
});

test('disjoint ranges share a bridge; so do instances sharing one state directory; IPv6 must be disjoint too', (t) => {
  const run = tempRunDir(t);
  run.open('a1', '/s/a').claim({ bridge: 'br0', v4: span('10.79.0.2-10.79.0.99'), v6: span('fd00::2-fd00::ff'), now: 1 });
  run.open('b1', '/s/b').claim({ bridge: 'br0', v4: span('10.79.0.100-10.79.0.199'), v6: span('fd00::100-fd00::1ff'), now: 1 });
  // Same state directory as a1, overlapping a1's range: the shared leases table keeps their addresses apart.
  run.open('c1', '/s/a').claim({ bridge: 'br0', v4: span('10.79.0.50-10.79.0.60'), now: 1 });
  // …but overlapping b1's is refused all the same.
  assert.throws(() => run.open('c2', '/s/a').claim({ bridge: 'br0', v4: span('10.79.0.90-10.79.0.110'), now: 1 }), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && /"b1"/.test(e.message));
  // IPv4 disjoint, IPv6 overlapping.
  assert.throws(() => run.open('d1', '/s/d').claim({ bridge: 'br0', v4: span('10.79.0.200-10.79.0.254'), v6: span('fd00::1f0-fd00::2ff'), now: 1 }),
    (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && /"b1".*IPv6.*overlap/.test(e.message));
  // Without IPv6 it fits.
  run.open('e1', '/s/e').claim({ bridge: 'br0', v4: span('10.79.0.200-10.79.0.254'), now: 1 });
});

test('the same instance id with another state directory is refused, and the message says why that is doubly wrong', (t) => {
  const run = tempRunDir(t);
  run.open('x1', '/s/a').claim({ bridge: 'br0', v4: WHOLE, now: 1 });
  assert.throws(() => run.open('x1', '/s/b').claim({ bridge: 'br0', v4: WHOLE, now: 1 }),
    (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && /same instance id.*taps would collide/.test(e.message));
});

test('close releases the claims; a released bridge can be claimed by another instance', (t) => {
  const run = tempRunDir(t);
  const a = run.open('a1', '/s/a');
  a.claim({ bridge: 'br0', v4: WHOLE, now: 1 });
  a.claim({ bridge: 'br1', v4: WHOLE, now: 1 });
  a.release('br1');
  const b = run.open('b1', '/s/b');
  b.claim({ bridge: 'br1', v4: WHOLE, now: 1 });
  a.close();
  a.close(); // idempotent
  b.claim({ bridge: 'br0', v4: WHOLE, now: 1 });
  assert.deepEqual(b.list().map((c) => `${c.bridge} ${c.instanceId}`), ['br0 b1', 'br1 b1']);
});

test('claims of an earlier boot are stale; claims from another pid namespace count as alive; another network namespace is another bridge', (t) => {
  const run = tempRunDir(t);
  const real = procClaimHost();
  const fake = (over: Partial<ClaimHost>): ClaimHost => ({ ...real, self: () => '999999:1', isOwnerAlive: () => true, ...over });
  run.open('old', '/s/old', fake({ bootId: 'an-earlier-boot' })).claim({ bridge: 'br0', v4: WHOLE, now: 1 });
  const removed = run.open('new', '/s/new').claim({ bridge: 'br0', v4: WHOLE, now: 2 });
  assert.deepEqual(removed.map((c) => c.instanceId), ['old']);

  run.open('ctr', '/s/ctr', fake({ pidns: 'pid:[1]', self: () => '1:5' })).claim({ bridge: 'br1', v4: WHOLE, now: 1 });
  assert.throws(() => run.open('new2', '/s/new2').claim({ bridge: 'br1', v4: WHOLE, now: 2 }), (e: unknown) => isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && /"ctr"/.test(e.message));

  run.open('elsewhere', '/s/e', fake({ netns: 'net:[1]' })).claim({ bridge: 'br2', v4: WHOLE, now: 1 });
  run.open('here', '/s/h').claim({ bridge: 'br2', v4: WHOLE, now: 2 });
});

const claimsModule = fileURLToPath(new URL('./bridge-claims.ts', import.meta.url));

test('a Flint killed with SIGKILL while it holds a claim blocks the bridge only while it lives', async (t) => {
  const run = tempRunDir(t);
  // A real second process claims the bridge, says so, and waits to be killed.
  const program = `
    const { openBridgeClaims } = await import(${JSON.stringify(claimsModule)});
    const c = openBridgeClaims({ dir: ${JSON.stringify(run.dir)}, instanceId: 'dead', stateDir: '/s/dead' });
    c.claim({ bridge: 'br0', v4: { family: 4, first: 0x0a4f0002n, last: 0x0a4f00fen }, now: 1 });
    process.stdout.write('claimed\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => { child.kill('SIGKILL'); await exited; });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('claimed')) resolve(); });
    child.once('exit', (code) => reject(new Error(`the claiming child exited early (${String(code)})`)));
  });
  const mine = run.open('live', '/s/live');
  assert.throws(() => mine.claim({ bridge: 'br0', v4: WHOLE, now: 2 }), (e: unknown) =>
    isFlintError(e, 'FLINT_ERR_NET_BRIDGE_CLAIMED') && e.message.includes(`"dead" (pid ${String(child.pid)}`));
  child.kill('SIGKILL');
  await exited;
  const removed = mine.claim({ bridge: 'br0', v4: WHOLE, now: 3 });
  assert.deepEqual(removed.map((c) => c.instanceId), ['dead'], 'the dead claim was removed');
  assert.deepEqual(mine.list().map((c) => c.instanceId), ['live']);
});

test('a claims directory that cannot be used is a coded error naming it', (t) => {
  const run = tempRunDir(t);
  // claims.db is a regular file: no directory can be made below it.
  openBridgeClaims({ dir: run.dir, instanceId: 'a', stateDir: '/s' }).close();
  assert.throws(() => openBridgeClaims({ dir: join(run.dir, 'claims.db', 'sub'), instanceId: 'a', stateDir: '/s' }), (e: unknown) =>
    isFlintError(e, 'FLINT_ERR_NET_CLAIMS_UNUSABLE') && e.message.includes(join(run.dir, 'claims.db', 'sub')));
});
