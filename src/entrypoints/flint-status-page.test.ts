/**
 * The status page in a real browser (Debian's chromium, driven by
 * playwright-core) against a Flint running a real job: QEMU guests from the
 * test image, the GitHub simulator in its namespace (test/helpers/e2e-flint.ts).
 * The page's listener is on a non-loopback address, so it asks for its
 * token. The listener alone, with fakes, is http/status-page.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { startE2eFlint, until } from '../../test/helpers/e2e-flint.ts';
import { program, requirePrereqs } from '../../test/helpers/prereq.ts';
import { decodePng, rendering } from '../../test/helpers/png.ts';
import type { Rendering } from '../../test/helpers/png.ts';

const MINUTES = 60_000;
const TOKEN = 'e2e-status-token-0123456789';
/** Job names come from GitHub: anyone who can push a workflow picks them. */
const XSS_NAME = 'build <img src=x onerror="window.flintXss=1"> & <b>bold</b>';

function status(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A page that rendered: many colours, ink over a good part of it, and the styling's colours (not black text on white). */
function looksRendered(r: Rendering): boolean {
  return r.colours >= 30 && r.inked >= 0.05 && r.coloured >= 0.02;
}

async function shot(page: Page): Promise<Rendering> {
  return rendering(decodePng(await page.screenshot({ type: 'png', fullPage: false })));
}

/**
 * Waits until the text of the cells under `selector` satisfies `check`; the
 * page updates itself (string predicates would need eval, which the page's
 * CSP forbids, so the test polls from here).
 */
async function untilCells(page: Page, what: string, selector: string, timeout: number, check: (cells: string[]) => boolean): Promise<void> {
  await until(what, timeout, async () => check(await page.$$eval(selector, (els) => els.map((el) => el.textContent ?? ''))));
}

/** The text of a row's cells. */
function rowText(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(`${selector} td`, (tds) => tds.map((td) => td.textContent ?? ''));
}

test('the status page shows a real job live in Chromium: definition, its VM while it runs (no reload), console output, then the job finished with timings; names stay text; 401 without the token', { timeout: 6 * MINUTES }, async (t) => {
  if (!requirePrereqs(t, program('chromium'))) return;
  const e2e = await startE2eFlint(t, {
    org: 'flint-status', instanceId: 'stpg', bridge: 'br-flint-stpg', gateway: '10.216.7.1', jobSeconds: 12,
    status: { address: 'HOST:0', token: TOKEN },
  });
  if (e2e === undefined) return;
  const { sim, flint } = e2e;
  const base = flint.statusUrl;
  assert.ok(base !== undefined, 'the status page listens');
  assert.doesNotMatch(new URL(base).hostname, /^127\./, 'a non-loopback address');

  // Without the token nothing is served.
  for (const path of ['/', '/api/status', '/api/events']) assert.equal((await status(`${base}${path}`)).status, 401, path);
  assert.equal((await status(`${base}/api/status`, { authorization: `Bearer ${TOKEN}` })).status, 200);

  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

  await page.goto(`${base}/?token=${TOKEN}`);
  assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
  await page.waitForSelector('#definitions tr[data-name="demo"]');
  const def = await rowText(page, '#definitions tr[data-name="demo"]');
  assert.equal(def[0], 'demo');
  assert.match(def[1] ?? '', /self-hosted/);
  assert.equal(def[2], 'active');
  await page.waitForSelector('#loops tr[data-name="scale"]');
  await page.waitForSelector('#live.on');
  const navigatedBefore = navigations;

  const { jobId } = await sim.queueJob({ repo: 'app', labels: ['self-hosted', 'linux'], name: XSS_NAME });
  // The VM appears, running the job, without a reload.
  const vmRow = '#vms tr[data-id]';
  await untilCells(page, 'the VM running the job on the page', '#vms tr[data-id] td', 3 * MINUTES, (cells) => cells.includes(XSS_NAME)).catch(async (err: unknown) => {
    // What the page, Flint and the simulator saw, to tell a slow boot from a page that stopped updating.
    t.diagnostic(`page VM cells: ${JSON.stringify(await page.$$eval('#vms tr[data-id] td', (els) => els.map((el) => el.textContent ?? '')))}; live: ${String(await page.$('#live.on') !== null)}`);
    t.diagnostic(`Flint's VMs: ${JSON.stringify(flint.supervisor.list().map((vm) => vm.id))}; the job: ${JSON.stringify(sim.jobs().find((j) => j.id === jobId))}`);
    t.diagnostic(`Flint's log (tail): ${e2e.logText().slice(-3000)}`);
    throw err;
  });
  const vm = await rowText(page, vmRow);
  const vmId = await page.getAttribute(vmRow, 'data-id');
  assert.ok(vmId !== null && flint.supervisor.list().some((v) => v.id === vmId), `the row is a live VM: ${String(vmId)}`);
  assert.equal(vm[1], 'demo');
  assert.match(vm[4] ?? '', /^10\.216\.7\.\d+\b/, 'its address');
  assert.match(vm[6] ?? '', /app$/, 'its repository');
  assert.match(vm[8] ?? '', /boot \d/, 'its boot time');

  // Its console, from the page's button: the guest's own markers.
  await page.click(`${vmRow} button[data-vm="${vmId}"]`);
  await untilCells(page, 'the console tail on the page', '#console', MINUTES, (text) => text.some((t) => t.includes('FLINT-MARKER booted')));

  const running = await shot(page);
  assert.ok(looksRendered(running), `the page is rendered: ${JSON.stringify(running)}`);

  // The job ends: the VM leaves the page and the job shows finished, with its timings.
  const jobRow = `#jobs tr[data-id="${jobId}"]`;
  await untilCells(page, 'the job finished on the page', `${jobRow} td`, 3 * MINUTES, (cells) => cells[4] === 'success');
  await untilCells(page, 'the VM gone from the page', '#vms tr[data-id]', MINUTES, (rows) => rows.length === 0);
  const job = await rowText(page, jobRow);
  assert.equal(job[2], XSS_NAME, 'the name is shown as text, markup and all');
  assert.match(job[6] ?? '', /\d/, `a wait time: ${JSON.stringify(job)}`);
  assert.match(job[7] ?? '', /\d+(\.\d)? s/, `a run time of seconds: ${JSON.stringify(job)}`);
  assert.equal(navigations, navigatedBefore, 'no reload: everything came over the event stream');

  // Nothing from GitHub became markup or ran.
  assert.equal(await page.locator('img, b').count(), 0, 'no element made from a job name');
  assert.equal(await page.evaluate(() => typeof (globalThis as { flintXss?: unknown }).flintXss), 'undefined');
  assert.deepEqual(problems, [], 'no script error, no CSP violation');

  // No secret on any surface of the page.
  const auth = { authorization: `Bearer ${TOKEN}` };
  const surfaces = [
    await page.content(),
    (await status(`${base}/api/status`, auth)).body,
    (await status(`${base}/api/vms/${vmId}/log`, auth)).body,
  ];
  const pemLine = e2e.config.github.privateKey.split('\n').find((l) => l.length > 40) ?? 'no-pem-line';
  for (const text of surfaces) {
    for (const secret of [e2e.secret, TOKEN, pemLine]) assert.ok(!text.includes(secret), 'a secret on the status page');
    assert.doesNotMatch(text, /encoded_jit_config|BEGIN [A-Z ]*PRIVATE KEY/);
  }
  assert.doesNotMatch(surfaces[1] ?? '', /jit|secret|token|private/i, 'no field of the snapshot is named like a secret');

  // A blank page or one without its style fails the same check.
  await page.setContent('<!doctype html><html><body></body></html>');
  assert.ok(!looksRendered(await shot(page)), 'a blank page is caught');
  await page.goto(`${base}/`);
  await page.waitForSelector('#jobs tr[data-id]');
  await page.$$eval('style', (styles) => { for (const style of styles) style.remove(); });
  assert.ok(!looksRendered(await shot(page)), 'an unstyled page is caught');
});
