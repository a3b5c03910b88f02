/**
 * The command-line parser Firecracker and its jailer share
 * (`src/utils/src/arg_parser.rs`): `--name value` or `--name` for flags,
 * everything after `--` is passed on, an unknown or repeated argument or a
 * missing value is an error with the parser's wording, and required
 * arguments are checked after parsing.
 */

export interface ArgDef {
  readonly takesValue: boolean;
  readonly required?: boolean;
  readonly multiple?: boolean;
  readonly defaultValue?: string;
}

export interface ParsedArgs {
  readonly values: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
  readonly extra: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
}

export class ArgError extends Error {}

export function parseArgs(defs: Readonly<Record<string, ArgDef>>, argv: readonly string[]): ParsedArgs {
  const sep = argv.indexOf('--');
  const args = sep === -1 ? argv : argv.slice(0, sep);
  const extra = sep === -1 ? [] : argv.slice(sep + 1);
  if (args.includes('--help')) return { values: new Map(), flags: new Set(), extra, help: true, version: false };
  if (args.includes('--version')) return { values: new Map(), flags: new Set(), extra, help: false, version: true };

  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new ArgError(`Found argument '${arg}' which wasn't expected, or isn't valid in this context.`);
    const name = arg.slice(2);
    const def = defs[name];
    if (def === undefined) throw new ArgError(`Found argument '${name}' which wasn't expected, or isn't valid in this context.`);
    if ((values.has(name) || flags.has(name)) && def.multiple !== true) {
      throw new ArgError(`The argument '${name}' was provided more than once.`);
    }
    if (def.takesValue) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw new ArgError(`The argument '${name}' requires a value, but none was supplied.`);
      values.set(name, [...(values.get(name) ?? []), v]);
      i++;
    } else {
      flags.add(name);
    }
  }
  for (const [name, def] of Object.entries(defs)) {
    if (def.required === true && !values.has(name)) throw new ArgError(`Argument '${name}' required, but not found.`);
    if (def.defaultValue !== undefined && !values.has(name)) values.set(name, [def.defaultValue]);
  }
  return { values, flags, extra, help: false, version: false };
}

export function single(p: ParsedArgs, name: string): string | undefined {
  return p.values.get(name)?.[0];
}
