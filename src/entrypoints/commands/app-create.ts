/**
 * `flint app create` — registers Flint's GitHub App through GitHub's
 * App-manifest flow and writes it into the configuration:
 *
 *   1. serve a page on loopback whose form posts the manifest (exactly the
 *      permissions and the event Flint needs) to GitHub, with a random state;
 *   2. GitHub registers the App and sends the browser back to /callback
 *      with a one-hour, single-use code and the state;
 *   3. the state is checked, the code exchanged (`POST /app-manifests/{code}/conversions`,
 *      unauthenticated) for the App's id, key and webhook secret;
 *   4. these go into the configuration file (rest of the YAML and its
 *      comments kept), written atomically with mode 0600.
 *
 * The page listens on loopback only: the callback carries a code worth a
 * private key, and only the operator's own browser (or an SSH tunnel) should
 * reach it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, accessSync, constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Octokit } from '@octokit/rest';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { DEFAULT_CONFIG_PATH, DEFAULTS } from '../../config/load.ts';
import { readExistingConfig, withGitHubApp, type ExistingConfig } from '../../config/github-app-update.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint app create [--org ORG] [--config FILE] [--webhook-url URL]
                        [--listen 127.0.0.1:PORT] [--name NAME]
                        [--github-url URL] [--api-url URL]

Registers Flint's GitHub App on an organization with GitHub's App-manifest
flow and writes its id, private key and webhook secret into the configuration.
Open the URL it prints in a browser signed in to GitHub as an owner of the
organization, confirm, and the configuration is written.

  --org ORG          the organization (default: github.organization of the file)
  --config FILE      the configuration to write (default: $FLINT_CONFIG or
                     ${DEFAULT_CONFIG_PATH}); created if missing (its directory
                     too, 0700), otherwise only its github section changes; mode 0600
  --webhook-url URL  where GitHub sends webhooks: https://HOST/webhook (default:
                     from \`address\` when it is HOST:443)
  --listen ADDR      loopback address of the page (default 127.0.0.1:${8917});
                     on a remote host, forward it: ssh -L 8917:127.0.0.1:8917 HOST
  --name NAME        the App's name, unique on GitHub, up to 34 characters
                     (default "Flint runners ORG")
  --github-url URL   GitHub's web address (default https://github.com; GitHub
                     Enterprise Server: https://HOST)
  --api-url URL      GitHub's REST API (default: github.apiUrl of the file, else
                     https://api.github.com, or GITHUB-URL/api/v3 for a server)

The App asks for: organization Self-hosted runners read & write, Actions read,
Metadata read, and the Workflow job event. See docs/github-app.md.
`;

const DEFAULT_PORT = 8917;
const GITHUB_WEB = 'https://github.com';
const MAX_NAME = 34;

/** The permissions and events of Flint's App (docs/github-app.md explains each). */
export const APP_PERMISSIONS = { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' } as const;
export const APP_EVENTS = ['workflow_job'] as const;

export interface AppCreateOptions {
  readonly org: string;
  readonly configFile: string;
  readonly webhookUrl: string;
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly githubUrl: string;
  readonly apiUrl: string;
}

export interface Manifest {
  readonly name: string;
  readonly url: string;
  readonly hook_attributes: { readonly url: string; readonly active: boolean };
  readonly redirect_url: string;
  readonly public: boolean;
  readonly default_permissions: typeof APP_PERMISSIONS;
  readonly default_events: typeof APP_EVENTS;
  readonly request_oauth_on_install: boolean;
  readonly setup_on_update: boolean;
  readonly description: string;
}

export function buildManifest(o: { name: string; org: string; webhookUrl: string; githubUrl: string; redirectUrl: string }): Manifest {
  return {
    name: o.name,
    url: `${o.githubUrl}/${o.org}`,
    description: 'Runs GitHub Actions jobs of this organization in throw-away Flint microVMs.',
    hook_attributes: { url: o.webhookUrl, active: true },
    redirect_url: o.redirectUrl,
    public: false,
    default_permissions: APP_PERMISSIONS,
    default_events: APP_EVENTS,
    request_oauth_on_install: false,
    setup_on_update: false,
  };
}

function usage(message: string): FlintError {
  return new FlintError('FLINT_ERR_USAGE', message);
}

function httpUrl(flag: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw usage(`${flag} takes an http(s) URL, not "${v}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`${flag} takes an http(s) URL, not "${v}"`);
  return v.replace(/\/+$/, '');
}

function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[(?<v6>[^\]]+)\]|(?<host>[^:]+)):(?<port>\d{1,5})$/.exec(v);
  const host = m?.groups?.v6 ?? m?.groups?.host;
  const port = Number(m?.groups?.port);
  if (host === undefined || !(port >= 0 && port <= 65535)) throw usage(`--listen takes HOST:PORT, e.g. 127.0.0.1:${DEFAULT_PORT}, not "${v}"`);
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw usage(`--listen must be a loopback address (127.0.0.1, ::1, localhost), not ${host}: the callback carries a code worth the App's private key; forward the port with ssh -L to reach it from elsewhere`);
  }
  return { host, port };
}

/** The webhook URL implied by `address: HOST:443` (Flint's own HTTPS), if any. */
function webhookFromAddress(address: string | undefined): string | undefined {
  const m = address === undefined ? null : /^(?<host>[^:[\]]+|\[[^\]]+\]):443$/.exec(address);
  return m?.groups?.host === undefined ? undefined : `https://${m.groups.host}/webhook`;
}

function readExisting(file: string): { text: string | undefined; existing: ExistingConfig } {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') { // node fs errors carry a string code
      throw new FlintError('FLINT_ERR_CONFIG_UNREADABLE', `cannot read configuration file ${file} (${String((err as { code?: unknown }).code ?? 'unreadable')})`, { cause: err });
    }
  }
  return { text, existing: text === undefined ? { organization: undefined, apiUrl: undefined, address: undefined } : readExistingConfig(text, file) };
}

/** Options from the command line, completed from the existing file. */
export function resolveOptions(argv: string[], env: CommandIo['env']): { help: true } | { help: false; options: AppCreateOptions } {
  const { values } = parseArgs({ args: argv, options: {
    org: { type: 'string' }, config: { type: 'string', short: 'c' }, 'webhook-url': { type: 'string' }, listen: { type: 'string' },
    name: { type: 'string' }, 'github-url': { type: 'string' }, 'api-url': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help === true) return { help: true };
  const configFile = values.config ?? env.FLINT_CONFIG ?? DEFAULT_CONFIG_PATH;
  const { existing } = readExisting(configFile);
  const org = values.org ?? existing.organization;
  if (org === undefined) throw usage('--org is needed (the configuration names no github.organization)');
  if (!/^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$/.test(org)) throw usage(`--org: "${org}" is not a GitHub organization name`);
  const rawWebhook = values['webhook-url'] ?? webhookFromAddress(existing.address);
  if (rawWebhook === undefined) throw usage('--webhook-url is needed: the https URL GitHub reaches Flint\'s /webhook at, e.g. https://flint.example.com/webhook');
  const webhookUrl = httpUrl('--webhook-url', rawWebhook);
  const githubUrl = httpUrl('--github-url', values['github-url'] ?? GITHUB_WEB);
  const apiUrl = httpUrl('--api-url', values['api-url'] ?? existing.apiUrl ?? (githubUrl === GITHUB_WEB ? DEFAULTS.apiUrl : `${githubUrl}/api/v3`));
  const name = values.name ?? `Flint runners ${org}`.slice(0, MAX_NAME);
  if (name.trim() === '' || name.length > MAX_NAME) throw usage(`--name takes 1 to ${MAX_NAME} characters (GitHub's limit)`);
  const { host, port } = parseListen(values.listen ?? `127.0.0.1:${DEFAULT_PORT}`);
  return { help: false, options: { org, configFile, webhookUrl, host, port, name, githubUrl, apiUrl } };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's only script: submit the form at once (the button stays for browsers without scripts). */
const AUTO_SUBMIT = 'document.forms[0].submit();';
const AUTO_SUBMIT_HASH = createHash('sha256').update(AUTO_SUBMIT).digest('base64');

/** Whether a Host header names this machine's loopback (any port: an SSH tunnel may use another). Refuses DNS-rebound names. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = /^(?:\[(?<v6>[^\]]+)\]|(?<name>[^:]+))(?::\d+)?$/.exec(host)?.groups;
  const h = (name?.v6 ?? name?.name ?? '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function html(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    // Nothing loads but the page itself and its one inline script, named by its hash.
    'content-security-policy': `default-src 'none'; script-src 'sha256-${AUTO_SUBMIT_HASH}'; form-action *`,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  });
  res.end(`<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1>${body}\n`);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Writes `text` to `file` through a 0600 temporary file in the same directory and a rename: never half a file. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new FlintError('FLINT_ERR_CONFIG_WRITE_FAILED', `cannot write ${file} (${String((err as { code?: unknown }).code ?? err)})`, { cause: err }); // node fs errors carry a string code
  }
  try {
    const dir = openSync(dirname(file), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  } catch {
    // The rename is done; a directory that cannot be synced (some filesystems) only weakens crash safety.
  }
}

interface Converted { readonly id: number; readonly slug: string; readonly htmlUrl: string; readonly pem: string; readonly webhookSecret: string | null }

async function convert(apiUrl: string, code: string, fetchImpl: typeof fetch | undefined): Promise<Converted> {
  const octokit = new Octokit({ baseUrl: apiUrl, request: fetchImpl === undefined ? {} : { fetch: fetchImpl }, log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } });
  try {
    const { data } = await octokit.rest.apps.createFromManifest({ code });
    return { id: data.id, slug: data.slug ?? String(data.id), htmlUrl: data.html_url, pem: data.pem, webhookSecret: data.webhook_secret };
  } catch (err) {
    // Octokit's RequestError carries the HTTP status, and its response when
    // there was one: a connection that failed (no DNS, refused, reset) is a
    // RequestError with status 500 and no response — GitHub said nothing.
    const { status, response } = err as { status?: unknown; response?: unknown };
    const why = typeof status === 'number' && response !== undefined ? `GitHub answered ${status}` : `GitHub could not be reached at ${apiUrl} (${err instanceof Error ? err.message : String(err)})`;
    throw new FlintError('FLINT_ERR_GITHUB_APP_MANIFEST_FAILED', `exchanging the manifest code failed: ${why}`, { cause: err });
  }
}

export interface AppCreateDeps {
  readonly signal?: AbortSignal;
  /** The HTTP layer of the conversion call (global fetch by default). */
  readonly fetch?: typeof fetch;
}

/** Runs the flow; resolves once the configuration is written (0), or fails; an abort ends it with 130. */
export async function appCreate(o: AppCreateOptions, io: CommandIo, deps: AppCreateDeps = {}): Promise<number> {
  const say = (m: string): void => { io.stdout.write(`${m}\n`); };
  // Everything that can fail before GitHub registers anything fails now.
  const before = readExisting(o.configFile);
  try {
    // A fresh host has no /etc/flint: made here (0700, it will hold the App's key), before GitHub registers anything.
    if (before.text === undefined) mkdirSync(dirname(resolve(o.configFile)), { recursive: true, mode: 0o700 });
    accessSync(dirname(resolve(o.configFile)), constants.W_OK);
  } catch (err) {
    throw new FlintError('FLINT_ERR_CONFIG_WRITE_FAILED', `cannot create files in ${dirname(resolve(o.configFile))}, so ${o.configFile} cannot be written`, { cause: err });
  }
  withGitHubApp(before.text, o.configFile, { appId: 1, organization: o.org, privateKeyPem: '-', webhookSecret: '-', apiUrl: o.apiUrl });

  const state = randomBytes(20).toString('hex');
  let finished = false;
  let onAbort = (): void => {};
  let server: Server | undefined;
  const outcome = new Promise<number>((settle, fail) => {
    let busy = false;
    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      // A page of another site that rebinds its DNS name to 127.0.0.1 must not read the state.
      if (!isLoopbackHost(req.headers.host)) return html(res, 421, 'Misdirected request', '<p>Open this page by its loopback address.</p>');
      if (req.method !== 'GET') return html(res, 405, 'Method not allowed', '');
      if (url.pathname === '/') {
        const addr = server?.address() as AddressInfo; // listening on TCP when a request arrives
        const self = `http://${req.headers.host ?? `${addr.address}:${addr.port}`}`;
        const manifest = buildManifest({ name: o.name, org: o.org, webhookUrl: o.webhookUrl, githubUrl: o.githubUrl, redirectUrl: `${self}/callback` });
        const action = `${o.githubUrl}/organizations/${encodeURIComponent(o.org)}/settings/apps/new?state=${state}`;
        return html(res, 200, `Create Flint's GitHub App on ${o.org}`, [
          `<p>This registers the GitHub App <b>${escapeHtml(o.name)}</b> on <b>${escapeHtml(o.org)}</b> with organization Self-hosted runners read &amp; write, Actions read, Metadata read and the Workflow job event; webhooks go to ${escapeHtml(o.webhookUrl)}.</p>`,
          `<form method="post" action="${escapeHtml(action)}">`,
          `<input type="hidden" name="manifest" value="${escapeHtml(JSON.stringify(manifest))}">`,
          '<button type="submit">Create the App on GitHub</button></form>',
          `<script>${AUTO_SUBMIT}</script>`,
        ].join('\n'));
      }
      if (url.pathname !== '/callback') return html(res, 404, 'Not found', '');
      const got = url.searchParams.get('state') ?? '';
      const code = url.searchParams.get('code');
      if (!sameSecret(got, state) || code === null) {
        io.stderr.write('flint app create: refused a callback whose state does not match this run (not from the page this command served); still waiting\n');
        return html(res, 400, 'Wrong or missing state', '<p>This answer does not belong to the page <code>flint app create</code> served. Start again from its URL.</p>');
      }
      if (busy || finished) return html(res, 409, 'Already handled', '<p>This run already received its App.</p>');
      busy = true;
      try {
        const app = await convert(o.apiUrl, code, deps.fetch);
        if (app.webhookSecret === null) {
          throw new FlintError('FLINT_ERR_GITHUB_APP_MANIFEST_FAILED', `GitHub registered App ${app.id} without a webhook secret`, {
            hint: `Set a webhook secret in the App's settings (${app.htmlUrl}) and put it into github.webhookSecret; the rest of ${o.configFile} is not written yet: run \`flint app create\` again after deleting that App, or fill in appID and privateKey by hand.`,
          });
        }
        const now = readExisting(o.configFile).text;
        writeFileAtomic(o.configFile, withGitHubApp(now, o.configFile, {
          appId: app.id, organization: o.org, privateKeyPem: app.pem, webhookSecret: app.webhookSecret, apiUrl: o.apiUrl,
        }));
        const install = `${app.htmlUrl}/installations/new`;
        html(res, 200, 'Flint\'s GitHub App is registered', `<p>App ${app.id} (${escapeHtml(app.slug)}) is written to ${escapeHtml(o.configFile)}. Next: <a href="${escapeHtml(install)}">install it on ${escapeHtml(o.org)}</a>.</p>`);
        say(`registered GitHub App ${app.id} (${app.slug}) on ${o.org}`);
        say(`wrote github.appID, organization, privateKey and webhookSecret to ${o.configFile} (mode 0600)`);
        say(`next: install the App on ${o.org}: ${install}`);
        say(`then: flint config check ${o.configFile}`);
        finished = true;
        settle(0);
      } catch (err) {
        html(res, 502, 'The App could not be saved', `<p>${escapeHtml(isFlintError(err) ? `${err.code}: ${err.message}` : String(err))}</p><p>See the terminal.</p>`);
        finished = true;
        fail(err);
      }
    };
    server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) html(res, 500, 'Internal error', '');
        fail(err);
      });
    });
    onAbort = (): void => {
      if (finished) return;
      finished = true;
      io.stderr.write('flint app create: stopped before GitHub sent the App back; nothing was written\n');
      settle(130);
    };
  });
  if (deps.signal?.aborted === true) onAbort();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((ok, bad) => {
      const s = server as Server; // created synchronously by the executor above
      s.once('error', (err) => bad(new FlintError('FLINT_ERR_USAGE', `cannot listen on ${o.host}:${o.port} (${(err as { code?: string }).code ?? err.message}); pick another with --listen`, { cause: err })));
      s.listen(o.port, o.host, () => ok());
    });
    const addr = (server as unknown as Server).address() as AddressInfo; // listening on TCP
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    say(`flint app create: open http://${host}:${addr.port}/ in a browser signed in to GitHub as an owner of ${o.org}`);
    say('  (waiting for GitHub to send the App back; Ctrl-C stops)');
    return await outcome;
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
    const s = server as Server | undefined;
    if (s !== undefined) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const parsed = resolveOptions(argv, io.env);
  if (parsed.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await appCreate(parsed.options, io, { signal: stop.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
