/**
 * GitHub's App-manifest flow, as the simulator plays it:
 *
 * 1. the browser POSTs a form with a `manifest` field (JSON) to
 *    `/organizations/{org}/settings/apps/new?state=…` (or
 *    `/settings/apps/new` for a user account);
 * 2. GitHub checks the manifest, registers the App and redirects the browser
 *    to the manifest's `redirect_url` with `?code=…&state=…`;
 * 3. the App's owner exchanges the code at `POST /app-manifests/{code}/conversions`
 *    (no authentication) for the App's id, private key (PEM), webhook secret,
 *    client id and secret. A code works once and for one hour.
 *
 * GitHub shows a confirmation page between 1 and 2 (the user may rename the
 * App there); the simulator registers at once. The checks are those GitHub
 * makes of a manifest: a name (at most 34 characters, unique), a homepage
 * `url`, a `hook_attributes.url` when there are hook attributes, known
 * permission names and levels, and events whose permission was asked for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as render from './render.ts';
import type { RenderCtx } from './render.ts';
import { error, notFound, readBody, BadBody, type Reply } from './http-util.ts';
import { publicKeyOf } from './jwt.ts';
import { isoSeconds } from './world.ts';

const generateKeyPairAsync = promisify(generateKeyPair);
const CODE_TTL_MS = 3_600_000;
const MAX_NAME = 34;

/** Permission names a manifest may ask for (a subset of GitHub's `app-permissions`), each with its allowed levels. */
const PERMISSIONS: Readonly<Record<string, readonly string[]>> = {
  actions: ['read', 'write'], administration: ['read', 'write'], checks: ['read', 'write'], contents: ['read', 'write'],
  deployments: ['read', 'write'], environments: ['read', 'write'], issues: ['read', 'write'], metadata: ['read', 'write'],
  pull_requests: ['read', 'write'], statuses: ['read', 'write'], members: ['read', 'write'],
  organization_administration: ['read', 'write'], organization_self_hosted_runners: ['read', 'write'],
};
/** The permission an event needs before an App may subscribe to it. */
const EVENT_PERMISSION: Readonly<Record<string, string>> = {
  workflow_job: 'actions', workflow_run: 'actions', check_run: 'checks', check_suite: 'checks', push: 'contents',
  pull_request: 'pull_requests', issues: 'issues', deployment: 'deployments', status: 'statuses',
};

/** An App registered from a manifest. */
export interface ManifestApp {
  readonly id: number;
  readonly slug: string;
  readonly name: string;
  readonly owner: string;
  readonly permissions: Readonly<Record<string, string>>;
  readonly events: readonly string[];
  readonly hook: { readonly url: string; readonly active: boolean } | undefined;
  readonly webhookSecret: string | null;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly createdAt: string;
  readonly description: string;
  readonly url: string;
}

/** What the conversion hands out: the App and its fresh key pair. */
export interface ConvertedApp extends ManifestApp {
  readonly privateKeyPem: string;
  readonly publicKey: KeyObject;
}

export interface ManifestDeps {
  readonly ctx: () => RenderCtx;
  readonly now: () => number;
  /** Called once per successful conversion: the simulator then answers as this App. */
  readonly converted: (app: ConvertedApp) => void;
}

export interface ManifestFlow {
  /** Whether a path is the web form of the flow (not the REST API). */
  isFormPath(path: string): boolean;
  handleForm(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  /** The conversion endpoint's answer, or undefined when the request is not for it. */
  conversion(method: string, path: string): (() => Promise<Reply>) | undefined;
}

type Parsed = { readonly ok: true; readonly app: Omit<ManifestApp, 'id' | 'slug' | 'clientId' | 'clientSecret' | 'createdAt' | 'webhookSecret' | 'owner'>; readonly redirectUrl: string | undefined } | { readonly ok: false; readonly errors: string[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Checks a manifest as GitHub does before it shows the registration page. */
export function parseManifest(text: string): Parsed {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return { ok: false, errors: ['The manifest is not valid JSON'] };
  }
  if (!isObject(m)) return { ok: false, errors: ['The manifest must be a JSON object'] };
  const errors: string[] = [];
  const name = m.name;
  if (typeof name !== 'string' || name.trim() === '') errors.push('Name can\'t be blank');
  else if (name.length > MAX_NAME) errors.push(`Name is too long (maximum is ${MAX_NAME} characters)`);
  if (!isHttpUrl(m.url)) errors.push('Homepage URL can\'t be blank and must be an http(s) URL');
  let hook: ManifestApp['hook'];
  if (m.hook_attributes !== undefined) {
    const h = m.hook_attributes;
    if (!isObject(h) || !isHttpUrl(h.url)) errors.push('Hook attributes url can\'t be blank and must be an http(s) URL');
    else if (h.active !== undefined && typeof h.active !== 'boolean') errors.push('Hook attributes active must be true or false');
    else hook = { url: h.url, active: h.active !== false };
  }
  if (m.redirect_url !== undefined && !isHttpUrl(m.redirect_url)) errors.push('Redirect URL must be an http(s) URL');
  const permissions: Record<string, string> = {};
  if (m.default_permissions !== undefined) {
    if (!isObject(m.default_permissions)) errors.push('Default permissions must be an object');
    else {
      for (const [k, v] of Object.entries(m.default_permissions)) {
        const levels = PERMISSIONS[k];
        if (levels === undefined) errors.push(`Default permission ${k} is not a known permission`);
        else if (typeof v !== 'string' || !levels.includes(v)) errors.push(`Default permission ${k} must be one of ${levels.join(', ')}`);
        else permissions[k] = v;
      }
    }
  }
  const events: string[] = [];
  if (m.default_events !== undefined) {
    if (!Array.isArray(m.default_events) || !m.default_events.every((e) => typeof e === 'string')) errors.push('Default events must be a list of event names');
    else {
      for (const e of m.default_events as string[]) { // every element checked to be a string just above
        const needs = EVENT_PERMISSION[e];
        if (needs === undefined) errors.push(`Default event ${e} is not a known event`);
        else if (permissions[needs] === undefined) errors.push(`Default events unsupported: ${e} (it needs the ${needs} permission)`);
        else events.push(e);
      }
    }
  }
  if (m.public !== undefined && typeof m.public !== 'boolean') errors.push('Public must be true or false');
  if (errors.length > 0 || typeof name !== 'string' || typeof m.url !== 'string') return { ok: false, errors };
  // Every App can read metadata; GitHub adds it when a manifest leaves it out.
  permissions.metadata ??= 'read';
  return {
    ok: true,
    app: { name, url: m.url, description: typeof m.description === 'string' ? m.description : '', permissions, events, hook },
    redirectUrl: typeof m.redirect_url === 'string' ? m.redirect_url : undefined,
  };
}

function slugOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, lines: readonly string[]): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1>${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('')}\n`);
}

const FORM_PATH = /^(?:\/organizations\/(?<org>[^/]+))?\/settings\/apps\/new$/;

export function manifestFlow(d: ManifestDeps): ManifestFlow {
  const apps: ManifestApp[] = [];
  const codes = new Map<string, { readonly app: ManifestApp; readonly expiresAt: number }>();
  // Ids of registered Apps: far from the simulator's own App (4242 by default).
  let nextId = 900_001;

  async function handleForm(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const m = FORM_PATH.exec(url.pathname);
    const org = m?.groups?.org === undefined ? undefined : decodeURIComponent(m.groups.org);
    const c = d.ctx();
    if (org !== undefined && org.toLowerCase() !== c.org.toLowerCase()) return page(res, 404, 'Not Found', [`There is no organization ${org}.`]);
    let manifestText: string | null = url.searchParams.get('manifest');
    if (req.method === 'POST') {
      let body: string;
      try {
        body = await readBody(req);
      } catch (err) {
        if (err instanceof BadBody) return page(res, 413, 'Request too large', [err.message]);
        throw err;
      }
      manifestText = new URLSearchParams(body).get('manifest') ?? manifestText;
    } else if (req.method !== 'GET') {
      return page(res, 405, 'Method not allowed', []);
    }
    if (manifestText === null) return page(res, 200, 'Register new GitHub App', ['Post a manifest (the form field "manifest") to register an App from it.']);
    const parsed = parseManifest(manifestText);
    if (!parsed.ok) return page(res, 422, 'Invalid GitHub App configuration', parsed.errors);
    if (apps.some((a) => a.name.toLowerCase() === parsed.app.name.toLowerCase())) return page(res, 422, 'Invalid GitHub App configuration', ['Name is already in use']);
    const id = nextId++;
    const app: ManifestApp = {
      ...parsed.app, id, slug: slugOf(parsed.app.name) || `app-${id}`, owner: org ?? 'octocat',
      webhookSecret: parsed.app.hook === undefined ? null : randomBytes(20).toString('hex'),
      clientId: `Iv23.sim${id}`, clientSecret: randomBytes(20).toString('hex'), createdAt: isoSeconds(d.now()),
    };
    apps.push(app);
    const code = randomBytes(10).toString('hex');
    codes.set(code, { app, expiresAt: d.now() + CODE_TTL_MS });
    const state = url.searchParams.get('state');
    if (parsed.redirectUrl === undefined) {
      // GitHub then shows the new App's settings page; the code is of no use to anyone.
      return page(res, 200, `${app.name} registered`, [`App id ${id}. No redirect_url was given, so nothing collects the code.`]);
    }
    const to = new URL(parsed.redirectUrl);
    to.searchParams.set('code', code);
    if (state !== null) to.searchParams.set('state', state);
    res.writeHead(302, { location: to.toString() });
    res.end();
  }

  async function convert(code: string): Promise<Reply> {
    const entry = codes.get(code);
    if (entry === undefined || entry.expiresAt <= d.now()) {
      codes.delete(code);
      return notFound();
    }
    codes.delete(code); // single use, whatever happens next
    const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const app = entry.app;
    d.converted({ ...app, privateKeyPem: pem, publicKey: publicKeyOf(pem) });
    const c = d.ctx();
    return {
      status: 201,
      body: {
        ...render.app(c),
        id: app.id, slug: app.slug, node_id: Buffer.from(`Integration${app.id}`).toString('base64'), client_id: app.clientId,
        name: app.name, description: app.description, external_url: app.url, html_url: `${c.web}/apps/${app.slug}`,
        created_at: app.createdAt, updated_at: app.createdAt, permissions: app.permissions, events: app.events, installations_count: 0,
        client_secret: app.clientSecret, webhook_secret: app.webhookSecret, pem,
      },
    };
  }

  return {
    isFormPath: (path) => FORM_PATH.test(path),
    handleForm,
    conversion(method, path) {
      const m = /^\/app-manifests\/(?<code>[^/]+)\/conversions$/.exec(path);
      if (m === null) return undefined;
      if (method !== 'POST') return async () => error(404, 'Not Found');
      const code = decodeURIComponent(m.groups?.code ?? '');
      return () => convert(code);
    },
  };
}
