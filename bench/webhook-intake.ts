/**
 * `npm run bench -- webhook-intake [--duration S] [--rounds N] [--connections N] [--synchronous FULL|NORMAL] [--store thread|main]`
 *
 * Drives the real intake (buildServer + intake + SQLite store in a temp
 * directory) and, for a baseline, a bare node:http server that only
 * answers 200, with signed workflow_job deliveries (~7 KB, unique delivery
 * ids) over keep-alive connections for a fixed time, alternating between
 * the two. The load generator is a child process (bench/_load.ts).
 *
 * At the end it checks that the database holds exactly as many deliveries
 * as were acknowledged with 2xx, and prints as its last line:
 *   {"bench":"webhook-intake","deliveries_per_s":…,"p50_ms":…,"p99_ms":…,"baseline_ratio":…}
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/adapters/store/db.ts';
import type { Synchronous } from '../src/adapters/store/db.ts';
import { createSqliteIntakeStore } from '../src/adapters/store/intake-store.ts';
import { startThreadedIntakeStore } from '../src/adapters/store/intake-store-worker.ts';
import type { ThreadedIntakeStore } from '../src/adapters/store/intake-store-worker.ts';
import { createIntake } from '../src/daemon/intake/intake.ts';
import { buildServer } from '../src/entrypoints/http/server.ts';
import type { LoadPhase, LoadResult } from './_load.ts';

const SECRET = 'bench-webhook-secret';
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A TCP listener's address() is an AddressInfo.
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

function runLoad(child: ChildProcess, phase: Omit<LoadPhase, 'type'>): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`load generator exited with ${code}`));
    child.once('exit', onExit);
    child.once('message', (m: LoadResult) => {
      child.off('exit', onExit);
      resolve(m);
    });
    child.send({ type: 'run', ...phase } satisfies LoadPhase);
  });
}

const fmt = (n: number, d = 1): string => n.toFixed(d);

export default async function bench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '2' },
      connections: { type: 'string', default: '16' },
      synchronous: { type: 'string', default: 'FULL' },
      store: { type: 'string', default: 'main' },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const synchronous = values.synchronous.toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('--synchronous must be FULL or NORMAL');

  if (values.store !== 'thread' && values.store !== 'main') throw new Error('--store must be thread or main');
  const onThread = values.store === 'thread';

  const dir = mkdtempSync(join(tmpdir(), 'flint-bench-intake-'));
  // The store commits on the event loop's thread (as `flint serve` does)
  // or, to compare, on its own thread.
  const db = onThread ? undefined : openDatabase(dir, { synchronous: synchronous satisfies Synchronous });
  const store = db === undefined ? await startThreadedIntakeStore(dir, { synchronous }) : createSqliteIntakeStore(db);
  const intake = createIntake({
    store, secrets: [SECRET], clock: Date.now, logger: silent,
    runners: [{ name: 'default', labels: ['self-hosted', 'linux', 'x64'] }],
  });
  const intakeServer = buildServer({ intake, logger: silent });
  const bareServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    });
  });
  const intakeUrl = await listen(intakeServer);
  const bareUrl = await listen(bareServer);
  const child = fork(fileURLToPath(new URL('./_load.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

  let nextJobId = 1_000_000;
  let acknowledged = 0;
  const run = async (origin: string, ms: number): Promise<LoadResult> => {
    const r = await runLoad(child, { origin, secret: SECRET, connections, durationMs: ms, firstJobId: nextJobId, unservedEvery: 10 });
    nextJobId = r.nextJobId;
    if (origin === intakeUrl) acknowledged += r.ok;
    return r;
  };
  const line = (what: string, r: LoadResult): void => {
    console.log(`${what.padEnd(8)} ${fmt(r.ok / (r.elapsedMs / 1000), 0).padStart(6)}/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  max ${fmt(r.maxMs, 1)} ms  ok ${r.ok} failed ${r.failed} ${JSON.stringify(r.statuses)}`);
  };

  try {
    console.log(`webhook-intake: ${connections} keep-alive connections, ${rounds} × (${durationMs / 1000} s bare + ${durationMs / 1000} s intake), SQLite WAL synchronous=${synchronous}, store on ${onThread ? 'its own thread' : 'the event-loop thread'}, state in ${dir}`);
    // Warm-up (JIT, page cache, SQLite file growth); not counted in the figures.
    await run(bareUrl, 1000);
    line('warm-up', await run(intakeUrl, 1000));
    const intakeResults: LoadResult[] = [];
    const bareResults: LoadResult[] = [];
    for (let i = 0; i < rounds; i++) {
      const b = await run(bareUrl, durationMs);
      line('bare', b);
      bareResults.push(b);
      const r = await run(intakeUrl, durationMs);
      line('intake', r);
      intakeResults.push(r);
    }
    await intake.flush();
    const stored = await store.countDeliveries();
    const rate = (rs: LoadResult[]): number => rs.reduce((a, r) => a + r.ok, 0) / (rs.reduce((a, r) => a + r.elapsedMs, 0) / 1000);
    const failed = intakeResults.reduce((a, r) => a + r.failed, 0);
    const intakeRate = rate(intakeResults);
    const bareRate = rate(bareResults);
    // Medians of per-round percentiles: the rounds are equal in length.
    const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const p50 = mid(intakeResults.map((r) => r.p50Ms));
    const p99 = Math.max(...intakeResults.map((r) => r.p99Ms));
    console.log(`body size ${fmt(intakeResults[0]?.meanBodyBytes ?? 0, 0)} B; stored ${stored} deliveries, acknowledged ${acknowledged}, failed ${failed}`);
    if (stored !== acknowledged) throw new Error(`the database holds ${stored} deliveries but ${acknowledged} were acknowledged`);
    if (failed > 0) throw new Error(`${failed} deliveries were not acknowledged`);
    console.log(JSON.stringify({
      bench: 'webhook-intake',
      deliveries_per_s: Math.round(intakeRate),
      p50_ms: Number(fmt(p50, 2)),
      p99_ms: Number(fmt(p99, 2)),
      baseline_ratio: Number((intakeRate / bareRate).toFixed(3)),
    }));
  } finally {
    child.send({ type: 'exit' });
    await Promise.all([close(intakeServer), close(bareServer)]);
    if (db === undefined) await (store as ThreadedIntakeStore).close(); // db undefined ⇔ the threaded store
    else db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
