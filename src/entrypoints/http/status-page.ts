/**
 * The live status page: a listener of its own (config `status:`), apart
 * from the webhook endpoint and the admin socket, for people with a browser.
 *
 *   GET /               the page (status-page-html.ts): one HTML file, its
 *                       CSS and script inline and named by hash in a strict
 *                       Content-Security-Policy; nothing else loads
 *   GET /api/status     the status snapshot (daemon/status.ts), JSON
 *   GET /api/events     server-sent events: a `status` event with the
 *                       snapshot at once and every `intervalMs` (2 s);
 *                       ended when the listener closes
 *   GET /api/vms/ID/log the tail (last 64 KiB) of a VM's console, text/plain
 *
 * Access: on a loopback address without a token anyone on this host may
 * read it (the host's other users see as much with `ps`), but only under a
 * loopback Host header, so a web page elsewhere cannot read it through a
 * DNS-rebound name. With `status.token` every request needs the token:
 * `Authorization: Bearer TOKEN`, or once `/?token=TOKEN`, which answers with
 * an HttpOnly SameSite=Strict cookie and a redirect that drops the token
 * from the address bar. Tokens are compared in constant time.
 *
 * No secret goes out: the snapshot carries only names, counts, timings and
 * addresses (daemon/status.ts), and the page renders every string as text.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackName, parseListenAddress } from '../../config/values.ts';
import { FlintError } from '../../core/errors/index.ts';
import { parseVmId } from '../../core/ids.ts';
import type { StatusSnapshot } from '../../daemon/status.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page-html.ts';

/** What the page shows; the composition root implements it on the running daemon (admin-source.ts). */
export interface StatusPageSource {
  status(): Promise<StatusSnapshot>;
  /** Path of a VM's console log file (it may not exist: unknown VM, or pruned). */
  consoleLogPath(id: string): string;
}

export interface StatusPageTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface StatusPageOptions {
  readonly source: StatusPageSource;
  /** When set, every request must carry it. */
  readonly token?: string;
  /** Whether the listener is on loopback (then, without a token, only loopback Host headers are served). */
  readonly loopback: boolean;
  /** How often the event stream sends a snapshot (default 2000 ms). */
  readonly intervalMs?: number;
  readonly timers?: StatusPageTimers;
  readonly logger: { warn(obj: object, msg: string): void };
}

/** Most console bytes one request returns: the end of the log. */
export const LOG_TAIL_BYTES = 64 * 1024;
const COOKIE = 'flint_status';

export interface StatusPageServer {
  readonly server: Server;
  /** Ends every event stream and stops its timer (the server itself is closed by the caller). */
  endStreams(): void;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant time whatever the lengths: both sides are hashed first. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

function cookieValue(token: string): string {
  // The cookie holds a value derived from the token, not the token itself.
  return createHmac('sha256', token).update('flint status page cookie').digest('base64url');
}

function cookieOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return v.join('=');
  }
  return undefined;
}

function hostName(header: string | undefined): string {
  const m = /^(?:\[(?<v6>[^\]]+)\]|(?<name>[^:]+))(?::\d+)?$/.exec(header ?? '')?.groups;
  return m?.v6 ?? m?.name ?? '';
}

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  send(res, status, 'text/plain; charset=utf-8', `${message}\n`);
}

/** The last `max` bytes of a file, cut at a line start when one is near; undefined when there is no file. */
export function readTail(path: string, max: number = LOG_TAIL_BYTES): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, max);
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, size - length);
    const tail = buf.subarray(0, n);
    if (size <= max) return tail;
    const nl = tail.indexOf(0x0a);
    return nl >= 0 && nl < 4096 ? tail.subarray(nl + 1) : tail;
  } finally {
    closeSync(fd);
  }
}

/** Console output as plain text: terminal escape sequences and control characters (but tab and newline) removed. */
export function plainConsole(raw: Buffer): string {
  return raw.toString('utf8')
    // eslint-disable-next-line no-control-regex -- the point is to match terminal control sequences
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g, '')
    // eslint-disable-next-line no-control-regex -- as above: other control characters
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}

/** The page's listener, not listening (the caller, or a test on port 0, decides where). */
export function buildStatusPageServer(opts: StatusPageOptions): StatusPageServer {
  const { source, token } = opts;
  const intervalMs = opts.intervalMs ?? 2000;
  const timers: StatusPageTimers = opts.timers ?? {
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  };
  const streams = new Set<ServerResponse>();
  let ticker: unknown;
  let ended = false;

  const push = async (targets: Iterable<ServerResponse>): Promise<void> => {
    const list = [...targets];
    if (list.length === 0) return;
    let frame: string;
    try {
      frame = `event: status\ndata: ${JSON.stringify(await source.status())}\n\n`;
    } catch (err) {
      opts.logger.warn({ err }, 'status page: no snapshot');
      frame = ': no snapshot this time\n\n';
    }
    for (const res of list) if (!res.writableEnded) res.write(frame);
  };
  const stopTicker = (): void => {
    if (ticker !== undefined) timers.clearInterval(ticker);
    ticker = undefined;
  };

  const allowed = (req: IncomingMessage, url: URL): 'ok' | 'set-cookie' | 'denied' | 'misdirected' => {
    if (token === undefined) return !opts.loopback || isLoopbackName(hostName(req.headers.host)) ? 'ok' : 'misdirected';
    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (auth !== undefined && sameSecret(auth, token)) return 'ok';
    const cookie = cookieOf(req);
    if (cookie !== undefined && sameSecret(cookie, cookieValue(token))) return 'ok';
    const query = url.searchParams.get('token');
    if (query !== null && url.pathname === '/' && sameSecret(query, token)) return 'set-cookie';
    return 'denied';
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://flint');
    const access = allowed(req, url);
    if (access === 'misdirected') return sendError(res, 421, 'open the status page by its loopback address (127.0.0.1 or localhost), e.g. through ssh -L');
    if (access === 'denied') return send(res, 401, 'text/plain; charset=utf-8', 'the status page needs its token: open /?token=TOKEN once, or send Authorization: Bearer TOKEN\n', { 'www-authenticate': 'Bearer realm="flint status"' });
    if (access === 'set-cookie' && token !== undefined) {
      res.writeHead(303, {
        ...BASE_HEADERS, location: '/', 'content-length': 0,
        'set-cookie': `${COOKIE}=${cookieValue(token)}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'the status page only reads: GET');
    const logMatch = /^\/api\/vms\/([^/]+)\/log$/.exec(url.pathname);
    if (url.pathname === '/' || url.pathname === '/status') {
      send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML, { 'content-security-policy': STATUS_PAGE_CSP });
    } else if (url.pathname === '/api/status') {
      send(res, 200, 'application/json', `${JSON.stringify(await source.status())}\n`);
    } else if (url.pathname === '/api/events') {
      if (ended) return sendError(res, 503, 'Flint is stopping');
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      // A reconnecting browser waits this long (ms) before it asks again.
      res.write(`retry: ${intervalMs}\n\n`);
      streams.add(res);
      res.once('close', () => {
        streams.delete(res);
        if (streams.size === 0) stopTicker();
      });
      ticker ??= timers.setInterval(() => { void push(streams); }, intervalMs);
      await push([res]);
    } else if (logMatch !== null) {
      const id = decodeURIComponent(logMatch[1] ?? '');
      if (parseVmId(id) === undefined) return sendError(res, 404, `"${id}" is not a VM id`);
      const tail = readTail(source.consoleLogPath(id));
      if (tail === undefined) return sendError(res, 404, `no console log of VM ${id} (unknown, not started yet, or pruned)`);
      send(res, 200, 'text/plain; charset=utf-8', plainConsole(tail));
    } else {
      sendError(res, 404, 'no such page: the status page is /, its data /api/status, /api/events and /api/vms/ID/log');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.warn({ err }, 'status page: request failed');
      if (res.headersSent) res.destroy();
      else sendError(res, 500, 'the status page failed; see Flint\'s log');
    });
  });
  return {
    server,
    endStreams() {
      ended = true;
      stopTicker();
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}

export interface RunningStatusPage {
  /** e.g. http://127.0.0.1:9090 */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on `address` ("host:port"; port 0 picks one); refused with FLINT_ERR_LISTEN_FAILED. */
export async function startStatusPage(address: string, opts: Omit<StatusPageOptions, 'loopback'>): Promise<RunningStatusPage> {
  const parsed = parseListenAddress(address);
  if (!parsed.ok) throw new FlintError('FLINT_ERR_LISTEN_FAILED', `status.address: ${parsed.message}`);
  const host = parsed.value.host.replace(/^\[|\]$/g, '');
  const page = buildStatusPageServer({ ...opts, loopback: isLoopbackName(host) });
  const { server } = page;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      reject(new FlintError('FLINT_ERR_LISTEN_FAILED', `the status page cannot listen on ${address}: ${err.message}`, { cause: err }));
    });
    if (host === '') server.listen(parsed.value.port, resolve);
    else server.listen(parsed.value.port, host, resolve);
  });
  const bound = server.address() as AddressInfo; // listening on TCP: an AddressInfo
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${bound.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        page.endStreams();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
