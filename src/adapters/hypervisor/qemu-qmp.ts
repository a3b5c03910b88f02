/**
 * A minimal QMP (QEMU Machine Protocol) client: connect to the unix socket,
 * read the greeting, negotiate capabilities, run commands one at a time.
 * QMP is newline-delimited JSON; asynchronous events (objects with an
 * `event` key) may arrive between replies and are skipped.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface QmpClient {
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  close(): void;
}

export class QmpError extends Error {
  readonly qmpClass: string;
  constructor(qmpClass: string, desc: string) {
    super(`QMP error ${qmpClass}: ${desc}`);
    this.name = 'QmpError';
    this.qmpClass = qmpClass;
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** Connects and negotiates; rejects when the socket is absent or QEMU does not answer within timeoutMs. */
export function qmpConnect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(socketPath);
    let buf = '';
    let greeted = false;
    const queue: Pending[] = [];
    let failed: Error | undefined;

    const fail = (err: Error): void => {
      if (failed) return;
      failed = err;
      clearTimeout(timer);
      for (const p of queue.splice(0)) p.reject(err);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`QMP on ${socketPath} did not answer within ${timeoutMs} ms`)), timeoutMs);

    const client: QmpClient = {
      execute(command, args) {
        if (failed) return Promise.reject(failed);
        return new Promise((res, rej) => {
          queue.push({ resolve: res, reject: rej });
          sock.write(JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + '\n');
        });
      },
      close() {
        clearTimeout(timer);
        sock.destroy();
      },
    };

    sock.setEncoding('utf8');
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('QMP connection closed')));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let msg: Record<string, unknown>;
        try {
          // QMP replies are JSON objects by protocol; anything else is caught below.
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          fail(new Error('QMP sent a line that is not JSON'));
          return;
        }
        if ('QMP' in msg && !greeted) {
          greeted = true;
          client.execute('qmp_capabilities').then(() => {
            clearTimeout(timer);
            resolve(client);
          }, (e: unknown) => fail(e instanceof Error ? e : new Error(String(e))));
          continue;
        }
        if ('event' in msg) continue;
        const p = queue.shift();
        if (!p) continue;
        if ('error' in msg) {
          // QMP error replies carry {class, desc} by protocol.
          const e = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(e.class ?? 'GenericError', e.desc ?? 'unknown error'));
        } else {
          p.resolve(msg.return);
        }
      }
    });
  });
}
