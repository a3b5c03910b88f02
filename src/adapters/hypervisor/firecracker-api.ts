/**
 * A minimal client of Firecracker's HTTP API on its unix socket. Every
 * non-2xx answer becomes a FlintError carrying Firecracker's
 * `fault_message`, so the operator reads Firecracker's own reason.
 */
import { request } from 'node:http';
import { FlintError } from '../../core/errors/index.ts';

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** One request; resolves with any HTTP answer, rejects only on transport errors and timeouts. */
export function rawApiCall(socketPath: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const req = request({ socketPath, method, path, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = undefined;
        if (text.length > 0) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function faultMessage(body: unknown): string {
  if (body !== null && typeof body === 'object' && 'fault_message' in body) {
    return String((body as { fault_message: unknown }).fault_message); // narrowed by the `in` check above
  }
  return typeof body === 'string' ? body : JSON.stringify(body);
}

/** A request that must succeed (2xx); otherwise FLINT_ERR_VM_FIRECRACKER_API with the fault_message. */
export async function apiCall(vmId: string, socketPath: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  let answer: ApiAnswer;
  try {
    answer = await rawApiCall(socketPath, method, path, body, timeoutMs);
  } catch (err) {
    throw new FlintError('FLINT_ERR_VM_FIRECRACKER_API', `Firecracker of VM ${vmId} did not answer ${method} ${path}: ${(err as Error).message}`, {
      details: { vmId, method, path },
      cause: err,
    });
  }
  if (answer.status >= 200 && answer.status < 300) return answer.body;
  const fault = faultMessage(answer.body);
  throw new FlintError('FLINT_ERR_VM_FIRECRACKER_API', `Firecracker rejected ${method} ${path} for VM ${vmId} (HTTP ${answer.status}): ${fault}`, {
    details: { vmId, method, path, status: answer.status, faultMessage: fault },
  });
}
