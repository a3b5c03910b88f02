/**
 * Flint's HTTP surface: `POST /webhook` (and any path under `/webhook/`,
 * as the reference system accepted), `GET /healthz` (the process answers
 * and its database is open), `GET /readyz` (readiness.ts: every check that
 * Flint can do its work) and `GET /metrics` (metrics.ts: Prometheus text).
 *
 * `buildServer` returns a `node:http` server that is NOT listening; the
 * caller (the composition root through listen.ts, or a test on port 0)
 * decides where. The webhook route checks the cheap things first — method,
 * GitHub headers, content type, declared size — so a bad delivery is
 * refused before its body is read, and reads at most `maxBodyBytes` of
 * any body.
 *
 * Status codes (docs/webhooks.md):
 *   202 recorded (accepted / repeat / stale / ignored), event not handled,
 *       or signed but unparsable (kept for replay)
 *   200 ping, duplicate delivery (parsed or unparsable)
 *   400 missing or malformed GitHub headers
 *   401 bad or missing signature      413 body too large
 *   415 neither JSON nor form-encoded 503 the store could not commit
 */
import { createServer } from 'node:http';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { ErrorCode } from '../../core/errors/index.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { Intake, IntakeLogger, IntakeResult } from '../../daemon/intake/intake.ts';
import { readDeliveryHeaders } from '../../daemon/intake/parse-delivery.ts';
import type { DeliveryObserver, DeliveryResult } from '../../daemon/ports/observer.ts';
import type { Readiness } from './readiness.ts';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface ServerDeps {
  readonly intake: Intake;
  readonly logger: IntakeLogger;
  /** Largest webhook body accepted (bytes). Default 1 MiB; workflow_job deliveries are a few KB. */
  readonly maxBodyBytes?: number;
  /** What `GET /healthz` reports; default always healthy. */
  readonly health?: () => { readonly ok: boolean; readonly [k: string]: unknown };
  /** What `GET /readyz` reports (readiness.ts); without it `/readyz` answers as `/healthz`. */
  readonly ready?: () => Readiness;
  /** The Prometheus exposition of `GET /metrics`; without it `/metrics` is 404. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /** Told what became of every delivery (the deliveries-by-result counter). */
  readonly observer?: DeliveryObserver;
}

/** Why a delivery was refused, as the deliveries-by-result counter names it. */
const RESULT_OF: Partial<Record<ErrorCode, DeliveryResult>> = {
  FLINT_ERR_WEBHOOK_MISSING_HEADER: 'bad-request',
  FLINT_ERR_WEBHOOK_MALFORMED_JSON: 'bad-request',
  FLINT_ERR_WEBHOOK_INVALID_PAYLOAD: 'bad-request',
  FLINT_ERR_WEBHOOK_BAD_SIGNATURE: 'bad-signature',
  FLINT_ERR_WEBHOOK_BODY_TOO_LARGE: 'too-large',
  FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE: 'unsupported-media-type',
  FLINT_ERR_STORE_WRITE_FAILED: 'store-failed',
};

function resultOf(result: IntakeResult): DeliveryResult {
  switch (result.kind) {
    case 'rejected':
    case 'store-failed':
      return RESULT_OF[result.error.code] ?? 'error';
    case 'pong':
      return 'pong';
    case 'not-handled':
      return 'not-handled';
    case 'recorded':
      return result.outcome;
    case 'kept-unparsable':
      return result.outcome === 'duplicate' ? 'duplicate' : 'unparsable';
  }
}

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  FLINT_ERR_WEBHOOK_MISSING_HEADER: 400,
  FLINT_ERR_WEBHOOK_MALFORMED_JSON: 400,
  FLINT_ERR_WEBHOOK_INVALID_PAYLOAD: 400,
  FLINT_ERR_WEBHOOK_BAD_SIGNATURE: 401,
  FLINT_ERR_WEBHOOK_BODY_TOO_LARGE: 413,
  FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE: 415,
  FLINT_ERR_STORE_WRITE_FAILED: 503,
};

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: FlintError, close = false): void {
  send(res, STATUS_OF[err.code] ?? 500, { error: { code: err.code, message: err.message } }, close ? { connection: 'close' } : {});
}

type BodyRead = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly why: 'too-large' | 'aborted' };

/**
 * Reads the body, but stops as soon as it exceeds `limit` (too-large), and
 * settles also when the sender goes away half-way (aborted), so no request
 * is left waiting forever.
 */
function readBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        resolve({ ok: false, why: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    // chunks[0] exists when length === 1.
    req.once('end', () => resolve({ ok: true, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) }));
    // A promise settles once: after 'end' these are no-ops.
    req.once('error', () => resolve({ ok: false, why: 'aborted' }));
    req.once('close', () => { if (!req.complete) resolve({ ok: false, why: 'aborted' }); });
  });
}

function replyTo(res: ServerResponse, result: IntakeResult): void {
  switch (result.kind) {
    case 'rejected':
      return sendError(res, result.error);
    case 'store-failed':
      return sendError(res, result.error);
    case 'pong':
      return send(res, 200, { outcome: 'pong', delivery: result.deliveryId, zen: result.zen ?? null });
    case 'not-handled':
      return send(res, 202, { outcome: 'not-handled', delivery: result.deliveryId, event: result.event, action: result.action ?? null });
    case 'recorded':
      return send(res, result.outcome === 'duplicate' ? 200 : 202, { outcome: result.outcome, delivery: result.deliveryId, job: result.jobId });
    case 'kept-unparsable':
      // 2xx: the delivery is durably Flint's now, and a failure status would
      // only make GitHub (and the redelivery loop) send the same bytes again.
      return send(res, result.outcome === 'duplicate' ? 200 : 202, {
        outcome: result.outcome === 'duplicate' ? 'duplicate' : 'unparsable', delivery: result.deliveryId,
        error: { code: result.error.code, message: result.error.message },
      });
  }
}

/** Applies the connection limits every Flint listener has (HTTP or HTTPS). */
export function limitSlowSenders(server: Server | HttpsServer): void {
  // Slow or stalled senders must not hold connections forever (GitHub sends
  // a delivery in one go and gives up after 10 s itself).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
}

export function buildServer(deps: ServerDeps): Server {
  const server = createServer(buildRequestHandler(deps));
  limitSlowSenders(server);
  return server;
}

/** The request handler behind buildServer, for listeners that make their own server (HTTPS: listen.ts). */
export function buildRequestHandler(deps: ServerDeps): RequestListener {
  const { intake, logger } = deps;
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const health = deps.health ?? (() => ({ ok: true }));
  const observer = deps.observer;
  const refused = (res: ServerResponse, err: FlintError, close = false): void => {
    observer?.delivery(RESULT_OF[err.code] ?? 'error');
    sendError(res, err, close);
  };

  const webhook = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return send(res, 405, { error: { message: 'use POST' } }, { allow: 'POST', connection: 'close' });
    let headers;
    try {
      headers = readDeliveryHeaders(req.headers);
    } catch (err) {
      // Refused before the body is read: close rather than drain an
      // arbitrary body from a sender that is not GitHub.
      if (err instanceof FlintError) return refused(res, err, true);
      throw err;
    }
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    // Built only when needed: an Error captures a stack trace, which costs on the hot path.
    const tooLarge = (): FlintError => new FlintError('FLINT_ERR_WEBHOOK_BODY_TOO_LARGE', `the body is larger than ${maxBodyBytes} bytes`);
    if (declared > maxBodyBytes) return refused(res, tooLarge(), true);
    const read = await readBody(req, maxBodyBytes);
    if (!read.ok && read.why === 'aborted') {
      // The sender is gone; there is no one to answer and nothing was stored.
      logger.debug({ delivery: headers.deliveryId }, 'webhook sender went away before the body was complete');
      res.destroy();
      return;
    }
    if (!read.ok) return refused(res, tooLarge(), true);
    const result = await intake.receive(headers, read.body);
    observer?.delivery(resultOf(result));
    replyTo(res, result);
  };

  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    let handled: Promise<void> | void;
    if (path === '/webhook' || path.startsWith('/webhook/')) {
      handled = webhook(req, res);
    } else if (path === '/healthz') {
      const h = health();
      handled = send(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unhealthy', ...h });
    } else if (path === '/readyz') {
      const r = deps.ready?.() ?? { ok: health().ok, checks: { health: health() } };
      handled = send(res, r.ok ? 200 : 503, { status: r.ok ? 'ready' : 'not ready', ...r });
    } else if (path === '/metrics' && deps.metrics !== undefined) {
      const metrics = deps.metrics;
      handled = metrics().then(({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    } else {
      handled = send(res, 404, { error: { message: 'not found; webhooks go to POST /webhook' } });
    }
    Promise.resolve(handled).catch((err: unknown) => {
      logger.error({ err, path }, 'HTTP handler failed');
      if (!res.headersSent) sendError(res, new FlintError('FLINT_ERR_INTERNAL', 'internal error'), true);
      else res.destroy();
    });
  };
}
