/**
 * Serves a FirecrackerVmm over HTTP/1.1 on a unix socket, as Firecracker's
 * micro_http server does: JSON bodies, `{"fault_message": …}` on errors,
 * 204 No Content on success without data.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { FirecrackerVmm } from './api.ts';

export function serveApi(vmm: FirecrackerVmm, socketPath: string): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 0 ? undefined : Buffer.concat(chunks).toString('utf8');
      vmm.handle(req.method ?? 'GET', req.url ?? '/', body).then(
        (out) => {
          const headers: Record<string, string> = { Server: 'Firecracker API' };
          if (out.body === undefined) {
            res.writeHead(out.status, headers).end();
          } else {
            const text = JSON.stringify(out.body);
            res.writeHead(out.status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) }).end(text);
          }
        },
        (err: unknown) => {
          const text = JSON.stringify({ fault_message: `Internal error: ${(err as Error).message}` });
          res.writeHead(500, { 'Content-Type': 'application/json' }).end(text);
        },
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
