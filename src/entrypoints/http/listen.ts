/**
 * Putting Flint's HTTP surface on the network: where to listen (from the
 * config's `address`), listening, and a graceful stop. The composition root
 * (entrypoints/flint.ts) builds the server (server.ts, which never listens
 * by itself) and hands it here.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlintError } from '../../core/errors/index.ts';
import { parseListenAddress } from '../../config/values.ts';

/** Requests in flight at a stop get this long to be answered before their connections are cut. */
export const HTTP_DRAIN_TIMEOUT_MS = 10_000;

/** Where to listen; refuses port 443, which in the reference system meant ACME (not built). */
export function listenTarget(address: string): { host: string; port: number } {
  const parsed = parseListenAddress(address);
  if (!parsed.ok) throw new FlintError('FLINT_ERR_LISTEN_FAILED', parsed.message);
  const { host, port } = parsed.value;
  if (port === 443) {
    throw new FlintError('FLINT_ERR_HTTPS_NOT_SUPPORTED', `address ${address}: port 443 means automatic HTTPS with an ACME certificate, which Flint does not provide yet`);
  }
  // "[::1]" → "::1" for listen(); "" → all interfaces.
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

function listenOn(server: Server, host: string, port: number, address: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new FlintError('FLINT_ERR_LISTEN_FAILED', `cannot listen on ${address}: ${err.code ?? err.message}`, { cause: err }));
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

export interface Listening {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Stops accepting, lets requests in flight finish (up to HTTP_DRAIN_TIMEOUT_MS), then resolves. Idempotent. */
  close(): Promise<void>;
}

/** Listens on the config's `address` (a target checked by listenTarget first, so a bad one fails before anything binds). */
export async function listen(server: Server, address: string, drainTimeoutMs = HTTP_DRAIN_TIMEOUT_MS): Promise<Listening> {
  const target = listenTarget(address);
  const bound = await listenOn(server, target.host, target.port, address);
  const url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
        await closed;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
