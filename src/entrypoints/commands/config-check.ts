/**
 * `flint config check [FILE]` — is this configuration valid, and is it
 * usable on this host?
 *
 *   exit 0  valid (and, unless --no-host-checks, usable here); prints a summary
 *   exit 2  not valid: every problem as FILE:LINE:COL: key.path: message (hint)
 *   exit 3  valid but not usable on this host yet (placeholder key, missing
 *           kernel/image/programs); prints the summary and those problems
 *
 * A file that holds secrets inline and that other users may read gets a
 * warning (FLINT_ERR_CONFIG_READABLE_BY_OTHERS) with the chmod to fix it;
 * the exit status does not change.
 *
 * Secrets never reach the output: the summary names where they come from,
 * and problem messages name keys and variables, not values.
 */
import { FlintError } from '../../core/errors/index.ts';
import { catalogue } from '../../core/errors/index.ts';
import { nodeHostProbe } from '../../config/host-probe.ts';
import { configFileWarning, formatFileWarning, referencedFileWarnings } from '../../config/file-mode.ts';
import { DEFAULT_CONFIG_PATH, formatProblems, parseConfigFile } from '../../config/load.ts';
import { summarizeConfig } from '../../config/summary.ts';
import { checkUsable } from '../../config/usable.ts';
import type { CommandIo } from '../io.ts';

export const HELP = `Usage: flint config check [FILE] [--no-host-checks]

Validates a Flint configuration file (default: $FLINT_CONFIG or ${DEFAULT_CONFIG_PATH})
and prints a summary. Every problem is reported as FILE:LINE:COL: key.path: message (hint).

  --config FILE      the file to check (same as giving FILE)
  --no-host-checks   check the structure only; skip whether the key parses and
                     the kernel, image and programs exist on this host

Exit status: 0 valid, 2 not valid, 3 valid but not usable on this host yet.
See docs/config.md for every key.
`;

interface Args {
  readonly file: string | undefined;
  readonly hostChecks: boolean;
  readonly help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let file: string | undefined;
  let hostChecks = true;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--no-host-checks') hostChecks = false;
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) throw new FlintError('FLINT_ERR_USAGE', `${a} needs a file name`);
      file = v;
    } else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else if (a.startsWith('-')) throw new FlintError('FLINT_ERR_USAGE', `unknown option ${a}`);
    else if (file === undefined) file = a;
    else throw new FlintError('FLINT_ERR_USAGE', 'flint config check takes one file');
  }
  return { file, hostChecks, help };
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const file = args.file ?? io.env['FLINT_CONFIG'] ?? DEFAULT_CONFIG_PATH;
  const result = parseConfigFile(file, io.env);
  if (!result.ok) {
    const n = result.problems.length;
    io.stderr.write(`${formatProblems(result.problems)}\n`);
    io.stderr.write(`flint: FLINT_ERR_CONFIG_INVALID: ${file} is not a valid configuration (${n} problem${n === 1 ? '' : 's'})\n  hint: ${catalogue.FLINT_ERR_CONFIG_INVALID.hint}\n`);
    return 2;
  }

  io.stdout.write(`${file}: valid configuration\n${summarizeConfig(result.config).map((l) => `  ${l}\n`).join('')}`);
  // A warning, not a failure: the file works, but it leaks its secrets to the host's other users.
  const readable = configFileWarning(file);
  for (const w of [...(readable === undefined ? [] : [readable]), ...referencedFileWarnings(result.config)]) io.stderr.write(formatFileWarning(w));
  if (!args.hostChecks) {
    io.stdout.write('host checks skipped (--no-host-checks)\n');
    return 0;
  }
  const unusable = checkUsable(result.config, result, nodeHostProbe);
  if (unusable.length > 0) {
    const n = unusable.length;
    io.stderr.write(`${formatProblems(unusable)}\n`);
    io.stderr.write(`flint: FLINT_ERR_CONFIG_UNUSABLE: ${file} is valid, but ${n} setting${n === 1 ? ' is' : 's are'} not usable on this host yet (see above)\n  hint: ${catalogue.FLINT_ERR_CONFIG_UNUSABLE.hint}\n`);
    return 3;
  }
  io.stdout.write('usable on this host: private key parses, kernel, image and programs are present\n');
  return 0;
}
