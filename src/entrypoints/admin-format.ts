/**
 * How the operator commands print the daemon's answers for a terminal:
 * aligned tables, ages like "3m12s". Pure; `--json` bypasses all of it,
 * except for console logs, which the daemon sends as bytes: `flint logs
 * --json` turns them into JSON lines here (consoleJsonLines).
 */
import { StringDecoder } from 'node:string_decoder';
import type { DefinitionStatus, FleetView, JobStatusView, LoopView, StatusSnapshot, VmStatus } from '../daemon/status.ts';

/** "850ms", "45s", "3m12s", "2h05m", "3d04h". */
export function age(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function since(at: number | null, now: number): string {
  return at === null ? '-' : `${age(now - at)} ago`;
}

function definitionRow(d: DefinitionStatus, now: number): string[] {
  const r = d.runners;
  const health = d.health.state === 'healthy'
    ? 'healthy'
    : `${d.health.state} (${d.health.consecutiveFailures} failed${d.health.lastError === null ? '' : `, ${d.health.lastError.code}`}${d.health.nextAttemptAt === null ? '' : `, retry in ${age(d.health.nextAttemptAt - now)}`})`;
  return [d.name, d.state, String(d.queued), String(r.starting), String(r.idle), String(r.busy + r.ending), `${d.minIdle}/${d.maxRunners}`, health];
}

export function formatVms(vms: readonly VmStatus[]): string {
  if (vms.length === 0) return 'no live VMs\n';
  return table(['VM', 'DEFINITION', 'STATE', 'RUNNER', 'AGE', 'ADDRESS', 'BOOT', 'JOB'], vms.map((v) => [
    v.id, v.definition, v.state, v.runner ?? '-', age(v.ageMs), v.address ?? '-', age(v.timings.bootMs),
    v.job === null ? '-' : `${v.job.repository} #${v.job.id} ${v.job.name}`,
  ]));
}

export function formatJobs(jobs: readonly JobStatusView[], now: number): string {
  if (jobs.length === 0) return 'no jobs on record\n';
  return table(['JOB', 'REPOSITORY', 'NAME', 'DEFINITION', 'STATUS', 'QUEUED', 'WAIT', 'RUN', 'VM'], jobs.map((j) => [
    String(j.id), j.repository, j.name, j.definition, j.conclusion ?? j.status, since(j.queuedAt, now), age(j.waitMs), age(j.runMs), j.vmId ?? '-',
  ]));
}

/** The fleet's hosts; null is a SQLite store, where this host is the whole fleet. */
export function formatFleet(fleet: FleetView | null): string {
  if (fleet === null) return 'no fleet: the store is SQLite, this host is the whole fleet\n';
  if (fleet.hosts.length === 0) return 'no host on record yet\n';
  const claims = fleet.hosts.some((h) => h.claims !== null);
  const room = fleet.hosts.some((h) => h.room !== null);
  const headers = ['HOST', 'STATE', 'ROLE', 'VCPUS', 'MEMORY', 'VMS', ...(claims ? ['CLAIMS'] : []), ...(room ? ['ROOM'] : []), 'HEARTBEAT', 'ADDRESS'];
  const rows = fleet.hosts.map((h) => {
    const role = [h.leader ? 'leader' : '', h.self ? 'this host' : ''].filter((r) => r !== '').join(', ');
    // The snapshot's time is the heartbeat's plus its age.
    const state = h.lostAt === null ? h.state : `${h.state} (declared ${age(h.lastHeartbeatAt + h.heartbeatAgeMs - h.lostAt)} ago)`;
    return [
      h.id, state, role === '' ? '-' : role, String(h.capacity.vcpus), `${h.capacity.memoryMib} MiB`, String(h.vms),
      ...(claims ? [h.claims === null ? '-' : String(h.claims)] : []), ...(room ? [roomText(h.room)] : []), `${age(h.heartbeatAgeMs)} ago`, h.address ?? '-',
    ];
  });
  const leader = fleet.leader === null ? 'no leader now (the lease lapsed; a host takes it at its next renewal)\n' : '';
  return table(headers, rows) + leader;
}

/** Runners a host could still take, per definition: `small=3,large=0`; `-` when it publishes none. */
function roomText(room: Readonly<Record<string, number>> | null): string {
  if (room === null) return '-';
  const parts = Object.entries(room).sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => `${name}=${n}`);
  return parts.length === 0 ? '-' : parts.join(',');
}

function formatLoops(loops: readonly LoopView[], now: number): string {
  return table(['LOOP', 'STATE', 'EVERY', 'RUNS', 'FAILURES', 'LAST', 'NEXT', 'LAST ERROR'], loops.map((l) => [
    l.name, l.running ? 'running' : l.healthy ? 'ok' : 'FAILING', age(l.intervalMs), String(l.runs), String(l.failures),
    since(l.lastRunAt, now), l.nextRunAt === null ? '-' : `in ${age(l.nextRunAt - now)}`,
    l.lastError === null ? '-' : `${l.lastError.code} ${since(l.lastError.at, now)}`,
  ]));
}

export function formatStatus(s: StatusSnapshot): string {
  const { limit, free } = s.host.capacity;
  const out = [
    `Flint ${s.instanceId}: ${s.host.state}; free for VMs ${free.cpus}/${limit.cpus} vCPUs, ${free.memoryMib}/${limit.memoryMib} MiB`,
    '',
    table(['DEFINITION', 'STATE', 'QUEUED', 'STARTING', 'IDLE', 'BUSY', 'MIN/MAX', 'HEALTH'], s.definitions.map((d) => definitionRow(d, s.at))),
    `VMs (${s.vms.length})`,
    formatVms(s.vms),
    `Recent jobs (${s.jobs.length})`,
    formatJobs(s.jobs.slice(0, 10), s.at),
    'Loops',
    formatLoops(s.loops, s.at),
    ...(s.fleet === null ? [] : [`Fleet (${s.fleet.hosts.length} hosts)`, formatFleet(s.fleet)]),
  ];
  return out.join('\n');
}

/** One console line of `flint logs --json`. */
export interface ConsoleLine {
  readonly vm: string;
  readonly line: string;
}

/**
 * A VM's console bytes, as they come in chunks, to JSON lines: one
 * `{"vm","line"}` object per console line, emitted once the line is whole.
 * A chunk may end inside a line or inside a UTF-8 character; both are held
 * until the rest arrives. The serial console ends lines with CRLF: the CR
 * goes. `end()` gives the last line when the log does not end with one.
 */
export function consoleJsonLines(vm: string): { push(chunk: Buffer): string; end(): string } {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const emit = (lines: readonly string[]): string => lines.map((l) => `${JSON.stringify({ vm, line: l.endsWith('\r') ? l.slice(0, -1) : l } satisfies ConsoleLine)}\n`).join('');
  return {
    push(chunk) {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      return emit(lines);
    },
    end() {
      const rest = partial + decoder.end();
      partial = '';
      return rest === '' ? '' : emit([rest]);
    },
  };
}
