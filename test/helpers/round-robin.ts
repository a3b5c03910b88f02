/**
 * A tiny HTTP load balancer for fleet tests: GitHub delivers an App's
 * webhooks to one URL, and an operator puts several Flint hosts behind it.
 * Each request goes to the next target in turn; a target that cannot be
 * reached (a dead host) is skipped and the request tried on the next, so
 * only when none answers does the sender see a 502. The body is read
 * whole first (deliveries are small), then sent on with its headers.
 *
 *   const lb = await roundRobin(t, '198.18.0.1');
 *   lb.add('http://198.19.201.2:41000');   // each host as it comes up
 *   sim.setWebhook({ url: `${lb.url}/webhook`, secret });
 *   lb.served();   // how many requests each target accepted (2xx)
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Scope } from './prereq.ts';

export interface RoundRobin {
  readonly url: string;
  /** Puts a target (a base URL) behind the balancer. */
  add(target: string): void;
  /** Requests each target accepted (answered 2xx), by target URL. */
  served(): ReadonlyMap<string, number>;
}

function forward(target: string, method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${target}${path}`, { method, headers: { ...headers, host: new URL(target).host }, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Listens on `address` (any free port) until the test ends. */
export async function roundRobin(t: Scope, address: string): Promise<RoundRobin> {
  let next = 0;
  const targets: string[] = [];
  const served = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const start = next++;
        for (let i = 0; i < targets.length; i++) {
          const target = targets[(start + i) % targets.length];
          if (target === undefined) continue;
          try {
            const answer = await forward(target, req.method ?? 'POST', req.url ?? '/', req.headers, body);
            if (answer.status >= 200 && answer.status < 300) served.set(target, (served.get(target) ?? 0) + 1);
            res.writeHead(answer.status, { 'content-type': answer.headers['content-type'] ?? 'text/plain' });
            res.end(answer.body);
            return;
          } catch {
            // This host is down: the next one takes the delivery.
          }
        }
        res.writeHead(502).end('no host answered\n');
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo; // listening on a TCP address
  return {
    url: `http://${address}:${port}`,
    add: (target) => { targets.push(target); served.set(target, 0); },
    served: () => served,
  };
}
