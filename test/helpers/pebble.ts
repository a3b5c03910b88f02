/**
 * A real ACME server for HTTPS tests: Debian's `pebble`, with
 * `pebble-challtestsrv` as its DNS (every name resolves to 127.0.0.1), on
 * fixed ports of the test's own network namespace. Pebble validates HTTP-01
 * on port 80 of the domain for real, so whatever answers there must be the
 * Flint under test.
 *
 *   const pebble = await startPebble(t);
 *   // config: acme: { directoryUrl: pebble.directoryUrl, caFile: pebble.caFile }
 *   const cert = await until('a certificate', () => servedCertificate({ servername: DOMAIN, ca: pebble.root }));
 *
 * Both processes are stopped in `t.after`; their files live in a temporary
 * directory removed there too. Only for tests inside a private network
 * namespace (ports 80 and 443 are the namespace's own).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

// Fixed ports inside the test's own network namespace.
const PORTS = { acme: 14000, management: 15000, dns: 8053, dnsManagement: 8055 };

export interface Pebble {
  /** The ACME directory (`acme.directoryUrl`). */
  readonly directoryUrl: string;
  /** PEM file of pebble's own HTTPS certificate (`acme.caFile`). */
  readonly caFile: string;
  /** PEM of the root pebble issues under: what a client of the served certificate trusts. */
  readonly root: string;
}

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Starts a process that ends with the test (SIGTERM, waited for). A process
 * that ends on its own with a failure shows its last output as a diagnostic.
 */
export function startProcess(t: TestContext, cmd: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  });
  child.once('exit', (code, signal) => { if (code !== 0 && signal !== 'SIGTERM') t.diagnostic(`${cmd} exited ${code ?? signal}: ${out.slice(-2000)}`); });
  return child;
}

/** Polls `probe` every 100 ms until it returns a value; a throw counts as "not yet" (the last one is in the timeout's message). */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An HTTPS request to 127.0.0.1:`port` (default 443) with SNI and Host `servername`, trusting only `ca`. */
export function httpsTo(options: { readonly servername: string; readonly ca: string; readonly port?: number; readonly method?: string; readonly path: string; readonly headers?: OutgoingHttpHeaders; readonly body?: string }): Promise<Reply> {
  const { servername, ca, port = 443, method = 'GET', path, headers = {}, body } = options;
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername, ca, method, path, headers: { ...headers, host: servername } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => { text += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A plain HTTP GET to 127.0.0.1:80 with the Host header `host`. */
export function plainGet(path: string, host: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: 80, path, headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The certificate served on 127.0.0.1:`port` (default 443) for `servername`, verified against `ca` (rejects when it does not verify). */
export function servedCertificate(options: { readonly servername: string; readonly ca: string; readonly port?: number }): Promise<{ serial: string; validTo: string; subjectAltName: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: options.port ?? 443, servername: options.servername, ca: options.ca }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({ serial: cert.serialNumber, validTo: cert.valid_to, subjectAltName: cert.subjectaltname ?? '' });
    });
    socket.on('error', reject);
  });
}

function fetchPem(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts pebble-challtestsrv (DNS: every A record is 127.0.0.1) and pebble
 * (validating HTTP-01 on port 80, TLS-ALPN-01 on 443), and resolves once
 * pebble's directory answers. Deterministic: no random validation sleeps,
 * no nonce rejections, no authorization reuse (a renewal is validated again).
 */
export async function startPebble(t: TestContext): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'flint-pebble-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const caFile = join(dir, 'pebble.crt');
  // Pebble's own HTTPS listener: a self-signed certificate, which is also what acme.caFile trusts.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'pebble.key'), '-out', caFile,
    '-days', '2', '-subj', '/CN=pebble', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${PORTS.acme}`, managementListenAddress: `127.0.0.1:${PORTS.management}`,
      certificate: caFile, privateKey: join(dir, 'pebble.key'),
      httpPort: 80, tlsPort: 443, ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  startProcess(t, 'pebble-challtestsrv', ['-dns01', `127.0.0.1:${PORTS.dns}`, '-management', `127.0.0.1:${PORTS.dnsManagement}`,
    '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']);
  startProcess(t, 'pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${PORTS.dns}`],
    { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' });
  const tls = readFileSync(caFile, 'utf8');
  const directoryUrl = `https://127.0.0.1:${PORTS.acme}/dir`;
  await until('pebble', async () => ((await fetchPem(directoryUrl, tls)).status === 200 ? true : undefined));
  const root = (await fetchPem(`https://127.0.0.1:${PORTS.management}/roots/0`, tls)).body;
  if (!root.includes('BEGIN CERTIFICATE')) throw new Error(`pebble's root is not a PEM certificate: ${root.slice(0, 200)}`);
  return { directoryUrl, caFile, root };
}
