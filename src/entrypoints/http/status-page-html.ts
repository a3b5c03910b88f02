/**
 * The status page itself: one HTML document, its style and script inline.
 * The Content-Security-Policy allows exactly these two by their SHA-256
 * hashes and nothing else (no other origin, no image, no frame, no form),
 * so even a string that slipped past the rendering could run nothing.
 *
 * The script builds every cell with textContent, never with HTML: job and
 * repository names come from GitHub, i.e. from anyone who can push a
 * workflow. It listens to /api/events (EventSource reconnects by itself)
 * and fetches a VM's console tail when its "console" button is pressed,
 * again every snapshot while that VM is shown.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light; --fg: #1b2330; --muted: #5b6675; --line: #d5dbe3; --bg: #f4f6f9; --card: #fff;
  --ok: #1f7a3d; --warn: #a56400; --bad: #b3261e; --accent: #2456a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: baseline; padding: .8em 1.2em; background: #16233a; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
header .live { margin-left: auto; }
.dot { display: inline-block; width: .7em; height: .7em; border-radius: 50%; background: var(--bad); margin-right: .35em; }
.dot.on { background: #3ccf6e; }
main { padding: 1em 1.2em; display: grid; gap: 1em; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em; overflow-x: auto; }
h2 { font-size: 1em; margin: .2em 0 .5em; color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; }
td.wrap { white-space: normal; word-break: break-word; }
.state-up, .state-active, .state-success, .state-healthy, .state-running, .state-true { color: var(--ok); font-weight: 600; }
.state-late, .state-paused, .state-backing-off, .state-queued, .state-in_progress, .state-booting, .state-starting { color: var(--warn); font-weight: 600; }
.state-lost, .state-unhealthy, .state-failure, .state-cancelled, .state-false, .state-failed { color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
button { font: inherit; padding: .1em .6em; border: 1px solid var(--accent); background: #fff; color: var(--accent); border-radius: 4px; cursor: pointer; }
pre { margin: 0; max-height: 24em; overflow: auto; background: #0f1622; color: #d8e1ee; padding: .6em; border-radius: 4px; font: 12px/1.35 ui-monospace, monospace; white-space: pre-wrap; }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
let consoleVm = null;
let shownVm = null;
function ms(v) {
  if (v === null || v === undefined) return '–';
  if (v < 1000) return v + ' ms';
  if (v < 120000) return (v / 1000).toFixed(1) + ' s';
  if (v < 7200000) return Math.round(v / 60000) + ' min';
  return (v / 3600000).toFixed(1) + ' h';
}
function time(at) { return at === null || at === undefined ? '–' : new Date(at).toLocaleTimeString(); }
function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '–' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function stateCell(row, state) { return cell(row, state, 'state-' + String(state)); }
function fill(id, items, columns, draw) {
  const body = $(id).querySelector('tbody');
  body.replaceChildren();
  if (items.length === 0) {
    const row = body.insertRow();
    const td = cell(row, 'none', 'empty');
    td.colSpan = columns;
    return;
  }
  for (const item of items) draw(body.insertRow(), item);
}
function consoleButton(row, vmId) {
  const td = document.createElement('td');
  if (vmId) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'console';
    b.dataset.vm = vmId;
    b.addEventListener('click', () => { consoleVm = vmId; loadConsole(); });
    td.appendChild(b);
  }
  row.appendChild(td);
}
async function loadConsole() {
  if (consoleVm === null) return;
  const vm = consoleVm;
  $('console-vm').textContent = vm;
  try {
    const r = await fetch('api/vms/' + encodeURIComponent(vm) + '/log', { credentials: 'same-origin' });
    const text = await r.text();
    if (consoleVm !== vm) return;
    const pre = $('console');
    // Follow the end, unless the reader scrolled up in this VM's output.
    const atEnd = shownVm !== vm || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = r.ok ? (text === '' ? '(no output yet)' : text) : text;
    shownVm = vm;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  } catch (e) {
    $('console').textContent = 'console unavailable: ' + e;
  }
}
function render(s) {
  $('instance').textContent = s.instanceId;
  const host = $('host-state');
  host.textContent = s.host.state;
  host.className = 'state-' + s.host.state;
  const c = s.host.capacity;
  $('capacity').textContent = (c.limit.cpus - c.free.cpus) + '/' + c.limit.cpus + ' vCPU, ' +
    (c.limit.memoryMib - c.free.memoryMib) + '/' + c.limit.memoryMib + ' MiB in use';
  $('updated').textContent = time(s.at);
  fill('definitions', s.definitions, 9, (row, d) => {
    row.dataset.name = d.name;
    cell(row, d.name);
    cell(row, d.labels.join(', '), 'wrap');
    stateCell(row, d.state);
    cell(row, d.queued);
    cell(row, d.runners.starting);
    cell(row, d.runners.idle);
    cell(row, d.runners.busy);
    cell(row, d.minIdle + ' / ' + d.maxRunners);
    const e = d.health.lastError;
    cell(row, d.health.state + (d.health.consecutiveFailures > 0 ? ' (' + d.health.consecutiveFailures + ' failed)' : '') +
      (e ? ': ' + e.code + ' ' + e.message : '') + (d.health.nextAttemptAt ? ', retry ' + time(d.health.nextAttemptAt) : ''), 'wrap');
  });
  fill('vms', s.vms, 10, (row, v) => {
    row.dataset.id = v.id;
    cell(row, v.id);
    cell(row, v.definition);
    stateCell(row, v.state);
    cell(row, v.runner);
    cell(row, v.address);
    cell(row, ms(v.ageMs));
    cell(row, v.job ? v.job.repository : null, 'wrap');
    cell(row, v.job ? v.job.name : null, 'wrap');
    cell(row, 'prepare ' + ms(v.timings.prepareMs) + ', boot ' + ms(v.timings.bootMs) + ', runner ' + ms(v.timings.runnerStartMs));
    consoleButton(row, v.id);
  });
  fill('jobs', s.jobs, 9, (row, j) => {
    row.dataset.id = String(j.id);
    cell(row, j.id);
    cell(row, j.repository, 'wrap');
    cell(row, j.name, 'wrap');
    cell(row, j.definition);
    stateCell(row, j.conclusion || j.status);
    cell(row, time(j.queuedAt));
    cell(row, ms(j.waitMs));
    cell(row, ms(j.runMs));
    consoleButton(row, j.vmId);
  });
  fill('loops', s.loops, 6, (row, l) => {
    row.dataset.name = l.name;
    cell(row, l.name);
    stateCell(row, l.healthy ? 'healthy' : 'unhealthy');
    cell(row, ms(l.intervalMs));
    cell(row, l.runs + ' runs, ' + l.failures + ' failed');
    cell(row, time(l.lastRunAt));
    cell(row, l.lastError ? l.lastError.code + ' ' + l.lastError.message : '', 'wrap');
  });
  // No fleet (SQLite store): this host is the whole fleet and the section stays hidden.
  $('fleet-section').hidden = s.fleet === null;
  const hosts = s.fleet === null ? [] : s.fleet.hosts;
  $('fleet-leader').textContent = s.fleet === null ? '' : s.fleet.leader === null ? '(no leader now)' : '(leader: ' + s.fleet.leader + ')';
  fill('fleet', hosts, 9, (row, h) => {
    row.dataset.id = h.id;
    cell(row, h.id);
    stateCell(row, h.state);
    cell(row, [h.leader ? 'leader' : '', h.self ? 'this host' : ''].filter((r) => r !== '').join(', '));
    cell(row, h.capacity.vcpus + ' vCPU, ' + h.capacity.memoryMib + ' MiB');
    cell(row, h.vms);
    cell(row, h.claims);
    cell(row, h.room === null ? '' : Object.keys(h.room).sort().map((name) => name + ' ' + h.room[name]).join(', '), 'wrap');
    cell(row, ms(h.heartbeatAgeMs) + ' ago' + (h.lostAt === null ? '' : ', lost at ' + time(h.lostAt)));
    cell(row, h.address, 'wrap');
  });
  loadConsole();
}
function connect() {
  const events = new EventSource('api/events');
  events.addEventListener('open', () => { $('live').className = 'dot on'; $('live-text').textContent = 'live'; });
  events.addEventListener('error', () => { $('live').className = 'dot'; $('live-text').textContent = 'reconnecting'; });
  events.addEventListener('status', (e) => { render(JSON.parse(e.data)); });
}
connect();
`;

function hash(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** Only the inline style and script (by hash), and requests to this origin. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'", `style-src ${hash(STYLE)}`, `script-src ${hash(SCRIPT)}`, "connect-src 'self'",
  "img-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

function table(id: string, title: string, heads: readonly string[]): string {
  return `<section><h2>${title}</h2><table id="${id}"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody></tbody></table></section>`;
}

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flint status</title><style>${STYLE}</style></head>
<body>
<header><h1>Flint <span id="instance"></span></h1><span>host: <span id="host-state">connecting…</span></span>
<span id="capacity"></span><span>updated <span id="updated">–</span></span>
<span class="live"><span id="live" class="dot"></span><span id="live-text">connecting</span></span></header>
<main>
${table('definitions', 'Runner definitions', ['definition', 'labels', 'state', 'queued', 'starting', 'idle', 'busy', 'min idle / max', 'health'])}
${table('vms', 'Live VMs', ['VM', 'definition', 'phase', 'runner', 'address', 'age', 'repository', 'job', 'timings', ''])}
${table('jobs', 'Recent jobs', ['job', 'repository', 'name', 'definition', 'outcome', 'queued', 'wait', 'run', ''])}
<section id="fleet-section" hidden><h2>Fleet <span id="fleet-leader"></span></h2><table id="fleet"><thead><tr>${
  ['host', 'state', 'role', 'capacity', 'VMs', 'claims', 'room', 'heartbeat', 'address'].map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody></tbody></table></section>
${table('loops', 'Loops', ['loop', 'health', 'interval', 'passes', 'last pass', 'last error'])}
<section><h2>Console <span id="console-vm">(press "console" on a VM or job)</span></h2><pre id="console"></pre></section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
