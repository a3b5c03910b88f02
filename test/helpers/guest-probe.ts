/**
 * Isolation checks made from inside a real guest. The guest's runner
 * command becomes a busybox sh script (`probeScript`) that runs a list of
 * probes and prints one console line per result,
 *
 *   PROBE name=<name> result=<reached|blocked|sent|failed> <detail>
 *
 * then hands over to the job's real runner command (so the job completes
 * and the VM ends as any other). `probeResults` reads those lines back from
 * the console log.
 *
 * What a guest cannot see for itself — whether a packet it sent with a
 * forged source address or MAC arrived — is observed on the receiving side:
 * `startProbeTarget` runs test/helpers/probe-target.ts in the topology's
 * internet namespace, where every UDP datagram is recorded with its token
 * (a TFTP request's file name) and source address. The same process holds
 * the barriers that keep two guests up at the same time.
 *
 *   const target = await startProbeTarget(t, e2e.topology);
 *   const script = probeScript([tcp('sim', target.internet, 8080), udp('legit', target.internet)], runnerCommand);
 *   …
 *   probeResults(consoleLog).get('sim')?.result === 'reached';  (await target.seen()).udp
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/images/paths.ts';
import type { Scope } from './prereq.ts';
import { run } from './netns.ts';
import type { Topology } from './topology.ts';
import type { Seen } from './probe-target.ts';


/** The target's ports in the internet namespace (nothing else listens there but the simulator, on 8080). */
export const TARGET_PORTS = { http: 7000, tcp: 7100, udp: 7200, metadata: 80 } as const;
/** The port every guest of the pair listens on. */
export const GUEST_PORT = 7300;
/** A link-local address a cloud's metadata service answers on; here the target does. */
export const METADATA_ADDRESS = '169.254.169.254';

const START_TIMEOUT_MS = 60_000;

export interface ProbeTarget {
  /** The simulator's address (the /30 of the veth): the target listens there too. */
  readonly internet: string;
  /** A second internet address (198.19.x.2/32 in the internet namespace): not the simulator's. */
  readonly elsewhere: string;
  /** Everything recorded so far. */
  seen(): Promise<Seen>;
  /** Reaches the barrier `name` as `who`; resolves with the participants once `n` did. */
  barrier(name: string, who: string, n: number): Promise<string[]>;
  close(): Promise<void>;
}


function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** The third octet of the topology's /30 (198.18.X.1): the target's second address reuses it in 198.19.X.0. */
export function topologyOctet(topology: Topology): number {
  const octet = Number(topology.hostAddress.split('.')[2]);
  if (!topology.hostAddress.startsWith('198.18.') || !Number.isInteger(octet)) throw new Error(`unexpected topology address ${topology.hostAddress}`);
  return octet;
}

/** Starts the target inside the topology's internet namespace; it ends with the test (or with the topology). */
export async function startProbeTarget(t: Scope, topology: Topology): Promise<ProbeTarget> {
  const octet = topologyOctet(topology);
  const elsewhere = `198.19.${octet}.2`;
  const inside = (...args: string[]): Promise<void> => run('nsenter', ['-t', String(topology.pid), '-n', 'ip', ...args]);
  // Both addresses live only in the internet namespace and go with it.
  await inside('addr', 'add', `${elsewhere}/32`, 'dev', 'lo');
  await inside('addr', 'add', `${METADATA_ADDRESS}/32`, 'dev', 'lo');

  const opts = { http: TARGET_PORTS.http, tcp: [TARGET_PORTS.tcp, TARGET_PORTS.metadata], udp: [TARGET_PORTS.udp] };
  const child = spawn('nsenter', ['-t', String(topology.pid), '-n', '--', process.execPath, '--import', 'tsx', 'test/helpers/probe-target.ts', JSON.stringify(opts)],
    { cwd: packageRoot(), stdio: ['pipe', 'pipe', 'inherit'] });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= (async () => {
    child.stdin?.end();
    const gone = exited(child);
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(kill);
  })());
  t.after(close);

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the probe target did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`the probe target exited before it listened (${code ?? signal})`)); });
    if (child.stdout === null) throw new Error('spawned with a stdout pipe');
    const lines = createInterface({ input: child.stdout });
    lines.once('line', () => { clearTimeout(timer); lines.close(); child.stdout?.resume(); resolve(); });
  });
  child.removeAllListeners('exit');
  child.removeAllListeners('error');

  const base = `http://${topology.internetAddress}:${TARGET_PORTS.http}`;
  return {
    internet: topology.internetAddress,
    elsewhere,
    async seen() {
      const res = await fetch(`${base}/seen`);
      return (await res.json()) as Seen; // probe-target.ts's own answer
    },
    async barrier(name, who, n) {
      const res = await fetch(`${base}/barrier?${new URLSearchParams({ name, who, n: String(n) }).toString()}`);
      return (await res.text()).split('\n').filter((l) => l !== '');
    },
    close,
  };
}

// --- the guest's script ---------------------------------------------------------

/** One step of the guest's script: sh lines. Addresses may be shell expressions such as "$gw" or "$peer". */
export type Probe = string;

function report(name: string, result: string, detail = ''): string {
  return `echo "PROBE name=${name} result=${result}${detail === '' ? '' : ` ${detail}`}"`;
}

/** A TCP connection that gets an answer (any bytes) counts as reached; no answer within seconds counts as blocked. */
export function tcp(name: string, host: string, port: number | string): Probe {
  return [
    `out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 8 nc -w 4 "${host}" "${port}" 2>/dev/null | head -c 40 | tr -dc 'A-Za-z0-9 ./-')`,
    `if [ -n "$out" ]; then ${report(name, 'reached', `to=${host}:${port} answer=$out`)}; else ${report(name, 'blocked', `to=${host}:${port}`)}; fi`,
  ].join('\n');
}

/** ICMP echo: reached when a reply came. */
export function ping(name: string, host: string): Probe {
  return `if ping -c 2 -W 2 "${host}" >/dev/null 2>&1; then ${report(name, 'reached', `to=${host}`)}; else ${report(name, 'blocked', `to=${host}`)}; fi`;
}

/**
 * A UDP datagram carrying `name` as its token (a TFTP read request for the
 * file `name`), to the target's UDP port. The guest cannot know whether it
 * arrived: the target records it, or not.
 */
export function udp(name: string, host: string, port: number = TARGET_PORTS.udp): Probe {
  return [
    `timeout 3 tftp -g -r "${name}" -l /dev/null "${host}" ${port} >/dev/null 2>&1`,
    report(name, 'sent', `to=${host}:${port} from=$(ip route get "${host}" | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')`),
  ].join('\n');
}

/**
 * The UDP token `name` sent from `source`, an address Flint did not give
 * this guest: the address is added to eth0 and preferred for the route to
 * `host`; both are removed afterwards.
 */
export function udpFromForgedSource(name: string, host: string, source: string): Probe {
  return [
    `ip addr add ${source}/32 dev eth0`,
    `ip route add ${host}/32 via "$gw" src ${source}`,
    udp(name, host),
    `ip route del ${host}/32`,
    `ip addr del ${source}/32 dev eth0`,
  ].join('\n');
}

/**
 * The UDP token `name` sent with the source MAC `mac` (and the guest's own
 * address): the gateway's neighbour entry is pinned first, so the datagram
 * itself leaves the guest (not only an ARP request). The guest's own MAC
 * and routes are restored afterwards.
 */
export function udpFromForgedMac(name: string, host: string, mac: string): Probe {
  const setMac = (m: string): string =>
    `ip link set eth0 address ${m} 2>/dev/null || { ip link set eth0 down; ip link set eth0 address ${m}; ip link set eth0 up; }; ip route add default via "$gw" 2>/dev/null; arp -i eth0 -s "$gw" "$gwmac"`;
  return [
    'ping -c 1 -W 2 "$gw" >/dev/null 2>&1',
    'mymac=$(cat /sys/class/net/eth0/address)',
    `gwmac=$(arp -n "$gw" | sed -n 's/.* at \\([0-9a-f:]*\\).*/\\1/p')`,
    setMac(mac),
    `if [ "$(cat /sys/class/net/eth0/address)" = "${mac}" ] && [ -n "$gwmac" ]; then`,
    udp(name, host),
    'else',
    report(name, 'failed', 'mac=$(cat /sys/class/net/eth0/address) gwmac=$gwmac'),
    'fi',
    setMac('"$mymac"'),
  ].join('\n');
}

/** A TCP listener on `port` that answers every connection (a busybox nc server), until the script ends. */
export function listen(port: number): Probe {
  return `nc -ll -p ${port} -e echo flint-guest-listener >/dev/null 2>&1 &\nlistener=$!`;
}

/**
 * Waits at the target's barrier `name` (as this guest's address) until
 * `n` participants arrived; the other guests' addresses are then in $peers.
 */
export function barrier(target: { readonly internet: string }, name: string, n: number): Probe {
  return [
    `answer=$(wget -q -O - "http://${target.internet}:${TARGET_PORTS.http}/barrier?name=${name}&who=$me&n=${n}")`,
    'peers=$(printf "%s\\n" $answer | grep -v -x -F "$me" | grep -v -x -e test -e timeout | tr "\\n" " ")',
    'peer=${peers%% *}',
    'if [ -z "$answer" ] || echo "$answer" | grep -q -x timeout; then bres=failed; else bres=reached; fi',
    report(`barrier-${name}`, '$bres', 'peers=$peers'),
  ].join('\n');
}

/** Routes `host` through the gateway: the guest asks the host to forward to a neighbour it cannot reach on the bridge. */
export function viaGateway(host: string): Probe {
  return `ip route add "${host}/32" via "$gw"`;
}

/**
 * The whole runner command: learns the guest's address ($me) and gateway
 * ($gw), runs the probes, stops any listener, then runs `then` (the job's
 * runner command) so the VM goes on as any other.
 */
export function probeScript(probes: readonly Probe[], then: string): string {
  return [
    'me=$(ip -4 -o addr show dev eth0 | sed -n "s/.* inet \\([0-9.]*\\)\\/.*/\\1/p" | head -n 1)',
    'gw=$(ip route show default | sed -n "s/^default via \\([0-9.]*\\).*/\\1/p")',
    'listener=""',
    `echo "PROBE-BEGIN me=$me gw=$gw"`,
    ...probes,
    '[ -n "$listener" ] && kill "$listener" 2>/dev/null',
    'echo "PROBE-END"',
    then,
  ].join('\n');
}

export interface ProbeResult {
  readonly name: string;
  readonly result: 'reached' | 'blocked' | 'sent' | 'failed';
  /** The rest of the line. */
  readonly detail: string;
}

/** The probe lines of a console log, by name (the last line of a name wins). */
export function probeResults(consoleLog: string): Map<string, ProbeResult> {
  const out = new Map<string, ProbeResult>();
  for (const m of consoleLog.matchAll(/^PROBE name=(\S+) result=(reached|blocked|sent|failed)(?: ([^\r\n]*))?\r?$/gm)) {
    const [, name = '', result = 'failed', detail = ''] = m;
    out.set(name, { name, result: result as ProbeResult['result'], detail }); // the regex admits only these four
  }
  return out;
}
