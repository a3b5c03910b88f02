/**
 * `flint app create` end to end against the GitHub simulator: the page
 * served on loopback, its form posted to the simulator's App-registration
 * endpoint as a browser would, the redirect followed back, the code
 * converted, the configuration written — and the written configuration
 * then used for real: loaded by loadConfigFile, and a GitHub client made
 * from it authenticates as the new App.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../../../tools/github-sim/index.ts';
import { loadSpecChecker } from '../../../tools/github-sim/openapi-check.ts';
import { loadConfigFile } from '../../config/load.ts';
import { createGitHubClient } from '../../adapters/github/client.ts';
import { appCreate, resolveOptions, type AppCreateOptions } from './app-create.ts';
import type { CommandIo } from '../io.ts';
import { isFlintError } from '../../core/errors/index.ts';

const CONFIG = `# Flint on ci-01
logLevel: info   # keep this comment
networks:
  - name: br-flint
    v4: 10.99.0.1/24
github:
  appID: 1 # Settings → Developer settings → GitHub Apps
  organization: acme
  webhookSecret: old-secret
  previousWebhookSecret: older-secret
  privateKey: |
    -----BEGIN RSA PRIVATE KEY-----
    old
    -----END RSA PRIVATE KEY-----
runners:
  - name: small
    labels: [flint]
    kernel: /var/lib/flint/vmlinux
    filesystem: /var/lib/flint/rootfs.ext4
    hypervisor: qemu
`;

interface Run {
  readonly io: CommandIo;
  readonly out: () => string;
  readonly err: () => string;
  /** Resolves with the page URL once the command printed it. */
  readonly pageUrl: Promise<string>;
}

function capture(): Run {
  const out: string[] = [];
  const err: string[] = [];
  let found: (u: string) => void = () => {};
  const pageUrl = new Promise<string>((r) => { found = r; });
  return {
    io: {
      stdout: { write: (s: string) => { out.push(s); const m = /open (http:\/\/\S+) in a browser/.exec(s); if (m?.[1] !== undefined) found(m[1]); } },
      stderr: { write: (s: string) => err.push(s) },
      env: {},
    },
    out: () => out.join(''),
    err: () => err.join(''),
    pageUrl,
  };
}

function unescapeHtml(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
}

/** What a browser does with the page: read the form, post its fields to its action. Returns GitHub's answer (not followed). */
async function submitPage(pageUrl: string): Promise<{ res: Response; manifest: Record<string, unknown> }> {
  const page = await (await fetch(pageUrl)).text();
  const action = /<form method="post" action="([^"]+)">/.exec(page)?.[1];
  const value = /name="manifest" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(action !== undefined && value !== undefined, `the page holds the manifest form:\n${page}`);
  assert.doesNotMatch(page, /<script[^>]+src=/, 'no external script');
  const manifestText = unescapeHtml(value);
  const res = await fetch(unescapeHtml(action), {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ manifest: manifestText }).toString(),
  });
  return { res, manifest: JSON.parse(manifestText) as Record<string, unknown> };
}

function setup(t: { after: (fn: () => Promise<void> | void) => void }, sim: Simulator, text: string | undefined): { dir: string; file: string; options: AppCreateOptions } {
  const dir = mkdtempSync(join(tmpdir(), 'flint-app-create-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  if (text !== undefined) writeFileSync(file, text, { mode: 0o644 });
  const options: AppCreateOptions = {
    org: sim.org, configFile: file, webhookUrl: 'https://flint.example.com/webhook', host: '127.0.0.1', port: 0,
    name: 'Flint runners acme', githubUrl: sim.apiUrl, apiUrl: sim.apiUrl,
  };
  return { dir, file, options };
}

test('the manifest flow registers the App and writes a configuration Flint loads and authenticates with', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const oldAppId = sim.appId;
  const { file, options } = setup(t, sim, CONFIG);
  const run = capture();
  const done = appCreate(options, run.io);

  const { res, manifest } = await submitPage(await run.pageUrl);
  assert.deepEqual(manifest.default_permissions, { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' });
  assert.deepEqual(manifest.default_events, ['workflow_job']);
  assert.deepEqual(manifest.hook_attributes, { url: 'https://flint.example.com/webhook', active: true });
  assert.equal(manifest.public, false);
  assert.equal(res.status, 302, 'GitHub sends the browser back');
  const back = new URL(res.headers.get('location') ?? '');
  assert.ok(back.searchParams.get('code'));
  const callback = await fetch(back);
  assert.equal(callback.status, 200, await callback.text());
  assert.equal(await done, 0, run.err());

  assert.notEqual(sim.appId, oldAppId, 'the simulator now answers as the registered App');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^# Flint on ci-01$/m, 'comments kept');
  assert.match(text, /logLevel: info +# keep this comment/);
  assert.match(text, /name: small/);
  assert.match(text, /labels: \[flint\]/, 'flow lists as written');
  assert.match(text, /appID: \d+ # Settings → Developer settings → GitHub Apps/);
  assert.doesNotMatch(text, /previousWebhookSecret|old-secret/);
  assert.deepEqual(readdirSync(join(file, '..')), ['config.yaml'], 'no temporary file left');

  const config = loadConfigFile(file, {}, { hostname: 'ci-01' });
  assert.equal(config.github.appId, String(sim.appId));
  assert.equal(config.github.organization, 'acme');
  assert.equal(config.github.apiUrl, sim.apiUrl);
  assert.equal(config.github.privateKey, sim.privateKeyPem);
  assert.equal(config.github.webhookSecrets.length, 1);
  assert.equal(config.runners.length, 1);

  const github = createGitHubClient({ github: config.github });
  t.after(() => github.close());
  assert.equal(await github.installationId(), sim.installationId);
  assert.deepEqual((await github.listRunnerGroups()).map((g) => g.name), ['Default']);
  assert.match(run.out(), new RegExp(`next: install the App on acme: ${sim.apiUrl}/apps/flint-runners-acme/installations/new`));
});

test('a callback with the wrong state is refused and nothing is written; the run can still finish', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { file, options } = setup(t, sim, CONFIG);
  const run = capture();
  const stop = new AbortController();
  const done = appCreate(options, run.io, { signal: stop.signal });
  const { res } = await submitPage(await run.pageUrl);
  const back = new URL(res.headers.get('location') ?? '');
  const forged = new URL(back);
  forged.searchParams.set('state', 'f'.repeat(40));
  assert.equal((await fetch(forged)).status, 400);
  const noState = new URL(back);
  noState.searchParams.delete('state');
  assert.equal((await fetch(noState)).status, 400);
  assert.match(run.err(), /state does not match/);
  assert.equal(readFileSync(file, 'utf8'), CONFIG, 'nothing written');
  assert.equal(statSync(file).mode & 0o777, 0o644);
  assert.equal((await fetch(back)).status, 200, 'the genuine callback still works');
  assert.equal(await done, 0, run.err());
  assert.match(readFileSync(file, 'utf8'), new RegExp(`appID: ${sim.appId}`));
});

test('stopped before GitHub answers (Ctrl-C): exit 130, nothing written, the port closed', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { file, options } = setup(t, sim, CONFIG);
  const run = capture();
  const stop = new AbortController();
  const done = appCreate(options, run.io, { signal: stop.signal });
  const url = await run.pageUrl;
  stop.abort();
  assert.equal(await done, 130);
  assert.equal(readFileSync(file, 'utf8'), CONFIG);
  await assert.rejects(fetch(url), 'nothing listens any more');
});

test('a code GitHub no longer converts (used, expired) fails with FLINT_ERR_GITHUB_APP_MANIFEST_FAILED and writes nothing', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { file, options } = setup(t, sim, CONFIG);
  const run = capture();
  const done = appCreate(options, run.io);
  const { res } = await submitPage(await run.pageUrl);
  const back = new URL(res.headers.get('location') ?? '');
  // Someone else spent the code first.
  assert.equal((await fetch(`${sim.apiUrl}/app-manifests/${back.searchParams.get('code') ?? ''}/conversions`, { method: 'POST' })).status, 201);
  const failed = assert.rejects(done, (err: unknown) => isFlintError(err, 'FLINT_ERR_GITHUB_APP_MANIFEST_FAILED') && /404/.test(err.message));
  assert.equal((await fetch(back)).status, 502);
  await failed;
  assert.equal(readFileSync(file, 'utf8'), CONFIG);
});

test('GitHub out of reach during the exchange: the error says it could not be reached (not "answered 500") and nothing is written', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { file, options } = setup(t, sim, CONFIG);
  // A loopback port nothing listens on: the connection is refused, as on a host without a way to GitHub.
  const closed = createNetServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const { port } = closed.address() as AddressInfo; // listening on a TCP port: an AddressInfo
  await new Promise<void>((r) => closed.close(() => r()));
  const apiUrl = `http://127.0.0.1:${port}`;
  const run = capture();
  const done = appCreate({ ...options, apiUrl }, run.io);
  const { res } = await submitPage(await run.pageUrl);
  const failed = assert.rejects(done, (err: unknown) => isFlintError(err, 'FLINT_ERR_GITHUB_APP_MANIFEST_FAILED')
    && err.message.includes(`GitHub could not be reached at ${apiUrl}`) && !/answered/.test(err.message));
  assert.equal((await fetch(new URL(res.headers.get('location') ?? ''))).status, 502);
  await failed;
  assert.equal(readFileSync(file, 'utf8'), CONFIG);
});

test('the page refuses a Host that is not loopback (DNS rebinding) and carries no external script', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { options } = setup(t, sim, CONFIG);
  const run = capture();
  const stop = new AbortController();
  const done = appCreate(options, run.io, { signal: stop.signal });
  const url = new URL(await run.pageUrl);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: '/', headers: { host: `evil.example:${url.port}` } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 421);
  const page = await fetch(url);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'sha256-/);
  assert.match(await page.text(), /<script>document\.forms\[0\]\.submit\(\);<\/script>/);
  stop.abort();
  assert.equal(await done, 130);
});

test('a new configuration file, in a directory a fresh host does not have yet (/etc/flint): both made, the file holds the github section, 0600', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const { dir, options: base } = setup(t, sim, undefined);
  const file = join(dir, 'etc', 'flint', 'config.yaml');
  const options = { ...base, configFile: file };
  const run = capture();
  const done = appCreate(options, run.io);
  const { res } = await submitPage(await run.pageUrl);
  await (await fetch(res.headers.get('location') ?? '')).text();
  assert.equal(await done, 0, run.err());
  assert.equal(statSync(join(dir, 'etc', 'flint')).mode & 0o777, 0o700, 'the directory holds the App\'s key');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  assert.match(text, /flint app create` wrote the github section/);
  assert.match(text, new RegExp(`appID: ${sim.appId}`));
  assert.match(text, /privateKey: \|/);
});

test('the simulator: codes work once, bad manifests are refused as GitHub does, the conversion matches the published description', async (t) => {
  const sim = await startSimulator();
  t.after(() => sim.close());
  const form = (manifest: unknown, org = 'acme'): Promise<Response> => fetch(`${sim.apiUrl}/organizations/${org}/settings/apps/new?state=s1`, {
    method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ manifest: JSON.stringify(manifest) }).toString(),
  });
  const good = { name: 'x-app', url: 'https://example.com', hook_attributes: { url: 'https://example.com/webhook' }, redirect_url: 'http://127.0.0.1:1/cb', default_permissions: { actions: 'read' }, default_events: ['workflow_job'] };
  assert.equal((await form({ ...good, name: undefined })).status, 422);
  assert.equal((await form({ ...good, name: 'n'.repeat(35) })).status, 422);
  assert.equal((await form({ ...good, url: undefined })).status, 422);
  assert.equal((await form({ ...good, hook_attributes: {} })).status, 422);
  assert.match(await (await form({ ...good, default_permissions: {} })).text(), /Default events unsupported: workflow_job/);
  assert.equal((await form({ ...good, default_permissions: { runners: 'write' } })).status, 422);
  assert.equal((await form(good, 'other')).status, 404);

  const res = await form(good);
  assert.equal(res.status, 302);
  const back = new URL(res.headers.get('location') ?? '');
  assert.equal(back.origin + back.pathname, 'http://127.0.0.1:1/cb');
  assert.equal(back.searchParams.get('state'), 's1');
  assert.equal((await form(good)).status, 422, 'names are unique');
  const code = back.searchParams.get('code') ?? '';
  const conversion = await fetch(`${sim.apiUrl}/app-manifests/${code}/conversions`, { method: 'POST' });
  assert.equal(conversion.status, 201);
  const body = await conversion.json() as Record<string, unknown>;
  const spec = loadSpecChecker();
  const schema = spec.responseSchema('POST', '/app-manifests/{code}/conversions', 201);
  assert.ok(schema);
  assert.deepEqual(spec.check(schema, body).errors, []);
  assert.deepEqual(body.permissions, { actions: 'read', metadata: 'read' });
  assert.equal(body.id, sim.appId);
  assert.equal(body.pem, sim.privateKeyPem);
  assert.equal((await fetch(`${sim.apiUrl}/app-manifests/${code}/conversions`, { method: 'POST' })).status, 404, 'a code works once');
  assert.equal((await fetch(`${sim.apiUrl}/app-manifests/nope/conversions`, { method: 'POST' })).status, 404);
});

test('the simulator: a manifest code expires one hour after GitHub sent it', async (t) => {
  let clock = Date.now();
  const sim = await startSimulator({ now: () => clock });
  t.after(() => sim.close());
  const manifest = { name: 'late-app', url: 'https://example.com', redirect_url: 'http://127.0.0.1:1/cb' };
  const res = await fetch(`${sim.apiUrl}/settings/apps/new`, {
    method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ manifest: JSON.stringify(manifest) }).toString(),
  });
  assert.equal(res.status, 302);
  const code = new URL(res.headers.get('location') ?? '').searchParams.get('code') ?? '';
  clock += 3_600_000;
  assert.equal((await fetch(`${sim.apiUrl}/app-manifests/${code}/conversions`, { method: 'POST' })).status, 404);
});

test('options: the organization and API come from the file, the listener must be loopback', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-app-create-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'address: flint.example.org:443\ngithub:\n  organization: widgets\n  apiUrl: https://ghes.example.org/api/v3/\n');
  const r = resolveOptions(['--config', file, '--github-url', 'https://ghes.example.org'], {});
  assert.ok(!r.help);
  assert.equal(r.options.org, 'widgets');
  assert.equal(r.options.apiUrl, 'https://ghes.example.org/api/v3');
  assert.equal(r.options.webhookUrl, 'https://flint.example.org/webhook');
  assert.equal(r.options.port, 8917);
  const ghes = resolveOptions(['--config', join(dir, 'missing.yaml'), '--org', 'w', '--webhook-url', 'https://f/webhook', '--github-url', 'https://ghes.example.org/'], {});
  assert.ok(!ghes.help);
  assert.equal(ghes.options.apiUrl, 'https://ghes.example.org/api/v3');
  assert.throws(() => resolveOptions(['--config', file, '--listen', '0.0.0.0:8917'], {}), /loopback/);
  assert.throws(() => resolveOptions(['--config', join(dir, 'missing.yaml')], {}), /--org is needed/);
  assert.throws(() => resolveOptions(['--config', file, '--name', 'n'.repeat(35)], {}), /34/);
});
