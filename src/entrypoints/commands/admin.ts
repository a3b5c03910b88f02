/**
 * The operator commands, each a client of the running daemon's admin
 * socket (entrypoints/http/admin.ts): `flint status`, `flint vms`,
 * `flint hosts`, `flint jobs`, `flint logs`, `flint drain` and `flint resume`. Each prints
 * a table for a terminal, or with `--json` the daemon's answer as it is;
 * `flint logs` prints the console as it is, or with `--json` JSON lines.
 *
 *   exit 0  done
 *   exit 1  no daemon on the socket, no permission on it, or a refusal
 *   exit 2  bad usage
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../../config/values.ts';
import { FlintError } from '../../core/errors/index.ts';
import type { PausedView } from '../../daemon/scheduler.ts';
import type { FleetView, JobStatusView, StatusSnapshot, VmStatus } from '../../daemon/status.ts';
import type { CommandIo } from '../io.ts';
import { adminCall, adminSocket, adminStream, DEFAULT_ADMIN_SOCKET } from '../admin-client.ts';
import { consoleJsonLines, formatFleet, formatJobs, formatStatus, formatVms } from '../admin-format.ts';

export interface AdminCommand {
  readonly HELP: string;
  run(argv: string[], io: CommandIo): Promise<number>;
}

const COMMON = `  --socket PATH   the daemon's admin socket (default $FLINT_ADMIN_SOCKET or ${DEFAULT_ADMIN_SOCKET})
  --json          print the daemon's JSON answer instead of a table
  -h, --help      this text

Needs root, or membership of the group named by admin.group in the configuration.
See docs/operations.md, "Operating a running Flint".
`;

const COMMON_OPTIONS = {
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function json(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const status: AdminCommand = {
  HELP: `Usage: flint status [--json] [--socket PATH]

What the running Flint is doing: each runner definition with its queued
jobs, runners, limits and launch health; live VMs; recent jobs; the loops;
on a PostgreSQL store, the fleet's hosts (see flint hosts).

${COMMON}`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: COMMON_OPTIONS, strict: true, allowPositionals: false });
    if (values.help === true) return help(io, status.HELP);
    const snapshot = await adminCall(adminSocket(values.socket, io.env), 'GET', '/status') as StatusSnapshot; // the daemon's /status answer
    if (values.json === true) json(io, snapshot);
    else io.stdout.write(formatStatus(snapshot));
    return 0;
  },
};

export const vms: AdminCommand = {
  HELP: `Usage: flint vms [--json] [--socket PATH]

Live VMs: definition, state, runner phase, age, guest address, boot time and
the job its runner runs.

${COMMON}`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: COMMON_OPTIONS, strict: true, allowPositionals: false });
    if (values.help === true) return help(io, vms.HELP);
    const list = await adminCall(adminSocket(values.socket, io.env), 'GET', '/vms') as VmStatus[]; // the daemon's /vms answer
    if (values.json === true) json(io, list);
    else io.stdout.write(formatVms(list));
    return 0;
  },
};

export const hosts: AdminCommand = {
  HELP: `Usage: flint hosts [--json] [--socket PATH]

The hosts of the fleet sharing this Flint's PostgreSQL store: address,
capacity, live VMs, claimed jobs, last heartbeat and state (up; late: no
heartbeat for two intervals; lost: none for the host-lost timeout), which
host leads the fleet's loops and which one answers. On a SQLite store this
host is the whole fleet: it says so (--json: null).

${COMMON}`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: COMMON_OPTIONS, strict: true, allowPositionals: false });
    if (values.help === true) return help(io, hosts.HELP);
    const fleet = await adminCall(adminSocket(values.socket, io.env), 'GET', '/hosts') as FleetView | null; // the daemon's /hosts answer
    if (values.json === true) json(io, fleet);
    else io.stdout.write(formatFleet(fleet));
    return 0;
  },
};

/** `--since`: a duration back from now ("90m", "2h", "1d") or a date-time ("2026-11-30T12:00:00Z"). */
export function parseSince(value: string, now: number): number {
  const d = parseDuration(value);
  if (d.ok) return now - d.value * 1000;
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(t)) return t;
  throw new FlintError('FLINT_ERR_USAGE', `--since "${value}" is neither a duration ("90m", "2h", "1d") nor a date-time ("2026-11-30T12:00:00Z")`);
}

export const jobs: AdminCommand = {
  HELP: `Usage: flint jobs [--since DURATION|TIME] [--json] [--socket PATH]

Jobs on record, newest first: repository, definition, outcome, how long each
waited for a runner and ran, and the VM that ran it.

  --since X       only jobs first seen in the last X ("90m", "2h", "1d") or since
                  a date-time ("2026-11-30T12:00:00Z")
${COMMON}`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, since: { type: 'string' } }, strict: true, allowPositionals: false });
    if (values.help === true) return help(io, jobs.HELP);
    const now = Date.now();
    const since = values.since === undefined ? undefined : parseSince(values.since, now);
    const list = await adminCall(adminSocket(values.socket, io.env), 'GET', since === undefined ? '/jobs' : `/jobs?since=${Math.max(0, since)}`) as JobStatusView[]; // the daemon's /jobs answer
    if (values.json === true) json(io, list);
    else io.stdout.write(formatJobs(list, now));
    return 0;
  },
};

export const logs: AdminCommand = {
  HELP: `Usage: flint logs VM [--follow] [--json] [--socket PATH]

A VM's serial console log (kept a day after the VM ended). With --follow,
goes on printing the console as it comes until the VM ends (or Ctrl-C).

  -f, --follow    stream until the VM ends
  --json          JSON lines instead of the raw console: one {"vm", "line"}
                  object per console line (with --follow, each as it comes)
  --socket PATH   the daemon's admin socket (default $FLINT_ADMIN_SOCKET or ${DEFAULT_ADMIN_SOCKET})
  -h, --help      this text

Needs root, or membership of the group named by admin.group in the configuration.
See docs/operations.md, "Operating a running Flint".
`,
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv, options: { ...COMMON_OPTIONS, follow: { type: 'boolean', short: 'f' } }, strict: true, allowPositionals: true,
    });
    if (values.help === true) return help(io, logs.HELP);
    if (positionals.length !== 1) throw new FlintError('FLINT_ERR_USAGE', 'flint logs takes one VM id (see flint vms)');
    const id = positionals[0] ?? '';
    const path = `/vms/${encodeURIComponent(id)}/log${values.follow === true ? '?follow=1' : ''}`;
    const socket = adminSocket(values.socket, io.env);
    if (values.json !== true) {
      await adminStream(socket, path, (chunk) => { io.stdout.write(chunk.toString('utf8')); });
      return 0;
    }
    const lines = consoleJsonLines(id);
    await adminStream(socket, path, (chunk) => {
      const out = lines.push(chunk);
      if (out !== '') io.stdout.write(out);
    });
    const last = lines.end();
    if (last !== '') io.stdout.write(last);
    return 0;
  },
};

function pauseCommand(verb: 'drain' | 'resume'): AdminCommand {
  const what = verb === 'drain'
    ? `Stops starting runners for one definition, or with --host for every one,
while Flint keeps running: idle runners are removed from GitHub and their
VMs stopped; busy ones finish their jobs. Queued jobs wait. Kept in memory
only: a restart of Flint resumes everything. (To stop Flint itself, send it
SIGTERM: docs/operations.md, "Stopping Flint: the drain".)`
    : `Undoes flint drain for one definition, or with --host for the host and
every definition: runners are started for queued jobs again.`;
  const cmd: AdminCommand = {
    HELP: `Usage: flint ${verb} (DEFINITION | --host) [--json] [--socket PATH]

${what}

  --host          the whole host instead of one definition
${COMMON}`,
    async run(argv, io) {
      const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, host: { type: 'boolean' } }, strict: true, allowPositionals: true });
      if (values.help === true) return help(io, cmd.HELP);
      const host = values.host === true;
      if (positionals.length > 1 || (positionals.length === 1) === host) {
        throw new FlintError('FLINT_ERR_USAGE', `flint ${verb} takes one runner definition, or --host`);
      }
      const definition = positionals[0];
      const answer = await adminCall(adminSocket(values.socket, io.env), 'POST', `/${verb}`, definition === undefined ? {} : { definition }) as { paused: PausedView }; // the daemon's answer
      if (values.json === true) json(io, answer);
      else io.stdout.write(pauseSummary(verb, definition, answer.paused));
      return 0;
    },
  };
  return cmd;
}

function pauseSummary(verb: 'drain' | 'resume', definition: string | undefined, p: PausedView): string {
  const target = definition === undefined ? 'the host' : `definition ${definition}`;
  const done = verb === 'drain'
    ? `drained ${target}: no new runners; idle ones are being removed, busy ones finish their jobs`
    : `resumed ${target}: runners start for queued jobs again`;
  const now = p.host ? 'the host is drained' : p.definitions.length === 0 ? 'nothing is drained' : `drained: ${p.definitions.join(', ')}`;
  return `${done}\n${now}\n`;
}

export const drain = pauseCommand('drain');
export const resume = pauseCommand('resume');

function help(io: CommandIo, text: string): number {
  io.stdout.write(text);
  return 0;
}
