/**
 * A bench's own HTTP/1.1 client for one kind of request: POSTs of ready-made
 * bodies to one server, over a fixed set of keep-alive connections, one
 * request at a time on each. What it reads of an answer is its status code.
 *
 * Why not undici (which the other benches use): a load generator sharing the
 * cores of the process it measures should cost as little as it can. Sending
 * the burst's 3,000 deliveries through undici's Pool took this process about
 * 0.25 ms of CPU per delivery, much of it in machinery a bench does not need
 * (request objects, body streams, timers per request, llhttp in wasm).
 * Here a request is one pre-built buffer and one socket write; an answer is
 * found by its header block and Content-Length.
 *
 * It is not a general client: no chunked answers (Flint's intake answers
 * with a length), no redirects, no TLS. A connection the server closes is
 * opened again for the next request; the request it carried fails.
 */
import { connect, type Socket } from 'node:net';

export interface RawPostPool {
  /** Sends one POST; resolves with the answer's status code. */
  post(path: string, headers: Readonly<Record<string, string>>, body: string | Buffer): Promise<number>;
  close(): Promise<void>;
}

interface Waiting {
  readonly request: Buffer;
  readonly resolve: (status: number) => void;
  readonly reject: (err: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Builds a request's bytes: request line, Host, Content-Length, the given headers, the body. */
export function postRequest(host: string, path: string, headers: Readonly<Record<string, string>>, body: string | Buffer): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  let head = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: ${bytes.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`), bytes]);
}

class Connection {
  private socket: Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private current: Waiting | undefined;
  private readonly port: number;
  private readonly hostname: string;
  private readonly onFree: (c: Connection) => void;

  constructor(hostname: string, port: number, onFree: (c: Connection) => void) {
    this.hostname = hostname;
    this.port = port;
    this.onFree = onFree;
  }

  send(w: Waiting): void {
    this.current = w;
    const socket = this.socket ?? this.open();
    socket.write(w.request);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): Socket {
    const socket = connect({ host: this.hostname, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    const lost = (err?: Error): void => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.buffered = Buffer.alloc(0);
      const w = this.current;
      this.current = undefined;
      if (w !== undefined) {
        w.reject(err ?? new Error('the server closed the connection'));
        this.onFree(this);
      }
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    this.socket = socket;
    return socket;
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffered.subarray(0, end).toString('latin1');
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const total = end + HEADER_END.length + (length?.[1] === undefined ? 0 : Number(length[1]));
    if (this.buffered.length < total) return;
    this.buffered = this.buffered.subarray(total);
    const status = Number(head.slice(9, 12));
    const w = this.current;
    this.current = undefined;
    w?.resolve(status);
    this.onFree(this);
  }
}

/** `connections` keep-alive connections to `url` (http only), opened as requests need them. */
export function rawPostPool(url: string, connections: number): RawPostPool {
  const { hostname, port, host } = new URL(url);
  const free: Connection[] = [];
  const queue: Waiting[] = [];
  const all: Connection[] = [];
  const onFree = (c: Connection): void => {
    const next = queue.shift();
    if (next === undefined) free.push(c);
    else c.send(next);
  };
  for (let i = 0; i < connections; i++) {
    const c = new Connection(hostname, Number(port || 80), onFree);
    all.push(c);
    free.push(c);
  }
  return {
    post(path, headers, body) {
      return new Promise<number>((resolve, reject) => {
        const w = { request: postRequest(host, path, headers, body), resolve, reject };
        const c = free.pop();
        if (c === undefined) queue.push(w);
        else c.send(w);
      });
    },
    async close() {
      for (const w of queue.splice(0)) w.reject(new Error('the pool was closed'));
      for (const c of all) c.close();
    },
  };
}
