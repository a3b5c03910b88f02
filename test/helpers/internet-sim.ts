/**
 * The GitHub simulator as the program that plays "the internet" in the
 * end-to-end topology (test/helpers/topology.ts starts it under
 * `unshare -n`, so its network namespace lives exactly as long as it does).
 *
 *   node --import tsx test/helpers/internet-sim.ts '{"port":8080,"org":"acme","publicUrl":"http://198.18.0.2:8080"}'
 *
 * Listens on every address of its own namespace (there is only its veth
 * and loopback), prints one JSON line `{appId, installationId, org,
 * privateKeyPem}` once listening, and exits when its stdin ends — so it
 * cannot outlive the test process, even one killed with SIGKILL — or on
 * SIGTERM/SIGINT.
 */
import { startSimulator } from '../../tools/github-sim/index.ts';

interface Args { readonly port: number; readonly org: string; readonly publicUrl: string }

function parseArgs(raw: string | undefined): Args {
  const v: unknown = JSON.parse(raw ?? '{}');
  if (typeof v !== 'object' || v === null) throw new Error('expected one JSON object argument');
  const { port, org, publicUrl } = v as Record<string, unknown>; // each field checked right below
  if (typeof port !== 'number' || typeof org !== 'string' || typeof publicUrl !== 'string') {
    throw new Error('expected {"port": number, "org": string, "publicUrl": string}');
  }
  return { port, org, publicUrl };
}

const args = parseArgs(process.argv[2]);
const sim = await startSimulator({ host: '0.0.0.0', port: args.port, org: args.org, publicUrl: args.publicUrl });
process.stdout.write(`${JSON.stringify({ appId: sim.appId, installationId: sim.installationId, org: sim.org, privateKeyPem: sim.privateKeyPem })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void sim.close().finally(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
