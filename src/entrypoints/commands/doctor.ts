/**
 * `flint doctor [--config FILE] [--json] [--offline]` — is this host ready
 * to run `flint serve` with this configuration, and if not, what to do?
 *
 *   exit 0  no check failed (warnings may remain)
 *   exit 1  a check failed: `flint serve` would not start, could start no
 *           VM of some runner definition, or could not reach GitHub
 *   exit 2  usage error, or the configuration is not valid (fix it first:
 *           `flint config check`)
 *
 * The checks themselves live in ../doctor/checks.ts, behind probes.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { FlintError, catalogue } from '../../core/errors/index.ts';
import { DEFAULT_CONFIG_PATH, formatProblems, parseConfigFile } from '../../config/load.ts';
import type { CheckResult, DoctorProbes } from '../doctor/checks.ts';
import { runDoctor } from '../doctor/checks.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint doctor [--config FILE] [--json] [--offline]

Checks every host prerequisite of \`flint serve\` for a configuration and says
how to fix each failure: KVM (and whether only software emulation works),
firecracker and jailer with their versions, cgroup v2 controllers, bridges
and their addresses, nftables, mkfs.ext4 and ip, free disk under the state
and jail directories, kernels and root filesystems (readable by the uid/gid
the VMM runs as), the clock against GitHub's, the App's credentials, installation and
runner groups, the webhook endpoint (a signed ping, when Flint listens), and
with \`store: {postgres: …}\` the store: login, server version, schema version
and the fleet's hosts with their heartbeats.

  --config FILE   configuration (default: $FLINT_CONFIG or ${DEFAULT_CONFIG_PATH})
  --json          one JSON document: {"ok": bool, "checks": [{name, status, detail, hint}]}
  --offline       skip the checks that call GitHub or the webhook endpoint

Status: ok, warn (Flint runs, but worse or less safely), fail (Flint would not
start, could start no VM of a runner definition, or could not reach GitHub),
skip (not applicable). Exit status: 0 nothing failed, 1 something failed,
2 usage error or invalid configuration. See docs/operations.md, "flint doctor".
`;

interface Args {
  readonly config: string | undefined;
  readonly json: boolean;
  readonly offline: boolean;
  readonly help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let config: string | undefined;
  let json = false;
  let offline = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--json') json = true;
    else if (a === '--offline') offline = true;
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) throw new FlintError('FLINT_ERR_USAGE', `${a} needs a file name`);
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else if (a.startsWith('-')) throw new FlintError('FLINT_ERR_USAGE', `unknown option ${a}`);
    else throw new FlintError('FLINT_ERR_USAGE', `unexpected argument ${a}`);
  }
  return { config, json, offline, help };
}

export async function run(argv: string[], io: CommandIo, probes?: DoctorProbes): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const file = args.config ?? io.env['FLINT_CONFIG'] ?? DEFAULT_CONFIG_PATH;
  const parsed = parseConfigFile(file, io.env);
  if (!parsed.ok) {
    io.stderr.write(`${formatProblems(parsed.problems)}\n`);
    io.stderr.write(`flint: FLINT_ERR_CONFIG_INVALID: ${file} is not a valid configuration; fix it before the host can be checked\n  hint: ${catalogue.FLINT_ERR_CONFIG_INVALID.hint}\n`);
    return 2;
  }
  // Loaded only now, so that `flint doctor --help` and usage errors never load the GitHub client or the drivers.
  const used = probes ?? (await import('../doctor/probes.ts')).hostDoctorProbes();
  const raw: unknown = parse(readFileSync(file, 'utf8'));
  const results = await runDoctor({ config: parsed.config, locate: parsed.locate, runnerPaths: parsed.runnerPaths, raw }, used, { offline: args.offline });
  const failed = results.some((r) => r.status === 'fail');
  io.stdout.write(args.json ? `${JSON.stringify({ ok: !failed, config: file, checks: results }, null, 2)}\n` : formatTable(results, file, failed));
  return failed ? 1 : 0;
}

/** The checks as a table, each failure or warning followed by its hint. */
export function formatTable(results: readonly CheckResult[], file: string, failed: boolean): string {
  const width = Math.max(...results.map((r) => r.name.length), 5);
  const lines = [`flint doctor: ${file}`, ''];
  for (const r of results) {
    lines.push(`${r.status.toUpperCase().padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}`);
    if (r.hint !== '' && r.status !== 'ok') lines.push(`${' '.repeat(width + 8)}fix: ${r.hint}`);
  }
  const count = (s: CheckResult['status']): number => results.filter((r) => r.status === s).length;
  lines.push('', `${count('ok')} ok, ${count('warn')} warning(s), ${count('fail')} failed, ${count('skip')} skipped: ${failed ? '`flint serve` would not work on this host as configured' : 'nothing stops `flint serve`'}`, '');
  return lines.join('\n');
}
