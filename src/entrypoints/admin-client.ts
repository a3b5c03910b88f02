/**
 * The operator commands' side of the admin socket (entrypoints/http/admin.ts):
 * one request, or one streamed response, over the unix socket. Failures
 * become catalogue errors that say what to do: no daemon on the socket,
 * no permission on it, or a request the daemon refused.
 */
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { DEFAULTS } from '../config/defaults.ts';
import { FlintError } from '../core/errors/index.ts';

export const DEFAULT_ADMIN_SOCKET = join(DEFAULTS.runDir, 'admin.sock');

/** `--socket`, else $FLINT_ADMIN_SOCKET, else the default path. */
export function adminSocket(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return flag ?? (env.FLINT_ADMIN_SOCKET !== undefined && env.FLINT_ADMIN_SOCKET !== '' ? env.FLINT_ADMIN_SOCKET : DEFAULT_ADMIN_SOCKET);
}

function connectError(socket: string, err: NodeJS.ErrnoException): FlintError {
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new FlintError('FLINT_ERR_ADMIN_DENIED', `permission denied on the admin socket ${socket}`, { cause: err });
  }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') {
    return new FlintError('FLINT_ERR_ADMIN_UNREACHABLE', `Flint is not running: nothing answers on ${socket} (${err.code})`, { cause: err });
  }
  return new FlintError('FLINT_ERR_ADMIN_UNREACHABLE', `cannot reach Flint on ${socket}: ${err.message}`, { cause: err });
}

function open(socket: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({
      // No keep-alive pool: a command makes one request, and an idle pooled socket would hold its exit.
      socketPath: socket, method, path, agent: false,
      headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    }, resolve);
    req.once('error', (err: NodeJS.ErrnoException) => reject(connectError(socket, err)));
    req.end(text);
  });
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer); // an IncomingMessage yields Buffers
  return Buffer.concat(chunks).toString('utf8');
}

async function refused(res: IncomingMessage): Promise<FlintError> {
  const text = await readAll(res);
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not JSON: the text as it is
  }
  return new FlintError('FLINT_ERR_ADMIN_REQUEST', `${res.statusCode ?? 0}: ${message}`);
}

/** One request; the parsed JSON answer. */
export async function adminCall(socket: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const res = await open(socket, method, path, body);
  if ((res.statusCode ?? 500) >= 400) throw await refused(res);
  return JSON.parse(await readAll(res)) as unknown;
}

/** A streamed answer, chunk by chunk to `sink`, until the daemon ends it (or `signal` aborts). */
export async function adminStream(socket: string, path: string, sink: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  const res = await open(socket, 'GET', path);
  if ((res.statusCode ?? 500) >= 400) throw await refused(res);
  const abort = (): void => { res.destroy(); };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    for await (const c of res) sink(c as Buffer); // an IncomingMessage yields Buffers
  } catch (err) {
    if (signal?.aborted !== true) throw err;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}
