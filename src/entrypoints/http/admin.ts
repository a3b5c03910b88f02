/**
 * The admin socket: HTTP with JSON over a unix socket that only root (and
 * the group named by `admin.group`) may use, for `flint status`, `flint
 * vms`, `flint hosts`, `flint jobs`, `flint logs`, `flint drain` and `flint resume` — and
 * anyone with `curl --unix-socket`. Only local, privileged users reach it,
 * so it needs no authentication of its own: the file mode is the access
 * control (the host's other users are untrusted).
 *
 *   GET  /status                 the status snapshot (daemon/status.ts)
 *   GET  /vms                    live VMs
 *   GET  /hosts                  the fleet's hosts (null on a SQLite store)
 *   GET  /jobs?since=EPOCH_MS    recent jobs, newest first
 *   GET  /vms/ID/log?follow=1    a VM's console log; with follow, streamed
 *                                until the VM ends or the client goes
 *   POST /drain  {"definition"?}  no new runners (one definition, or the host)
 *   POST /resume {"definition"?}  undo a drain
 *
 * Requests are parsed here into typed calls on an AdminSource; unknown
 * paths, methods, parameters and body fields are refused with a 4xx and a
 * catalogue code.
 */
import { readFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import type { ErrorCode } from '../../core/errors/index.ts';
import { parseVmId } from '../../core/ids.ts';
import type { PausedView } from '../../daemon/scheduler.ts';
import type { FleetView, JobStatusView, StatusSnapshot, VmStatus } from '../../daemon/status.ts';

/** What the admin socket serves; the composition root implements it on the running daemon. */
export interface AdminSource {
  status(): Promise<StatusSnapshot>;
  vms(): Promise<readonly VmStatus[]>;
  /** The fleet's hosts; null when the store is SQLite (this host is the whole fleet). */
  hosts(): Promise<FleetView | null>;
  jobs(since: number | undefined): Promise<readonly JobStatusView[]>;
  /** A VM's console log file, and while the VM lives its output as it comes. */
  consoleLog(id: string): { readonly path: string; readonly live: LiveConsole | undefined };
  /** undefined: no such definition. */
  drain(definition: string | undefined): PausedView | undefined;
  resume(definition: string | undefined): PausedView | undefined;
}

export interface LiveConsole {
  onConsole(listener: (chunk: Buffer) => void): () => void;
  readonly ended: Promise<unknown>;
}

export interface AdminServerOptions {
  readonly path: string;
  /** Group allowed besides root (gid): the socket is 0660 root:group; without one 0600 root:root. */
  readonly gid?: number;
  /** The daemon behind the socket; undefined while it is still starting (answered 503). */
  readonly source: () => AdminSource | undefined;
  readonly logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface AdminServer {
  readonly path: string;
  /** Stops listening, ends every follow, removes the socket file. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4096;

/** The group's gid: a number is taken as it is; a name is looked up in the group file's text. */
export function resolveGroup(group: string | number, groupFile: string): number | undefined {
  if (typeof group === 'number') return group;
  for (const line of groupFile.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** True when something accepts connections on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * Makes the socket's place: refuses a path held by a live daemon, removes a
 * stale socket a dead one left, and never removes anything that is not a
 * socket.
 */
async function claimPath(path: string, logger: AdminServerOptions['logger']): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const st = await lstat(path).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return;
  if (!st.isSocket()) {
    throw new FlintError('FLINT_ERR_ADMIN_SOCKET_FAILED', `${path} exists and is not a socket; Flint leaves it alone`, {
      hint: 'Remove or move that file, or set admin.socket to another path.',
    });
  }
  if (await answers(path)) throw new FlintError('FLINT_ERR_ADMIN_SOCKET_IN_USE', `another Flint answers on ${path}`);
  await unlink(path);
  logger.info({ path }, 'removed a stale admin socket left by a Flint that is gone');
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The socket file is made by bind() inside listen(), synchronously: with
    // this umask it is born 0600, so nobody but root can connect in the
    // moment before its final mode and group are set below.
    const old = process.umask(0o177);
    try {
      server.listen(path, () => { server.off('error', reject); resolve(); });
    } finally {
      process.umask(old);
    }
  });
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { path, logger } = opts;
  const follows = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    void handle(opts.source, req, res, follows).catch((err: unknown) => fail(res, err));
  });
  try {
    await claimPath(path, logger);
    await listen(server, path);
    await chown(path, process.getuid?.() ?? 0, opts.gid ?? process.getgid?.() ?? 0);
    await chmod(path, opts.gid === undefined ? 0o600 : 0o660);
  } catch (err) {
    server.close();
    if (isFlintError(err)) throw err;
    throw new FlintError('FLINT_ERR_ADMIN_SOCKET_FAILED', `cannot create the admin socket ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  logger.info({ path, mode: opts.gid === undefined ? '0600' : '0660', gid: opts.gid }, 'admin socket listening');
  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const res of follows) res.end();
        server.closeAllConnections();
        await closed;
        await unlink(path).catch(() => undefined);
      })();
      return closing;
    },
  };
}

class AdminRequestError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  constructor(status: number, message: string, code: ErrorCode = 'FLINT_ERR_ADMIN_REQUEST') {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof AdminRequestError) sendJson(res, err.status, { error: { code: err.code, message: err.message } });
  else sendJson(res, 500, { error: { code: isFlintError(err) ? err.code : 'FLINT_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } });
}

function onlyParams(url: URL, allowed: readonly string[]): void {
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key)) throw new AdminRequestError(400, `unknown parameter "${key}"${allowed.length > 0 ? ` (known: ${allowed.join(', ')})` : ''}`);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer; // an IncomingMessage yields Buffers
    size += b.length;
    if (size > MAX_BODY_BYTES) throw new AdminRequestError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{}` or `{"definition": "name"}`; anything else is refused. */
export function parseTarget(text: string): string | undefined {
  if (text.trim() === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AdminRequestError(400, 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminRequestError(400, 'the body must be a JSON object');
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (key !== 'definition') throw new AdminRequestError(400, `unknown field "${key}" (known: definition)`);
  const def = fields.definition;
  if (def === undefined) return undefined;
  if (typeof def !== 'string' || def === '') throw new AdminRequestError(400, 'definition must be a non-empty string');
  return def;
}

async function handle(sourceOf: () => AdminSource | undefined, req: IncomingMessage, res: ServerResponse, follows: Set<ServerResponse>): Promise<void> {
  const source = sourceOf();
  if (source === undefined) throw new AdminRequestError(503, 'Flint is still starting; try again in a moment');
  const url = new URL(req.url ?? '/', 'http://flint');
  const method = req.method ?? 'GET';
  const route = url.pathname;
  const logMatch = /^\/vms\/([^/]+)\/log$/.exec(route);
  const want = (m: string): void => {
    if (method !== m) throw new AdminRequestError(405, `${route} takes ${m}`);
  };
  if (route === '/status') {
    want('GET');
    onlyParams(url, []);
    sendJson(res, 200, await source.status());
  } else if (route === '/vms') {
    want('GET');
    onlyParams(url, []);
    sendJson(res, 200, await source.vms());
  } else if (route === '/hosts') {
    want('GET');
    onlyParams(url, []);
    sendJson(res, 200, await source.hosts());
  } else if (route === '/jobs') {
    want('GET');
    onlyParams(url, ['since']);
    const raw = url.searchParams.get('since');
    if (raw !== null && !/^\d+$/.test(raw)) throw new AdminRequestError(400, 'since must be epoch milliseconds');
    sendJson(res, 200, await source.jobs(raw === null ? undefined : Number(raw)));
  } else if (logMatch !== null) {
    want('GET');
    onlyParams(url, ['follow']);
    const id = decodeURIComponent(logMatch[1] ?? '');
    if (parseVmId(id) === undefined) throw new AdminRequestError(404, `"${id}" is not a VM id`);
    sendLog(source, id, url.searchParams.get('follow') === '1', res, follows);
  } else if (route === '/drain' || route === '/resume') {
    want('POST');
    onlyParams(url, []);
    const definition = parseTarget(await readBody(req));
    const paused = route === '/drain' ? source.drain(definition) : source.resume(definition);
    if (paused === undefined) throw new AdminRequestError(404, `no runner definition is named "${definition ?? ''}"`);
    sendJson(res, 200, { paused });
  } else {
    throw new AdminRequestError(404, `no such endpoint: ${route} (see docs/operations.md, "Operating a running Flint")`);
  }
}

/**
 * The supervisor writes each console chunk to the log file and hands it to
 * its listeners in one synchronous step; so a synchronous read of the file
 * followed at once by subscribing misses no chunk and repeats none. (A log
 * past half its cap keeps its tail in memory until the VM ends: a follow
 * begun then starts from the file's head and goes on with live output.)
 */
function sendLog(source: AdminSource, id: string, follow: boolean, res: ServerResponse, follows: Set<ServerResponse>): void {
  const { path, live } = source.consoleLog(id);
  let head: Buffer | undefined;
  try {
    head = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (head === undefined && live === undefined) throw new AdminRequestError(404, `no console log of VM ${id} (unknown, or pruned after the retention)`);
  const text = head ?? Buffer.alloc(0);
  if (!follow || live === undefined) {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': text.length });
    res.end(text);
    return;
  }
  const stop = live.onConsole((chunk) => { res.write(chunk); });
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.write(text);
  follows.add(res);
  const end = (): void => {
    stop();
    follows.delete(res);
    if (!res.writableEnded) res.end();
  };
  res.once('close', end);
  void live.ended.then(end);
}
