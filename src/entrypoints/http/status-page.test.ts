/**
 * The status page's listener with a fake source and fake timers (no VM, no
 * daemon): what it serves, the event stream, the token, the Host check,
 * the console tail. The page in a real browser against a Flint running real
 * jobs is src/entrypoints/flint-status-page.test.ts.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { StatusSnapshot } from '../../daemon/status.ts';
import { buildStatusPageServer, LOG_TAIL_BYTES, plainConsole, readTail, startStatusPage } from './status-page.ts';
import type { StatusPageOptions, StatusPageTimers } from './status-page.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page-html.ts';

const VM = 'tst-00001';
const TOKEN = 'status-token-0123456789abcdef';
const XSS = '<img src=x onerror=alert(1)>';

function snapshot(n: number): StatusSnapshot {
  return {
    at: 1_000 + n, instanceId: 'tst',
    host: { state: 'running', capacity: { limit: { cpus: 4, memoryMib: 8192 }, free: { cpus: 2, memoryMib: 4096 } } },
    definitions: [],
    vms: [],
    jobs: [{ id: 7, repository: 'o/r', name: XSS, definition: 'demo', status: 'queued', conclusion: null, runnerName: null, vmId: null, queuedAt: 900, waitMs: null, runMs: null, at: { queued: 900 } } as StatusSnapshot['jobs'][number]],
    loops: [],
    fleet: {
      leader: 'tst', leaseExpiresAt: 20_000, heartbeatMs: 10_000, lostAfterMs: 90_000,
      hosts: [
        { id: 'tst', address: 'http://127.0.0.1:8080', capacity: { vcpus: 4, memoryMib: 8192 }, vms: 0, firstSeenAt: 0, lastHeartbeatAt: 1_000, heartbeatAgeMs: n, state: 'up', lostAt: null, self: true, leader: true, claims: null, room: { demo: 2 } },
        { id: XSS, address: null, capacity: { vcpus: 8, memoryMib: 16384 }, vms: 2, firstSeenAt: 0, lastHeartbeatAt: 0, heartbeatAgeMs: 1_000 + n, state: 'up', lostAt: null, self: false, leader: false, claims: null, room: null },
      ],
    },
  };
}

class FakeTimers implements StatusPageTimers {
  readonly armed = new Map<number, () => void>();
  private next = 1;
  setInterval(fn: () => void): unknown {
    const id = this.next++;
    this.armed.set(id, fn);
    return id;
  }
  clearInterval(h: unknown): void {
    this.armed.delete(h as number);
  }
  fire(): void {
    for (const fn of this.armed.values()) fn();
  }
}

interface Page {
  readonly port: number;
  readonly timers: FakeTimers;
  readonly logDir: string;
  endStreams(): void;
}

async function page(t: TestContext, opts: Partial<StatusPageOptions> = {}): Promise<Page> {
  const timers = new FakeTimers();
  const logDir = mkdtempSync(join(tmpdir(), 'flint-status-page-'));
  let n = 0;
  const built = buildStatusPageServer({
    source: { status: async () => snapshot(n++), consoleLogPath: (id) => join(logDir, `${id}.log`) },
    loopback: true, timers, logger: { warn: () => undefined }, ...opts,
  });
  await new Promise<void>((resolve) => built.server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    built.endStreams();
    await new Promise<void>((resolve) => { built.server.close(() => resolve()); built.server.closeAllConnections(); });
    rmSync(logDir, { recursive: true, force: true });
  });
  return { port: (built.server.address() as AddressInfo).port, timers, logDir, endStreams: () => built.endStreams() };
}

interface Answer { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: string }

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens the event stream; `frames` fills as events arrive, `ended` settles when the server ends it. */
function events(port: number): Promise<{ frames: string[]; ended: Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      const frames: string[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) { frames.push(buf.slice(0, i)); buf = buf.slice(i + 2); }
      });
      const ended = new Promise<void>((r) => res.on('end', () => r()));
      resolve({ frames, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(check(), 'condition never held');
}

test('the page is one self-contained document: its inline style and script are exactly those the CSP names, nothing loads from elsewhere', async (t) => {
  const { port } = await page(t);
  const r = await get(port, '/');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-security-policy'], STATUS_PAGE_CSP);
  assert.equal(r.body, STATUS_PAGE_HTML);
  const hashOf = (tag: string): string => {
    const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(r.body);
    assert.ok(m?.[1] !== undefined, `an inline <${tag}>`);
    return `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`;
  };
  assert.match(STATUS_PAGE_CSP, new RegExp(`script-src ${hashOf('script').replace(/[+/]/g, '\\$&')}(;|$)`));
  assert.match(STATUS_PAGE_CSP, new RegExp(`style-src ${hashOf('style').replace(/[+/]/g, '\\$&')}(;|$)`));
  assert.match(STATUS_PAGE_CSP, /default-src 'none'/);
  assert.doesNotMatch(r.body, /\b(src|href)=|https?:\/\//, 'no external resource');
  assert.doesNotMatch(r.body, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'the script builds text nodes only');
  assert.equal((await get(port, '/status')).status, 200, '/status is the page too');
  assert.equal((await get(port, '/nope')).status, 404);
});

test('/api/status is the snapshot as JSON; a job name with markup stays a string', async (t) => {
  const { port } = await page(t);
  const r = await get(port, '/api/status');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  const s = JSON.parse(r.body) as StatusSnapshot;
  assert.equal(s.instanceId, 'tst');
  assert.equal(s.jobs[0]?.name, XSS);
  assert.deepEqual(s.fleet?.hosts.map((h) => [h.id, h.self, h.leader]), [['tst', true, true], [XSS, false, false]]);
});

test('the Fleet section is in the page, hidden until a snapshot carries a fleet, and drawn from the snapshot like the other tables', async (t) => {
  const { port } = await page(t);
  const body = (await get(port, '/')).body;
  assert.match(body, /<section id="fleet-section" hidden><h2>Fleet <span id="fleet-leader"><\/span><\/h2><table id="fleet">/);
  for (const head of ['host', 'state', 'role', 'capacity', 'VMs', 'claims', 'heartbeat', 'address']) assert.match(body, new RegExp(`<th>${head}</th>`));
  // Shown only with a fleet (PostgreSQL store); its rows are filled on each event with text cells like the rest.
  assert.match(body, /\$\('fleet-section'\)\.hidden = s\.fleet === null;/);
  assert.match(body, /fill\('fleet', hosts, 9,/);
});

test('the event stream sends a snapshot at once and on every tick; one timer for all clients, disarmed when the last goes and on shutdown', async (t) => {
  const p = await page(t);
  const a = await events(p.port);
  await until(() => a.frames.some((f) => f.startsWith('event: status')));
  assert.match(a.frames[0] ?? '', /^retry: 2000$/);
  assert.equal(p.timers.armed.size, 1);
  const b = await events(p.port);
  await until(() => b.frames.filter((f) => f.startsWith('event: status')).length === 1);
  assert.equal(p.timers.armed.size, 1, 'still one timer');
  const before = a.frames.length;
  p.timers.fire();
  await until(() => a.frames.length === before + 1 && b.frames.length === 3);
  const data = JSON.parse((a.frames.at(-1) ?? '').replace(/^event: status\ndata: /, '')) as StatusSnapshot;
  assert.equal(data.instanceId, 'tst');
  b.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(p.timers.armed.size, 1, 'a is still listening');
  p.endStreams();
  await a.ended;
  assert.equal(p.timers.armed.size, 0, 'no timer left armed after shutdown');
  assert.equal((await get(p.port, '/api/events')).status, 503, 'no new stream while stopping');
});

test('with a token: 401 without it or with a wrong one; a Bearer header passes; ?token= once gives an HttpOnly SameSite=Strict cookie that passes after', async (t) => {
  const { port } = await page(t, { token: TOKEN, loopback: false });
  for (const path of ['/', '/api/status', '/api/events', `/api/vms/${VM}/log`]) {
    const r = await get(port, path);
    assert.equal(r.status, 401, path);
    assert.doesNotMatch(r.body, /instanceId|<html/);
  }
  assert.equal((await get(port, '/api/status', { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
  assert.equal((await get(port, '/?token=wrong')).status, 401);
  assert.equal((await get(port, '/api/status', { authorization: `Bearer ${TOKEN}` })).status, 200);
  const login = await get(port, `/?token=${TOKEN}`);
  assert.equal(login.status, 303);
  assert.equal(login.headers.location, '/', 'the token leaves the address bar');
  const cookie = login.headers['set-cookie']?.[0] ?? '';
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.ok(!cookie.includes(TOKEN), 'the cookie is not the token itself');
  const pair = cookie.split(';')[0] ?? '';
  assert.equal((await get(port, '/api/status', { cookie: pair })).status, 200);
  assert.equal((await get(port, '/api/status', { cookie: `${pair}x` })).status, 401);
});

test('without a token on loopback only a loopback Host is served: a DNS-rebound name is refused', async (t) => {
  const { port } = await page(t);
  assert.equal((await get(port, '/api/status', { host: 'evil.example:9090' })).status, 421);
  assert.equal((await get(port, '/api/status', { host: `localhost:${port}` })).status, 200);
  assert.equal((await get(port, '/api/status', { host: '[::1]:9090' })).status, 200);
});

test('the console tail is the end of the log, capped, as plain text without terminal escapes; unknown or malformed VMs are 404', async (t) => {
  const p = await page(t);
  assert.equal((await get(p.port, `/api/vms/${VM}/log`)).status, 404);
  assert.equal((await get(p.port, '/api/vms/..%2Fetc%2Fpasswd/log')).status, 404);
  writeFileSync(join(p.logDir, `${VM}.log`), `${`${'x'.repeat(99)}\n`.repeat(1000)}\u001b[32mflint: runner started\u001b[0m\r\nlast line\n`);
  const r = await get(p.port, `/api/vms/${VM}/log`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  assert.ok(r.body.endsWith('x\nflint: runner started\nlast line\n'), 'the end of the log, escapes and carriage returns removed');
  assert.ok(Buffer.byteLength(r.body) <= LOG_TAIL_BYTES, 'capped');
  assert.ok(Buffer.byteLength(r.body) > LOG_TAIL_BYTES - 200, 'nearly the whole cap');
  assert.match(r.body, /^x{99}\n/, 'cut at a line start');
  assert.equal(readTail(join(p.logDir, 'none.log')), undefined);
  assert.equal(plainConsole(Buffer.from('a\u0007b\tc\u001b]0;t\u0007')), 'ab\tc0;t');
});

test('startStatusPage listens where it is told and closes with its streams; a taken port is FLINT_ERR_LISTEN_FAILED', async () => {
  const sp = await startStatusPage('127.0.0.1:0', { source: { status: async () => snapshot(0), consoleLogPath: () => '/nonexistent' }, logger: { warn: () => undefined } });
  try {
    const port = Number(new URL(sp.url).port);
    const s = await events(port);
    await until(() => s.frames.length >= 2);
    await assert.rejects(startStatusPage(`127.0.0.1:${port}`, { source: { status: async () => snapshot(0), consoleLogPath: () => '' }, logger: { warn: () => undefined } }),
      (err: { code?: string }) => err.code === 'FLINT_ERR_LISTEN_FAILED');
    await sp.close();
    await s.ended;
  } finally {
    await sp.close();
  }
});
