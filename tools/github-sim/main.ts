/**
 * `npm run sim -- [options]`: runs the GitHub simulator as a program.
 *
 *   --host H              listen address (default 127.0.0.1)
 *   --port N              port (default 0: any free port)
 *   --org NAME            organisation (default acme)
 *   --app-id N            App id (default 4242)
 *   --repo NAME           a repository (repeatable; default app, web)
 *   --runner-group NAME   a runner group (repeatable; default Default)
 *   --token-ttl SECONDS   installation token lifetime (default 3600)
 *   --webhook-url URL --webhook-secret SECRET   where signed deliveries go
 *   --key-file PATH       where to write the App private key (default: a new temp dir)
 *   --not-installed       the App has no installation in the org
 *   --public-url URL      the URL VMs/others reach the simulator at (links, JIT configs)
 *
 * Prints the API URL, the App id and the key file path, one `key=value` per
 * line, then serves until SIGINT/SIGTERM.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from './index.ts';

const { values } = parseArgs({
  options: {
    'host': { type: 'string' }, 'port': { type: 'string' }, 'org': { type: 'string' }, 'app-id': { type: 'string' },
    'repo': { type: 'string', multiple: true }, 'runner-group': { type: 'string', multiple: true },
    'token-ttl': { type: 'string' }, 'webhook-url': { type: 'string' }, 'webhook-secret': { type: 'string' },
    'key-file': { type: 'string' }, 'not-installed': { type: 'boolean' }, 'public-url': { type: 'string' },
  },
  strict: true,
});

const num = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
if ((values['webhook-url'] === undefined) !== (values['webhook-secret'] === undefined)) {
  console.error('--webhook-url and --webhook-secret go together');
  process.exit(2);
}

const port = num('port', values.port);
const appId = num('app-id', values['app-id']);
const ttl = num('token-ttl', values['token-ttl']);
const sim = await startSimulator({
  ...(values.host === undefined ? {} : { host: values.host }),
  ...(port === undefined ? {} : { port }),
  ...(values.org === undefined ? {} : { org: values.org }),
  ...(appId === undefined ? {} : { appId }),
  ...(values.repo === undefined ? {} : { repos: values.repo }),
  ...(values['runner-group'] === undefined ? {} : { runnerGroups: values['runner-group'] }),
  ...(ttl === undefined ? {} : { tokenTtlSeconds: ttl }),
  ...(values['webhook-url'] !== undefined && values['webhook-secret'] !== undefined
    ? { webhook: { url: values['webhook-url'], secret: values['webhook-secret'] } } : {}),
  ...(values['not-installed'] === true ? { installed: false } : {}),
  ...(values['public-url'] === undefined ? {} : { publicUrl: values['public-url'] }),
});

const ownDir = values['key-file'] === undefined ? mkdtempSync(join(tmpdir(), 'flint-github-sim-')) : undefined;
const keyFile = values['key-file'] ?? join(ownDir ?? dirname('.'), 'app-private-key.pem');
writeFileSync(keyFile, sim.privateKeyPem, { mode: 0o600 });
console.log(`api_url=${sim.apiUrl}`);
console.log(`app_id=${sim.appId}`);
console.log(`installation_id=${sim.installationId}`);
console.log(`org=${sim.org}`);
console.log(`private_key_file=${keyFile}`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void sim.close().finally(() => {
    if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
    process.exit(0);
  });
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
