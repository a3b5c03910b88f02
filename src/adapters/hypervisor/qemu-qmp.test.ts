import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { qmpConnect, QmpError } from './qemu-qmp.ts';

/** A QMP server on a unix socket that answers by a script; records what it was sent. */
async function fakeQmp(t: TestContext, answer: (cmd: { execute: string; arguments?: unknown }, sock: Socket) => void, greet = true) {
  const dir = await mkdtemp(join(tmpdir(), 'flint-qmp-'));
  const path = join(dir, 'qmp.sock');
  const received: string[] = [];
  const open = new Set<Socket>();
  const server = createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    if (greet) sock.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    let buf = '';
    sock.on('data', (b) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // The client sends JSON objects by protocol.
        const cmd = JSON.parse(line) as { execute: string; arguments?: unknown };
        received.push(cmd.execute);
        answer(cmd, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(async () => {
    // close() waits for open connections; end them first.
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, received };
}

test('negotiates capabilities, skips events between replies, and returns results in order', async (t) => {
  const srv = await fakeQmp(t, (cmd, sock) => {
    if (cmd.execute === 'query-status') sock.write('{"event": "RESUME", "data": {}}\r\n{"return": {"status": "running"}}\r\n');
    else sock.write('{"return": {}}\r\n');
  });
  const qmp = await qmpConnect(srv.path);
  t.after(() => qmp.close());
  assert.deepEqual(await qmp.execute('query-status'), { status: 'running' });
  assert.deepEqual(await qmp.execute('send-key', { keys: [] }), {});
  assert.deepEqual(srv.received, ['qmp_capabilities', 'query-status', 'send-key']);
});

test('a QMP error reply rejects with its class', async (t) => {
  const srv = await fakeQmp(t, (cmd, sock) => {
    if (cmd.execute === 'qmp_capabilities') sock.write('{"return": {}}\n');
    else sock.write('{"error": {"class": "CommandNotFound", "desc": "no such command"}}\n');
  });
  const qmp = await qmpConnect(srv.path);
  t.after(() => qmp.close());
  await assert.rejects(qmp.execute('bogus'), (e: unknown) => e instanceof QmpError && e.qmpClass === 'CommandNotFound');
});

test('a socket that never greets times out; a missing socket fails at once', async (t) => {
  const srv = await fakeQmp(t, () => {}, false);
  await assert.rejects(qmpConnect(srv.path, 200), /did not answer within 200 ms/);
  await assert.rejects(qmpConnect(join(tmpdir(), 'flint-no-such-dir', 'qmp.sock'), 200), /ENOENT/);
});
