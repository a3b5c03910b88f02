/**
 * What the guests' probes aim at in "the internet" (run inside that
 * namespace by `startProbeTarget` in test/helpers/guest-probe.ts): TCP ports that
 * answer one line and close, UDP ports that record every datagram (its
 * payload, the probe's token, and the source address it arrived from),
 * and an HTTP port for the test and the guests: `GET /barrier?name=&who=&n=`
 * answers once `n` distinct participants reached the barrier `name` (with
 * their names, one a line), `GET /seen` reports everything recorded.
 *
 * Prints one JSON line when everything listens; exits when its stdin ends,
 * so it never outlives the test that started it.
 *
 *   node --import tsx test/helpers/probe-target.ts '{"http":7000,"tcp":[7100,80],"udp":[7200]}'
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';

export interface TargetOptions {
  readonly http: number;
  readonly tcp: readonly number[];
  readonly udp: readonly number[];
}

/** One UDP datagram as it arrived. */
export interface SeenDatagram {
  readonly port: number;
  readonly from: string;
  /** The payload's printable runs joined by spaces (a TFTP request carries the token as its file name). */
  readonly text: string;
}

/** One TCP connection as it arrived. */
export interface SeenConnection {
  readonly port: number;
  readonly from: string;
  readonly to: string;
}

export interface Seen {
  readonly udp: readonly SeenDatagram[];
  readonly tcp: readonly SeenConnection[];
  /** Barrier name → the participants that reached it, in order. */
  readonly barriers: Readonly<Record<string, readonly string[]>>;
}

/** How long a participant waits at a barrier at most before it is answered `timeout`. */
const BARRIER_MAX_MS = 240_000;

function printable(buf: Buffer): string {
  return buf.toString('latin1').split(/[^\x21-\x7e]+/).filter((s) => s !== '').join(' ');
}

function unmapped(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as TargetOptions; // written by guest-probe.ts
  const udp: SeenDatagram[] = [];
  const tcp: SeenConnection[] = [];
  const barriers = new Map<string, string[]>();
  const waiting = new Map<string, Array<() => void>>();
  const closers: Array<() => void> = [];

  const tcpServers: Server[] = opts.tcp.map((port) => createTcpServer((sock) => {
    tcp.push({ port, from: unmapped(sock.remoteAddress), to: unmapped(sock.localAddress) });
    sock.on('error', () => undefined);
    sock.end('flint-probe-target\n');
  }));
  const udpSockets: Socket[] = opts.udp.map((port) => {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => { udp.push({ port, from: rinfo.address, text: printable(msg) }); });
    return s;
  });
  const http = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://target');
    if (url.pathname === '/seen') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ udp, tcp, barriers: Object.fromEntries(barriers) } satisfies Seen));
      return;
    }
    if (url.pathname === '/barrier') {
      const name = url.searchParams.get('name') ?? '';
      const who = url.searchParams.get('who') ?? '';
      const n = Number(url.searchParams.get('n') ?? '0');
      const arrived = barriers.get(name) ?? [];
      barriers.set(name, arrived);
      if (!arrived.includes(who)) arrived.push(who);
      const answer = (): void => { res.end(arrived.length >= n ? `${arrived.join('\n')}\n` : 'timeout\n'); };
      if (arrived.length >= n) {
        for (const wake of waiting.get(name) ?? []) wake();
        waiting.delete(name);
        answer();
        return;
      }
      const timer = setTimeout(answer, BARRIER_MAX_MS);
      closers.push(() => { clearTimeout(timer); res.destroy(); });
      waiting.set(name, [...(waiting.get(name) ?? []), () => { clearTimeout(timer); answer(); }]);
      return;
    }
    res.statusCode = 404;
    res.end();
  });

  await Promise.all([
    ...tcpServers.map((s, i) => new Promise<void>((resolve) => s.listen(opts.tcp[i], '0.0.0.0', resolve))),
    ...udpSockets.map((s, i) => new Promise<void>((resolve) => s.bind(opts.udp[i], '0.0.0.0', resolve))),
    new Promise<void>((resolve) => http.listen(opts.http, '0.0.0.0', resolve)),
  ]);
  process.stdout.write(`${JSON.stringify({ listening: true })}\n`);

  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const close of closers) close();
    for (const s of tcpServers) s.close();
    for (const s of udpSockets) s.close();
    http.closeAllConnections();
    http.close();
  });
}

await main();
