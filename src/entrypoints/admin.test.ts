/**
 * The operator commands against a whole running Flint (startFlint on the
 * fast fakes of the host's edges, GitHub in memory, runDir in a temporary
 * directory): each command runs in this process through the CLI's own
 * dispatcher, over the real admin socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig } from '../config/demo.ts';
import { createLogger } from '../adapters/log/logger.ts';
import { FakeDisks } from '../../test/fakes/fake-disks.ts';
import { FakeNetwork } from '../../test/fakes/fake-network.ts';
import { InstantDriver } from '../../test/fakes/instant-driver.ts';
import type { InstantGuest } from '../../test/fakes/instant-driver.ts';
import { MemoryGitHub } from '../../test/fakes/memory-github.ts';
import { signedDelivery, workflowJobPayload } from '../../bench/_payload.ts';
import type { StatusSnapshot, VmStatus, JobStatusView } from '../daemon/status.ts';
import { main } from './cli.ts';
import type { CommandIo } from './io.ts';
import { startFlint } from './flint.ts';
import type { FlintOptions, RunningFlint } from './flint.ts';

const SECRET = 'flint-admin-test-secret';
const HOUR = 3600_000;

interface Rig {
  readonly flint: RunningFlint;
  readonly socket: string;
  readonly guests: InstantGuest[];
  readonly driver: InstantDriver;
  readonly jits: string[];
  readonly dir: string;
}

function tempDir(t: { after: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-admin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function options(dir: string, admin?: { group?: number; socket?: string }): FlintOptions & { guests: InstantGuest[]; driver: InstantDriver; jits: string[] } {
  const github = new MemoryGitHub({ org: 'flint-admin' });
  const jits: string[] = [];
  const register = github.createJitRunner.bind(github);
  github.createJitRunner = async (req) => {
    const r = await register(req);
    jits.push(r.encodedJitConfig);
    return r;
  };
  const base = demoConfig({
    apiUrl: 'http://127.0.0.1:9', appId: 1, privateKey: 'never used: GitHub is in memory', webhookSecret: SECRET, organization: 'flint-admin',
    kernel: '/nonexistent/vmlinuz', filesystem: '/nonexistent/rootfs.ext4', stateDir: join(dir, 'state'), runDir: join(dir, 'run'),
    address: '127.0.0.1:0', maxRunners: 2, instanceId: 'ad',
  });
  const config = admin === undefined ? base : { ...base, admin };
  const guests: InstantGuest[] = [];
  // Each guest boots and starts its runner at once, then lives until the test ends it.
  const driver = new InstantDriver((g) => {
    guests.push(g);
    g.say('FLINT-MARKER booted');
    g.say('hello from the guest console');
    g.say('FLINT-MARKER runner-started');
  });
  return {
    config, logger: createLogger({ level: 'silent' }), synchronous: 'NORMAL',
    tickMs: HOUR, reconcileMs: HOUR, staleRunnersMs: HOUR, jobTruth: { intervalMs: HOUR }, redeliver: { intervalMs: HOUR },
    maxVcpus: 1000, maxMemoryMib: 1_000_000,
    edges: { drivers: { qemu: driver }, network: new FakeNetwork(config.instanceId), disks: new FakeDisks(), github },
    guests, driver, jits,
  };
}

async function rig(t: { after: (fn: () => unknown) => void }, admin?: { group?: number; socket?: string }): Promise<Rig> {
  const dir = tempDir(t);
  const o = options(dir, admin);
  const flint = await startFlint(o);
  t.after(() => flint.close());
  return { flint, socket: admin?.socket ?? join(dir, 'run', 'admin.sock'), guests: o.guests, driver: o.driver, jits: o.jits, dir };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function queue(flint: RunningFlint, jobId: number): Promise<void> {
  const d = signedDelivery(SECRET, 'workflow_job', workflowJobPayload({ jobId, action: 'queued', labels: ['self-hosted', 'flint-demo'] }));
  const res = await fetch(`${flint.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
  assert.equal(res.status, 202);
}

/** Runs one `flint …` command line in this process. */
async function flintCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: {} };
  const code = await main(argv, io);
  return { code, out: out.join(''), err: err.join('') };
}

/** A scale pass that began after now has ended. */
async function nextScalePass(flint: RunningFlint): Promise<void> {
  const scale = (): { runs: number; running: boolean } => {
    const l = flint.loops().find((x) => x.name === 'scale');
    assert.ok(l);
    return l;
  };
  const before = scale().runs + (scale().running ? 1 : 0);
  flint.scheduler.poke();
  await until('a scale pass', () => scale().runs > before && !scale().running);
}

test('status, vms, jobs and logs over the admin socket: tables for a terminal, JSON with --json, never a JIT config', async (t) => {
  const { flint, socket, guests, jits } = await rig(t);
  await queue(flint, 4242);
  await until('the VM runner online', () => (flint.scheduler.snapshot().demo?.idle ?? 0) === 1);
  const vm = flint.supervisor.list()[0];
  assert.ok(vm);

  const status = await flintCli('status', '--socket', socket);
  assert.equal(status.code, 0, status.err);
  assert.match(status.out, /^Flint ad: running; free for VMs 999\/1000 vCPUs/);
  assert.match(status.out, /^DEFINITION +STATE +QUEUED +STARTING +IDLE +BUSY +MIN\/MAX +HEALTH$/m);
  assert.match(status.out, /^demo +active +1 +0 +1 +0 +0\/2 +healthy$/m);
  assert.ok(status.out.includes(vm.id));
  assert.match(status.out, /^scale +ok +1h00m/m);

  const json = await flintCli('status', '--json', '--socket', socket);
  assert.equal(json.code, 0, json.err);
  const snap = JSON.parse(json.out) as StatusSnapshot;
  assert.equal(snap.host.state, 'running');
  assert.deepEqual(snap.definitions.map((d) => [d.name, d.queued, d.runners.idle]), [['demo', 1, 1]]);
  assert.equal(snap.vms[0]?.id, vm.id);
  assert.equal(snap.vms[0]?.runner, 'idle');
  assert.match(snap.vms[0]?.address ?? '', /^10\.213\.0\.\d+$/);
  assert.deepEqual(snap.jobs.map((j) => [j.id, j.status]), [[4242, 'queued']]);
  assert.ok(jits.length === 1 && jits[0] !== undefined);
  for (const out of [status.out, json.out]) assert.ok(!out.includes(jits[0] ?? '?'), 'no JIT config on a status surface');

  const vms = await flintCli('vms', '--socket', socket);
  assert.equal(vms.code, 0, vms.err);
  assert.match(vms.out, new RegExp(`^VM +DEFINITION +STATE +RUNNER +AGE +ADDRESS +BOOT +JOB\\n${vm.id} +demo +running +idle +`, 'm'));
  const vmsJson = JSON.parse((await flintCli('vms', '--json', '--socket', socket)).out) as VmStatus[];
  assert.deepEqual(vmsJson.map((v) => v.id), [vm.id]);

  // SQLite store: this host is the whole fleet; no Fleet table, and flint hosts says why.
  assert.equal(snap.fleet, null);
  assert.doesNotMatch(status.out, /^Fleet/m);
  const hosts = await flintCli('hosts', '--socket', socket);
  assert.equal(hosts.code, 0, hosts.err);
  assert.equal(hosts.out, 'no fleet: the store is SQLite, this host is the whole fleet\n');
  assert.equal(JSON.parse((await flintCli('hosts', '--json', '--socket', socket)).out), null);

  const jobs = await flintCli('jobs', '--socket', socket);
  assert.equal(jobs.code, 0, jobs.err);
  assert.match(jobs.out, /^4242 +acme\/widgets +\S.* +demo +queued +\d+\S* ago/m);
  const recent = JSON.parse((await flintCli('jobs', '--since', '1h', '--json', '--socket', socket)).out) as JobStatusView[];
  assert.deepEqual(recent.map((j) => j.id), [4242]);
  const none = JSON.parse((await flintCli('jobs', '--since', '2999-01-01T00:00:00Z', '--json', '--socket', socket)).out) as JobStatusView[];
  assert.deepEqual(none, []);

  const logs = await flintCli('logs', vm.id, '--socket', socket);
  assert.equal(logs.code, 0, logs.err);
  assert.match(logs.out, /hello from the guest console/);
  const logsJson = await flintCli('logs', vm.id, '--json', '--socket', socket);
  assert.equal(logsJson.code, 0, logsJson.err);
  const lines = logsJson.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { vm: string; line: string });
  assert.ok(lines.every((l) => l.vm === vm.id), 'every line names its VM');
  assert.deepEqual(lines.map((l) => l.line).filter((l) => l.startsWith('FLINT-MARKER') || l.startsWith('hello')),
    ['FLINT-MARKER booted', 'hello from the guest console', 'FLINT-MARKER runner-started']);
  assert.equal(guests.length, 1);
});

test('logs --follow streams the console as it comes and ends when the VM ends', async (t) => {
  const { flint, socket, guests } = await rig(t);
  await queue(flint, 7);
  await until('a guest', () => guests.length === 1 && flint.supervisor.list().length === 1);
  const id = flint.supervisor.list()[0]?.id ?? '';
  const out: string[] = [];
  const io: CommandIo = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: { FLINT_ADMIN_SOCKET: socket } };
  const following = main(['logs', id, '--follow'], io);
  await until('the head of the log', () => out.join('').includes('hello from the guest console'));
  guests[0]?.say('a line printed while followed');
  await until('the live line', () => out.join('').includes('a line printed while followed'));
  guests[0]?.exit();
  assert.equal(await following, 0);
  assert.equal(out.join('').split('a line printed while followed').length, 2, 'each line once');
});

test('logs --follow --json: JSON lines, the live ones as they come, until the VM ends', async (t) => {
  const { flint, socket, guests } = await rig(t);
  await queue(flint, 8);
  await until('a guest', () => guests.length === 1 && flint.supervisor.list().length === 1);
  const id = flint.supervisor.list()[0]?.id ?? '';
  const out: string[] = [];
  const io: CommandIo = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: { FLINT_ADMIN_SOCKET: socket } };
  const following = main(['logs', id, '--follow', '--json'], io);
  const live = JSON.stringify({ vm: id, line: 'a line printed while followed' });
  await until('the head of the log', () => out.join('').includes(JSON.stringify({ vm: id, line: 'hello from the guest console' })));
  guests[0]?.say('a line printed while followed');
  await until('the live line', () => out.join('').includes(live));
  guests[0]?.exit();
  assert.equal(await following, 0);
  const lines = out.join('').trimEnd().split('\n');
  assert.ok(lines.every((l) => (JSON.parse(l) as { vm: string }).vm === id), 'only JSON lines, each naming the VM');
  assert.equal(lines.filter((l) => l === live).length, 1, 'each line once');
});

test('drain a definition: its idle runner goes and a queued job starts no VM; resume: the job gets one', async (t) => {
  const { flint, socket, driver } = await rig(t);
  await queue(flint, 1);
  await until('an idle runner', () => (flint.scheduler.snapshot().demo?.idle ?? 0) === 1);
  const idle = flint.supervisor.list()[0];
  assert.ok(idle);

  const drained = await flintCli('drain', 'demo', '--socket', socket);
  assert.equal(drained.code, 0, drained.err);
  assert.match(drained.out, /^drained definition demo: no new runners/m);
  assert.match(drained.out, /^drained: demo$/m);
  await until('the idle runner\'s VM stopped', () => flint.supervisor.list().length === 0);
  await queue(flint, 2);
  await nextScalePass(flint);
  assert.equal(driver.starts.length, 1, 'no new VM while drained');
  const snap = JSON.parse((await flintCli('status', '--json', '--socket', socket)).out) as StatusSnapshot;
  assert.equal(snap.definitions[0]?.state, 'paused');
  assert.equal(snap.definitions[0]?.queued, 2);
  assert.match((await flintCli('status', '--socket', socket)).out, /^demo +paused +2 /m);

  const resumed = await flintCli('resume', 'demo', '--json', '--socket', socket);
  assert.equal(resumed.code, 0, resumed.err);
  assert.deepEqual(JSON.parse(resumed.out), { paused: { host: false, definitions: [] } });
  await until('VMs for the queued jobs', () => driver.starts.length === 3);
});

test('drain --host starts nothing for any definition until resume --host', async (t) => {
  const { flint, socket, driver } = await rig(t);
  assert.equal((await flintCli('drain', '--host', '--socket', socket)).code, 0);
  await queue(flint, 3);
  await nextScalePass(flint);
  assert.equal(driver.starts.length, 0);
  assert.equal((JSON.parse((await flintCli('status', '--json', '--socket', socket)).out) as StatusSnapshot).host.state, 'paused');
  assert.equal((await flintCli('resume', '--host', '--socket', socket)).code, 0);
  await until('a VM', () => driver.starts.length === 1);
});

test('drain of an unknown definition is refused with exit 1 and names it', async (t) => {
  const { socket } = await rig(t);
  const r = await flintCli('drain', 'nope', '--socket', socket);
  assert.equal(r.code, 1);
  assert.match(r.err, /FLINT_ERR_ADMIN_REQUEST: 404: no runner definition is named "nope"/);
});

test('the socket is 0600 root-only by default, and 0660 with the admin group', async (t) => {
  const a = await rig(t);
  const st = statSync(a.socket);
  assert.ok(lstatSync(a.socket).isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, process.getuid?.());

  const gid = process.getgid?.() ?? 0;
  const dir = tempDir(t);
  const socket = join(dir, 'elsewhere', 'flint.sock');
  await rig(t, { group: gid, socket });
  const st2 = statSync(socket);
  assert.equal(st2.mode & 0o777, 0o660);
  assert.equal(st2.gid, gid);
});

test('a stale socket left by a dead Flint is removed; the socket goes with close()', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 'admin.sock');
  // A socket file nobody listens on: the server's own file is unlinked by its close, a second link to it stays.
  const dead = createServer();
  const first = join(dir, 'first.sock');
  await new Promise<void>((r) => dead.listen(first, r));
  linkSync(first, socket);
  await new Promise<void>((r) => dead.close(() => r()));
  assert.ok(lstatSync(socket).isSocket());
  const { flint } = await rig(t, { socket });
  assert.equal((await flintCli('vms', '--socket', socket)).out, 'no live VMs\n');
  await flint.close();
  assert.throws(() => lstatSync(socket), { code: 'ENOENT' });
});

test('a socket a live Flint answers on refuses the start; a plain file there is left alone', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 'admin.sock');
  const live = createServer();
  await new Promise<void>((r) => live.listen(socket, r));
  t.after(() => live.close());
  await assert.rejects(startFlint(options(join(dir, 'a'), { socket })), { code: 'FLINT_ERR_ADMIN_SOCKET_IN_USE' });

  const file = join(dir, 'file.sock');
  mkdirSync(join(dir, 'b'));
  writeFileSync(file, 'not a socket');
  await assert.rejects(startFlint(options(join(dir, 'b'), { socket: file })), { code: 'FLINT_ERR_ADMIN_SOCKET_FAILED' });
  assert.equal(statSync(file).size, 'not a socket'.length);
});

test('no daemon on the socket: exit 1, naming the socket path', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 'absent.sock');
  for (const argv of [['status'], ['vms', '--json'], ['jobs'], ['logs', 'ad-00001'], ['drain', '--host'], ['resume', 'demo']]) {
    const r = await flintCli(...argv, '--socket', socket);
    assert.equal(r.code, 1, argv.join(' '));
    assert.ok(r.err.includes(`FLINT_ERR_ADMIN_UNREACHABLE: Flint is not running: nothing answers on ${socket}`), r.err);
    assert.match(r.err, /hint: Start Flint/);
  }
});

test('the socket refuses unknown endpoints, parameters and body fields', async (t) => {
  const { socket } = await rig(t);
  const call = (method: string, path: string, body?: string): Promise<{ status: number; text: string }> => new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal((await call('GET', '/nope')).status, 404);
  assert.equal((await call('POST', '/status')).status, 405);
  assert.equal((await call('GET', '/jobs?limit=3')).status, 400);
  assert.equal((await call('GET', '/jobs?since=yesterday')).status, 400);
  const extra = await call('POST', '/drain', '{"definition":"demo","force":true}');
  assert.equal(extra.status, 400);
  assert.deepEqual(JSON.parse(extra.text), { error: { code: 'FLINT_ERR_ADMIN_REQUEST', message: 'unknown field "force" (known: definition)' } });
  assert.equal((await call('GET', '/vms/..%2F..%2Fetc%2Fpasswd/log')).status, 404);
  assert.equal((await call('GET', '/vms/ad-zzzzz/log')).status, 404);
});

/**
 * `flint …` in a child process running as `uid`/`gid` (the socket's access
 * control is the kernel's, so it takes another user to test). The child
 * starts as root and loads the CLI and its commands first, then
 * drops to the user: a checkout in a directory only root may read (as a
 * CI clone may be) still works.
 */
function flintAs(uid: number, gid: number, argv: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  const cli = new URL('./cli.ts', import.meta.url).href;
  // Module resolution reads the file system at every import, even of a module
  // already loaded: every command is loaded, and kept, before the drop.
  const script = `
    const { main, commands } = await import(${JSON.stringify(cli)});
    for (const c of commands) { const loaded = await c.load(); c.load = async () => loaded; }
    process.setgroups([${gid}]);
    process.setgid(${gid});
    process.setuid(${uid});
    process.exitCode = await main(${JSON.stringify(argv)});
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

test('another user is refused with a hint about admin.group; a member of admin.group gets in', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async (t) => {
  const nobody = 65534;
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const rootOnly = join(dir, 'root-only.sock');
  const shared = join(dir, 'shared.sock');
  await rig(t, { socket: rootOnly });
  await rig(t, { socket: shared, group: nobody });

  const denied = await flintAs(nobody, nobody, ['vms', '--socket', rootOnly]);
  assert.equal(denied.code, 1, denied.err);
  assert.ok(denied.err.includes(`FLINT_ERR_ADMIN_DENIED: permission denied on the admin socket ${rootOnly}`), denied.err);
  assert.match(denied.err, /admin\.group/);

  const member = await flintAs(nobody, nobody, ['vms', '--socket', shared]);
  assert.equal(member.code, 0, member.err);
  assert.equal(member.out, 'no live VMs\n');
});
