/**
 * A throw-away PostgreSQL cluster for tests: Debian's server binaries
 * (package `postgresql`), a data directory and socket directory under a
 * fresh temporary directory, no TCP listener (`listen_addresses=''`; the
 * server is reached on its unix socket only), trust authentication for the
 * superuser `flint`.
 *
 * PostgreSQL refuses to run as root: when the tests run as root (they do,
 * under scripts/test.mjs), the server runs as the `postgres` system user
 * the Debian package creates, in a temporary directory owned by it.
 *
 *   const cluster = await startPostgres();     // one per test file
 *   after(() => cluster.stop());
 *   const url = await cluster.createSchema();  // one per suite case
 *
 * Every suite case gets a schema of its own in the cluster's one database
 * (the URL sets its search_path), which is much cheaper than a database
 * each: an empty schema costs one catalogue row, a database a copy.
 *
 * `stop` asks the server for a fast shutdown (SIGINT), waits for it to
 * exit and removes the directory: nothing is left behind.
 *
 * A test process killed outright (SIGKILL, a crash) runs no `stop`: a
 * watchdog does it then. It is a small shell started detached (its own
 * session, so a signal to the test's process group spares it) with a pipe
 * on its stdin whose only writer is the test process; when that process
 * is gone, however it went, the kernel closes the pipe, the watchdog reads
 * end-of-file, stops the server (`pg_ctl stop -m immediate`) and removes
 * the directory. `stop` tells it the cluster is already gone and it exits.
 * It is unref'd: it never keeps the test process alive.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { program } from './prereq.ts';
import type { Prerequisite } from './prereq.ts';

const USER = 'flint';
const DATABASE = 'flint_test';

/** The newest server version's binaries under Debian's layout, or undefined. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(base).filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'postgres')));
  } catch {
    return undefined;
  }
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest === undefined ? undefined : join(base, newest, 'bin');
}

/**
 * What the tests need: the Debian cluster tools (declared for the tests in
 * src/prerequisites.json, so `npm test` and `.ci/run` install the package)
 * and the server binaries they bring.
 */
export function postgresPrereqs(): Prerequisite[] {
  return [
    program('pg_ctlcluster'),
    { what: 'the PostgreSQL server binaries (/usr/lib/postgresql/N/bin)', ok: () => postgresBinDir() !== undefined, install: 'apt-get install postgresql' },
  ];
}

export interface PostgresCluster {
  /** The directory holding the server's unix socket (and its data directory): the whole cluster. */
  readonly socketDir: string;
  /** The server's (postmaster's) pid. */
  readonly pid: number;
  /** The URL of the cluster's test database (schema `public`). */
  readonly url: string;
  /** Creates an empty schema with a fresh name and returns a URL whose connections use it (search_path). */
  createSchema(): Promise<string>;
  /** Drops a schema made by createSchema, with everything in it. */
  dropSchema(url: string): Promise<void>;
  /** Fast shutdown, wait for the server's exit, remove its directory. Idempotent. */
  stop(): Promise<void>;
}

interface RunAs { readonly uid: number; readonly gid: number }

/** Root hands the server to the `postgres` system user; anyone else runs it as themselves. */
function runAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('the tests run as root and there is no `postgres` user to run the server as (apt-get install postgresql creates it)');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'flint-pg-'));
  const dataDir = join(dir, 'data');
  const ids = user === undefined ? {} : { uid: user.uid, gid: user.gid };
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' };
  let server: ChildProcess | undefined;
  let admin: pg.Client | undefined;
  let watchdog: Watchdog | undefined;
  try {
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    // Before anything is in the directory: a test process killed from here on leaves nothing.
    watchdog = startWatchdog(join(bin, 'pg_ctl'), dataDir, dir, ids, env);
    const init = spawnSync(join(bin, 'initdb'), ['-D', dataDir, '-U', USER, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...ids, env, encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`);
    // A test cluster: no fsync (a crash of the machine loses a test run, not data), small memory, socket only.
    server = spawn(join(bin, 'postgres'), [
      '-D', dataDir, '-k', dir, '-c', "listen_addresses=", '-F', '-c', 'shared_buffers=16MB', '-c', 'max_connections=60',
      '-c', 'full_page_writes=off',
    ], { ...ids, env, stdio: ['ignore', 'ignore', 'pipe'] });
    await ready(server);
    const setup = new pg.Client({ host: dir, user: USER, database: 'postgres' });
    await setup.connect();
    try {
      await setup.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await setup.end();
    }
    admin = new pg.Client({ host: dir, user: USER, database: DATABASE });
    await admin.connect();
  } catch (err) {
    await admin?.end().catch(() => undefined);
    if (server !== undefined) await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
    watchdog?.release();
    throw err;
  }
  const adminClient = admin;
  const running = server;
  const guard = watchdog;
  // The server's pid is known once it is spawned (ready() rejects if the spawn failed).
  const pid = running.pid ?? -1;
  let n = 0;
  let stopped: Promise<void> | undefined;
  const base = `postgresql://${USER}@localhost/${DATABASE}?host=${encodeURIComponent(dir)}`;
  return {
    socketDir: dir,
    pid,
    url: base,
    async createSchema() {
      const name = `case_${++n}`;
      await adminClient.query(`CREATE SCHEMA ${name}`);
      return `${base}&options=${encodeURIComponent(`-c search_path=${name}`)}`;
    },
    async dropSchema(u) {
      const name = /search_path=(case_\d+)$/.exec(new URL(u).searchParams.get('options') ?? '')?.[1];
      if (name === undefined) throw new Error(`${u} is not a URL createSchema made`);
      await adminClient.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    },
    stop() {
      stopped ??= (async () => {
        await adminClient.end().catch(() => undefined);
        await stopServer(running);
        rmSync(dir, { recursive: true, force: true });
        guard.release();
      })();
      return stopped;
    },
  };
}

/** Resolves once the server says it accepts connections; rejects if it exits first. */
function ready(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer): void => {
      log += chunk.toString('utf8');
      if (log.includes('ready to accept connections')) {
        server.off('exit', onExit);
        // Keep draining the log so the server never blocks on a full pipe.
        log = '';
        resolve();
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      reject(new Error(`postgres exited before it was ready (${code ?? signal}): ${log.slice(-2000)}`));
    };
    server.stderr?.on('data', onData);
    server.once('exit', onExit);
    server.once('error', reject);
  });
}

/** SIGINT is PostgreSQL's fast shutdown: sessions are ended, the server exits. */
async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  server.kill('SIGINT');
  await exited;
}

interface Watchdog {
  /** The cluster is stopped and removed: the watchdog exits without doing anything. */
  release(): void;
}

/**
 * The watchdog of a cluster (see the top of this file): waits for its
 * stdin to close, and unless it read `released` first, stops the server in
 * `dataDir` at once and removes `dir`. It runs as the server's user, who
 * owns both.
 */
function startWatchdog(pgCtl: string, dataDir: string, dir: string, ids: { uid?: number; gid?: number }, env: NodeJS.ProcessEnv): Watchdog {
  const script = 'IFS= read -r said; [ "$said" = released ] && exit 0; "$1" stop -D "$2" -m immediate -w -t 60 >/dev/null 2>&1; rm -rf -- "$3"';
  const child = spawn('sh', ['-c', script, 'flint-pg-watchdog', pgCtl, dataDir, dir], {
    ...ids, env, detached: true, stdio: ['pipe', 'ignore', 'ignore'],
  });
  // A watchdog that could not start (no sh) only loses the clean-up after a kill; stop() still cleans up.
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  child.unref();
  // The pipe's write end is this process's alone (Node opens it close-on-exec): it closes when this process ends.
  if (child.stdin instanceof Socket) child.stdin.unref();
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      child.stdin?.end('released\n');
    },
  };
}
