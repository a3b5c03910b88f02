/**
 * `flint service install [--config FILE] [--unit-dir DIR] [--dry-run]` —
 * writes a hardened systemd unit that runs `flint serve` with this
 * configuration (service/unit.ts says why each setting), checks it with
 * `systemd-analyze verify` when that program is there, and says how to
 * enable it. It never starts, enables or reloads anything itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FlintError } from '../../core/errors/index.ts';
import { DEFAULT_CONFIG_PATH, loadConfigFile } from '../../config/load.ts';
import { directoriesToMake, renderUnit, unitPath } from '../service/unit.ts';
import type { CommandIo } from '../io.ts';

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

export const HELP = `Usage: flint service install [--config FILE] [--unit-dir DIR] [--dry-run] [--no-verify]

Writes flint.service, a hardened systemd unit that runs \`flint serve --config FILE\`
as root cut down to the capabilities Flint and the jailer need, with
ProtectSystem=strict, NoNewPrivileges, KillMode=process (VMs outlive a
restart of Flint), Restart=on-failure and TimeoutStopSec = shutdownGrace + 1 min
(the drain). Then prints how to enable it. Nothing is started or enabled.

  --config FILE    configuration the unit runs with (default: $FLINT_CONFIG or ${DEFAULT_CONFIG_PATH});
                   its stateDir, runDir, shutdownGrace and paths shape the unit
  --unit-dir DIR   where to write flint.service (default ${DEFAULT_UNIT_DIR})
  --dry-run        print the unit on stdout and write nothing
  --no-verify      do not run \`systemd-analyze verify\` on the written unit

See docs/operations.md, "flint service install".
`;

interface Args {
  readonly config: string | undefined;
  readonly unitDir: string;
  readonly dryRun: boolean;
  readonly verify: boolean;
  readonly help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let config: string | undefined;
  let unitDir = DEFAULT_UNIT_DIR;
  let dryRun = false;
  let verify = true;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new FlintError('FLINT_ERR_USAGE', `${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') help = true;
    else if (flag === '--dry-run') dryRun = true;
    else if (flag === '--no-verify') verify = false;
    else if (flag === '--config' || flag === '-c') config = value();
    else if (flag === '--unit-dir') unitDir = value();
    else if (a.startsWith('-')) throw new FlintError('FLINT_ERR_USAGE', `unknown option ${a}`);
    else throw new FlintError('FLINT_ERR_USAGE', `unexpected argument ${a}`);
  }
  return { config, unitDir, dryRun, verify, help };
}

/** Where this Flint runs from: the node binary and the launcher script, as absolute paths. */
export interface Runtime {
  readonly node: string;
  readonly flint: string;
}

function currentRuntime(): Runtime {
  const script = process.argv[1];
  if (script === undefined) throw new FlintError('FLINT_ERR_INTERNAL', 'cannot tell which script runs Flint (process.argv[1] is missing)');
  return { node: process.execPath, flint: realpathSync(script) };
}

/** Whether systemd manages this host now (sd_booted(3): the directory exists only while systemd is PID 1). */
function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

export async function run(argv: string[], io: CommandIo, runtime: Runtime = currentRuntime(), systemd: () => boolean = systemdRunning): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const configFile = resolve(args.config ?? io.env['FLINT_CONFIG'] ?? DEFAULT_CONFIG_PATH);
  const config = loadConfigFile(configFile, io.env);
  const unit = renderUnit({ node: runtime.node, flint: runtime.flint, configFile, config });
  if (args.dryRun) {
    io.stdout.write(unit);
    return 0;
  }
  const target = unitPath(resolve(args.unitDir));
  try {
    mkdirSync(resolve(args.unitDir), { recursive: true });
    // Written whole, then renamed: systemd never reads half a unit.
    writeFileSync(`${target}.tmp`, unit, { mode: 0o644 });
    renameSync(`${target}.tmp`, target);
    // ProtectSystem=strict makes everything else read-only, so directories Flint writes must exist before it starts.
    for (const dir of directoriesToMake(config)) mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new FlintError('FLINT_ERR_SERVICE_INSTALL', `cannot write ${target}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  io.stdout.write(`wrote ${target}\n`);
  if (args.verify) {
    const checked = verifyUnit(target);
    if (checked.ran && !checked.ok) {
      io.stderr.write(`${checked.output}\nflint: FLINT_ERR_SERVICE_INSTALL: systemd-analyze verify found problems in ${target} (above)\n  hint: report them with the unit; \`--dry-run\` shows the unit, \`--no-verify\` skips this check\n`);
      return 1;
    }
    io.stdout.write(checked.ran ? 'systemd-analyze verify: no problems\n' : 'systemd-analyze is not installed: the unit was not verified\n');
  }
  if (!systemd()) {
    // A container or chroot: the unit is right, but nothing here will read it.
    io.stdout.write(`systemd is not running on this host (no /run/systemd/system): ${target} takes effect on a host booted with systemd; here, run \`flint serve --config ${configFile}\` yourself\n`);
  }
  io.stdout.write([
    '',
    'Next:',
    '  systemctl daemon-reload',
    '  systemctl enable --now flint       # start now and at every boot',
    '  journalctl -u flint -f             # follow its log',
    '',
    'Before that, `flint doctor --config ' + configFile + '` checks the host and the App.',
    '`systemctl stop flint` drains: busy jobs get shutdownGrace to finish.',
    '',
  ].join('\n'));
  return 0;
}

/**
 * `systemd-analyze verify` on the written unit. Its complaints about other
 * units it happens to load are not Flint's: only lines naming flint.service
 * count.
 */
export function verifyUnit(path: string): { ran: boolean; ok: boolean; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return { ran: false, ok: false, output: r.error.message };
  const output = `${r.stdout}${r.stderr}`.trim();
  const ours = output.split('\n').filter((l) => l.includes('flint.service'));
  return { ran: true, ok: r.status === 0 || ours.length === 0, output: ours.join('\n') || output };
}
