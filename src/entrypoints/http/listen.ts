/**
 * Where and how Flint's webhook endpoint listens, from the configuration
 * (the plan: config/listen-plan.ts):
 *
 *   tls: set            HTTPS on `address` with the operator's certificate;
 *                       the files are re-read when they change (tls-files loop)
 *   address port 443    HTTPS with a certificate from ACME for `address`'s
 *                       host, on all interfaces; port 80 answers HTTP-01
 *                       challenges and redirects everything else to https
 *                       (certificate-renewal loop, src/adapters/acme/renewal.ts)
 *   any other port      plain HTTP (behind a TLS-terminating proxy)
 *
 * A renewed certificate goes into service with setSecureContext: new
 * connections get it, open ones finish on the old one, nothing restarts.
 *
 * Loops started here:
 *   certificate-renewal  at start, then every 5 min (ACME mode)
 *   tls-files            every minute: re-read tls.certFile/keyFile when changed
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ListenPlan } from '../../config/listen-plan.ts';
import { FlintError } from '../../core/errors/index.ts';
import { startLoop } from '../../daemon/loop.ts';
import type { Loop, LoopTimers } from '../../daemon/loop.ts';
import { createCertificateFiles } from '../../adapters/acme/certificate-files.ts';
import { CHALLENGE_PREFIX, createChallenges } from '../../adapters/acme/challenges.ts';
import type { Challenges } from '../../adapters/acme/challenges.ts';
import { createAcmeIssuer } from '../../adapters/acme/issuer.ts';
import type { Issuer } from '../../adapters/acme/issuer.ts';
import { createRenewal, inspectCertificate, startRenewalLoop } from '../../adapters/acme/renewal.ts';
import type { CertificateInUse, Renewal, RenewalLogger } from '../../adapters/acme/renewal.ts';
import { limitSlowSenders } from './server.ts';

const TLS_FILES_INTERVAL_MS = 60_000;
const DRAIN_TIMEOUT_MS = 10_000;

export interface ListenLogger extends RenewalLogger {
  error(obj: object, msg: string): void;
}

export interface ListenOptions {
  readonly plan: ListenPlan;
  readonly handler: RequestListener;
  /** ACME account key and certificates live under `<stateDir>/acme`. */
  readonly stateDir: string;
  readonly logger: ListenLogger;
  readonly now: () => number;
  readonly timers?: LoopTimers;
  /** The ACME client; default acme-client against plan.directoryUrl. */
  readonly issuer?: Issuer;
  /** Replaces plan's ports (tests on a shared host); the plan keeps the meaning. */
  readonly ports?: { readonly main?: number; readonly challenge?: number };
}

export interface Listening {
  /** The main listener's base URL, e.g. http://127.0.0.1:8080 or https://flint.example.com:443. */
  readonly url: string;
  /** Every listener's bound address (main first). */
  readonly bound: readonly AddressInfo[];
  /** The certificate in service (HTTPS modes). */
  certificate(): CertificateInUse | undefined;
  /** The ACME renewal, in ACME mode. */
  readonly renewal: Renewal | undefined;
  readonly loops: readonly Loop[];
  /** Stop the loops, stop accepting, let requests in flight finish (10 s at most). */
  close(): Promise<void>;
}

function listenOn(server: Server | HttpsServer, host: string, port: number, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new FlintError('FLINT_ERR_LISTEN_FAILED', `cannot listen on ${what}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      // A TCP listener's address() is an AddressInfo.
      resolve(server.address() as AddressInfo);
    };
    if (host === '') server.listen(port, done);
    else server.listen(port, host, done);
  });
}

function closeGracefully(server: Server | HttpsServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    // Requests still in flight get DRAIN_TIMEOUT_MS to be answered.
    const timer = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
    server.close(() => { clearTimeout(timer); resolve(); });
    server.closeIdleConnections();
  });
}

function urlOf(scheme: 'http' | 'https', a: AddressInfo): string {
  return `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/**
 * Port 80 in ACME mode: the CA's HTTP-01 requests get their key
 * authorization; everything else is redirected to the same path on https
 * (always to the configured host, never to the Host header's).
 */
export function challengeHandler(challenges: Challenges, domain: string): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path.startsWith(CHALLENGE_PREFIX)) {
      const answer = req.method === 'GET' || req.method === 'HEAD' ? challenges.answer(path) : undefined;
      if (answer === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such challenge\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(answer) }).end(answer);
      return;
    }
    const target = `https://${domain}${(req.url ?? '/').startsWith('/') ? req.url ?? '/' : '/'}`;
    res.writeHead(301, { location: target, 'content-type': 'text/plain', connection: 'close' }).end(`moved to ${target}\n`);
  };
}

function readTlsFiles(certFile: string, keyFile: string): CertificateInUse {
  let pair;
  try {
    pair = { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
  } catch (err) {
    throw new FlintError('FLINT_ERR_TLS_FILES', `cannot read ${certFile} or ${keyFile}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const cert = inspectCertificate(pair);
  if (cert === undefined) throw new FlintError('FLINT_ERR_TLS_FILES', `${certFile} is not a PEM certificate, or ${keyFile} is not its private key`);
  return cert;
}

export async function startListening(opts: ListenOptions): Promise<Listening> {
  const { plan, handler, logger } = opts;
  const servers: (Server | HttpsServer)[] = [];
  const loops: Loop[] = [];
  let current: CertificateInUse | undefined;
  let renewal: Renewal | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.all(loops.map((l) => l.stop()));
    await Promise.all(servers.map(closeGracefully));
  };
  try {
    if (plan.kind === 'http') {
      const server = createServer(handler);
      limitSlowSenders(server);
      servers.push(server);
      const bound = await listenOn(server, plan.host, opts.ports?.main ?? plan.port, `${plan.host}:${plan.port}`);
      return { url: urlOf('http', bound), bound: [bound], certificate: () => undefined, renewal, loops, close: stopAll };
    }

    if (plan.kind === 'tls-files') {
      current = readTlsFiles(plan.certFile, plan.keyFile);
      const server = createHttpsServer({ cert: current.certPem, key: current.keyPem }, handler);
      limitSlowSenders(server);
      servers.push(server);
      const stamp = (): string => `${statSync(plan.certFile).mtimeMs}:${statSync(plan.keyFile).mtimeMs}`;
      let seen = stamp();
      loops.push(startLoop({
        name: 'tls-files', intervalMs: TLS_FILES_INTERVAL_MS, runAtStart: false, logger, now: opts.now,
        ...(opts.timers === undefined ? {} : { timers: opts.timers }),
        run: async () => {
          const now = stamp();
          if (now === seen) return;
          const next = readTlsFiles(plan.certFile, plan.keyFile);
          server.setSecureContext({ cert: next.certPem, key: next.keyPem });
          seen = now;
          current = next;
          logger.info({ certFile: plan.certFile, notAfter: new Date(next.notAfter).toISOString() }, 'tls-files: new certificate in service');
        },
      }));
      const bound = await listenOn(server, plan.host, opts.ports?.main ?? plan.port, `${plan.host}:${plan.port}`);
      return { url: urlOf('https', bound), bound: [bound], certificate: () => current, renewal, loops, close: stopAll };
    }

    // ACME.
    const challenges = createChallenges();
    const files = createCertificateFiles(opts.stateDir);
    let caPem: string | undefined;
    if (plan.caFile !== undefined) {
      try {
        caPem = readFileSync(plan.caFile, 'utf8');
      } catch (err) {
        throw new FlintError('FLINT_ERR_ACME_FAILED', `cannot read acme.caFile ${plan.caFile}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    const issuer = opts.issuer ?? createAcmeIssuer({ directoryUrl: plan.directoryUrl, email: plan.email, files, challenges, ...(caPem === undefined ? {} : { caPem }) });
    // Until the first certificate is in service, TLS handshakes fail (no certificate to offer); GitHub redelivers later.
    const server = createHttpsServer({}, handler);
    limitSlowSenders(server);
    const plain = createServer(challengeHandler(challenges, plan.domain));
    limitSlowSenders(plain);
    servers.push(server, plain);
    const r = createRenewal({
      domain: plan.domain, files, issuer, now: opts.now, logger,
      onCertificate: (cert) => { current = cert; server.setSecureContext({ cert: cert.certPem, key: cert.keyPem }); },
    });
    renewal = r;
    // Port 80 first: the CA validates there as soon as the first order is placed.
    const boundPlain = await listenOn(plain, '', opts.ports?.challenge ?? plan.challengePort, `:${plan.challengePort}`);
    const bound = await listenOn(server, '', opts.ports?.main ?? plan.port, `:${plan.port}`);
    loops.push(startRenewalLoop(r, { logger, now: opts.now, ...(opts.timers === undefined ? {} : { timers: opts.timers }) }));
    if (current === undefined) logger.warn({ domain: plan.domain, directoryUrl: plan.directoryUrl }, 'no certificate yet: obtaining one by ACME; HTTPS handshakes fail until it is in service');
    return { url: `https://${plan.domain}:${bound.port}`, bound: [bound, boundPlain], certificate: () => current, renewal: r, loops, close: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
