/**
 * The configuration loader: YAML text in, a resolved FlintConfig (types.ts)
 * or every problem found out.
 *
 *   parseConfig(text, source, env, readFile, options)   pure but for the injected readFile
 *   loadConfigFile(path, env, options)                  reads the file, throws a FlintError
 *
 * Three passes, all of which always run so that one check reports every
 * problem: YAML syntax (with positions from a LineCounter), the zod schema
 * of the file (schema.ts: keys, types, values, env references, secret
 * files), and the cross-field rules (references between sections, unique
 * names, limits that depend on each other). Only a file without problems
 * yields a config; defaults are applied then.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { posix, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { FlintError } from '../core/errors/index.ts';
import { didYouMean } from './did-you-mean.ts';
import type { ConfigProblem, PathSegment } from './problems.ts';
import { formatPath, formatProblem, sortProblems } from './problems.ts';
import type { IssueParams, NetworkShape, ParseContext, RunnerShape } from './schema.ts';
import { fileSchema, KEY_HINTS, KNOWN_KEYS, networkSchema, runnerSchema } from './schema.ts';
import type { FlintConfig, NetworkConfig, RunnerConfig } from './types.ts';
import { deriveInstanceId, parseListenAddress, v4Range } from './values.ts';

export const DEFAULTS = {
  logLevel: 'info',
  address: ':8080',
  stateDir: '/var/lib/flint',
  apiUrl: 'https://api.github.com',
  dns: ['1.1.1.1'],
  group: 'Default',
  hypervisor: 'firecracker',
  qemu: 'qemu-system-x86_64',
  cpuCount: 2,
  memorySize: 4096,
  smt: false,
  diskSize: 10 * 2 ** 30,
  maxRunners: 1,
  minIdle: 0,
  jobTimeoutSeconds: 6 * 3600,
  kernelArgs: '',
  uid: 123,
  gid: 100,
} as const;

/** The default configuration file of `flint serve` and `flint config check`. */
export const DEFAULT_CONFIG_PATH = '/etc/flint/config.yaml';

export interface ParseOptions {
  /** Stable seed for the default instance id, usually the host name. */
  readonly hostname?: string;
  /** Directory relative paths resolve against; default: the directory of `source` when it is absolute. */
  readonly baseDir?: string;
}

/** Finds file positions of keys and values by their path in the document. */
export interface ConfigLocator {
  /** Position of the key at `path` (for "unknown key"), else of the nearest enclosing value that exists. */
  key(path: readonly PathSegment[]): { line: number; column: number };
  /** Position of the value at `path`, else of the nearest enclosing value that exists. */
  value(path: readonly PathSegment[]): { line: number; column: number };
}

export type ParseResult =
  | {
      readonly ok: true;
      readonly config: FlintConfig;
      readonly locate: ConfigLocator;
      /** For each entry of config.runners, its path in the file (['runners', 0] or ['static_runners', 0]). */
      readonly runnerPaths: readonly (readonly PathSegment[])[];
    }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

function makeLocator(doc: Document, lines: LineCounter): ConfigLocator {
  const pos = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const nodeAt = (path: readonly PathSegment[]): YamlNode | undefined => {
    if (path.length === 0) return doc.contents ?? undefined;
    const n: unknown = doc.getIn(path, true);
    return isMap(n) || isSeq(n) || isScalar(n) ? n : undefined;
  };
  const value = (path: readonly PathSegment[]): { line: number; column: number } => {
    for (let n = path.length; n >= 0; n--) {
      const node = nodeAt(path.slice(0, n));
      if (node?.range) return pos(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
  const key = (path: readonly PathSegment[]): { line: number; column: number } => {
    const parent = nodeAt(path.slice(0, -1));
    const last = path[path.length - 1];
    if (isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === String(last) && item.key.range) return pos(item.key.range[0]);
      }
    }
    return value(path);
  };
  return { key, value };
}

function getRaw(raw: unknown, path: readonly PathSegment[]): unknown {
  let cur = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PathSegment, unknown>)[seg]; // indexing a parsed YAML object or array by its own path segment
  }
  return cur;
}

function kindOf(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value lines)',
};

/**
 * YAML reads `secret: 0123` or `label: yes` as a number or boolean. Flint
 * never converts those back to text (0123 would silently become "123"), it
 * asks for quotes.
 */
function quoteHint(wantsString: boolean, value: unknown): string | undefined {
  return wantsString && (typeof value === 'number' || typeof value === 'boolean') ? 'YAML read this as a number or true/false; put the value in quotes' : undefined;
}

/** Which kind of object sits at `path`, for the list of keys it may have. */
function knownKeysAt(path: readonly PathSegment[], raw: unknown): readonly string[] {
  const v = getRaw(raw, path);
  if (path.length === 0) return KNOWN_KEYS.file;
  if (path.length === 1 && path[0] === 'github') return KNOWN_KEYS.github;
  if (path.length === 2 && path[0] === 'networks') return KNOWN_KEYS.network;
  if (path.length === 2 && (path[0] === 'runners' || path[0] === 'static_runners')) return KNOWN_KEYS.runner;
  if (v !== null && typeof v === 'object' && 'env' in v) return KNOWN_KEYS.env;
  return [];
}

/** Where each top-level key of another section belongs, for "this key goes elsewhere" hints. */
function homeOf(key: string): string | undefined {
  if (KNOWN_KEYS.runner.includes(key)) return 'a runner under `runners:`';
  if (KNOWN_KEYS.github.includes(key)) return '`github:`';
  if (KNOWN_KEYS.network.includes(key)) return 'a network under `networks:`';
  if (KNOWN_KEYS.file.includes(key)) return 'the top level of the file';
  return undefined;
}

function issueToProblems(issue: z.core.$ZodIssue, raw: unknown, file: string, locate: ConfigLocator): ConfigProblem[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
  const last = path[path.length - 1];
  const keyHint = typeof last === 'string' ? (KEY_HINTS[last] ?? '') : '';
  const at = (p: readonly PathSegment[], where: 'key' | 'value') => (where === 'key' ? locate.key(p) : locate.value(p));
  const problem = (code: ConfigProblem['code'], p: readonly PathSegment[], where: 'key' | 'value', message: string, hint: string): ConfigProblem => ({
    code, file, ...at(p, where), path: formatPath(p), message, hint,
  });

  if (issue.code !== 'unrecognized_keys' && path.length > 0 && getRaw(raw, path) === undefined && isRecord(getRaw(raw, path.slice(0, -1)))) {
    return [problem('FLINT_ERR_CONFIG_MISSING_KEY', path, 'value', `required key \`${String(last)}\` is missing`, `add \`${String(last)}:\`${keyHint ? ` — ${keyHint}` : ''}`)];
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(path, raw);
      return issue.keys.map((k) => {
        const guess = didYouMean(k, known);
        const home = homeOf(k);
        const hint = guess !== undefined ? `did you mean \`${guess}\`?`
          : home !== undefined ? `\`${k}\` belongs in ${home}`
            : known.length > 0 ? `known keys here: ${known.join(', ')}` : 'remove it';
        return problem('FLINT_ERR_CONFIG_UNKNOWN_KEY', [...path, k], 'key', `unknown key \`${k}\``, hint);
      });
    }
    case 'invalid_type': {
      const value = getRaw(raw, path);
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      // Only type names and numbers are echoed, never a string's content: it may be a secret.
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', `expected ${expected}, got ${kindOf(value)}`, quoteHint(issue.expected === 'string', value) ?? keyHint)];
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'at least' : 'at most';
      let message: string;
      if (issue.origin === 'array') message = Number(bound) <= 1 && issue.code === 'too_small' ? 'must not be empty' : `must have ${word} ${String(bound)} entries`;
      else if (issue.origin === 'string') message = `must have ${word} ${String(bound)} characters`;
      else message = issue.message.startsWith('must') ? issue.message : `must be ${word} ${String(bound)}`;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', message, keyHint)];
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      const value = getRaw(raw, path);
      const guess = typeof value === 'string' ? didYouMean(value, values) : undefined;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', `must be one of ${values.join(', ')}`, guess ? `did you mean "${guess}"?` : keyHint)];
    }
    case 'custom': {
      const params = (issue.params ?? {}) as IssueParams; // our own custom issues always carry IssueParams (schema.ts fail())
      return [problem(params.flintCode ?? 'FLINT_ERR_CONFIG_VALUE', path, 'value', issue.message, params.hint ?? keyHint)];
    }
    default: {
      // invalid_union, invalid_format and the rest: schema.ts gives each a readable message.
      const message = issue.message.startsWith('Invalid') ? `is not valid (${issue.message})` : issue.message;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', message, quoteHint(issue.code === 'invalid_union' && message.startsWith('expected a string'), getRaw(raw, path)) ?? keyHint)];
    }
  }
}

interface Indexed<T> {
  readonly path: readonly PathSegment[];
  readonly value: T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The rules that relate keys to each other. Runs on the sections that passed the schema on their own. */
function crossChecks(raw: Record<string, unknown>, ctx: ParseContext, file: string, locate: ConfigLocator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (code: ConfigProblem['code'], path: readonly PathSegment[], where: 'key' | 'value', message: string, hint: string) => {
    problems.push({ code, file, ...(where === 'key' ? locate.key(path) : locate.value(path)), path: formatPath(path), message, hint });
  };

  // address host:443 → ACME → an account email is needed.
  if (typeof raw['address'] === 'string') {
    const a = parseListenAddress(raw['address']);
    if (a.ok && a.value.port === 443 && (raw['email'] === undefined || raw['email'] === null)) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['address'], 'value', 'port 443 turns on HTTPS with an ACME certificate, which needs `email`', 'add `email: you@example.com` (the ACME account contact), or listen on another port behind your own TLS proxy');
    }
  }

  // github: exactly one of privateKey / privateKeyFile.
  const gh = raw['github'];
  if (isRecord(gh)) {
    const has = (k: string) => gh[k] !== undefined && gh[k] !== null;
    if (has('privateKey') && has('privateKeyFile')) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['github', 'privateKeyFile'], 'key', 'both `privateKey` and `privateKeyFile` are set', 'keep exactly one of them');
    } else if (!has('privateKey') && !has('privateKeyFile')) {
      add('FLINT_ERR_CONFIG_MISSING_KEY', ['github'], 'key', 'the App private key is missing', 'add `privateKeyFile: /etc/flint/app.pem` (or an inline `privateKey: |` PEM)');
    }
  }

  // Networks: unique names, subnets that do not overlap.
  const nets: Indexed<Partial<NetworkShape>>[] = [];
  const rawNets = raw['networks'];
  const netSchema = networkSchema(ctx);
  if (Array.isArray(rawNets)) rawNets.forEach((n, i) => nets.push({ path: ['networks', i], value: partialParse(netSchema, n) }));
  const seenNet = new Map<string, Indexed<unknown>>();
  for (const n of nets) {
    const name = n.value.name;
    if (name === undefined) continue;
    const first = seenNet.get(name);
    if (first) add('FLINT_ERR_CONFIG_CONFLICT', [...n.path, 'name'], 'value', `network "${name}" is defined twice (also ${formatPath(first.path)})`, 'give each bridge one entry');
    else seenNet.set(name, n);
  }
  for (let i = 0; i < nets.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = nets[i];
      const b = nets[j];
      if (!a?.value.v4 || !b?.value.v4 || a.value.name === b.value.name) continue;
      const [a0, a1] = v4Range(a.value.v4.address, a.value.v4.prefixLength);
      const [b0, b1] = v4Range(b.value.v4.address, b.value.v4.prefixLength);
      if (a0 <= b1 && b0 <= a1) {
        add('FLINT_ERR_CONFIG_CONFLICT', [...a.path, 'v4'], 'value', `subnet overlaps ${formatPath(b.path)}.v4`, 'give each bridge its own subnet, or both would hand out the same addresses');
      }
    }
  }
  // Network references can only be judged when every network's name is known.
  const allNetNames = Array.isArray(rawNets) && nets.every((n) => n.value.name !== undefined);
  const netNames = nets.flatMap((n) => (n.value.name === undefined ? [] : [n.value.name]));

  // Runners: unique names across both lists, valid network, limits that agree.
  const runners: Indexed<Partial<RunnerShape>>[] = [];
  const schema = runnerSchema(ctx);
  for (const list of ['runners', 'static_runners'] as const) {
    const rawList = raw[list];
    if (Array.isArray(rawList)) rawList.forEach((r, i) => runners.push({ path: [list, i], value: partialParse(schema, r) }));
  }
  const count = (k: string) => { const l = raw[k]; return Array.isArray(l) ? l.length : 0; };
  if (count('runners') + count('static_runners') === 0) add('FLINT_ERR_CONFIG_MISSING_KEY', ['runners'], 'key', 'no runner is defined', 'add at least one entry under `runners:` (or `static_runners:`)');

  const seenRunner = new Map<string, Indexed<unknown>>();
  for (const r of runners) {
    const v = r.value;
    if (v.name !== undefined) {
      const first = seenRunner.get(v.name);
      if (first) add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, 'name'], 'value', `runner name "${v.name}" is used twice (also ${formatPath(first.path)})`, 'runner names must be unique across runners and static_runners');
      else seenRunner.set(v.name, r);
    }

    const rawRunner = getRaw(raw, r.path);
    const networkGiven = isRecord(rawRunner) && rawRunner['network'] !== undefined && rawRunner['network'] !== null;
    if (!networkGiven) {
      if (allNetNames && netNames.length !== 1 && isRecord(rawRunner)) {
        add('FLINT_ERR_CONFIG_MISSING_KEY', [...r.path, 'network'], 'value', 'required key `network` is missing', `add \`network:\` naming one of: ${netNames.join(', ')}`);
      }
    } else if (v.network != null && allNetNames && !netNames.includes(v.network)) {
      const guess = didYouMean(v.network, netNames);
      add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, 'network'], 'value', `no network is named "${v.network}"`,
        guess ? `did you mean "${guess}"?` : `define it under \`networks:\`, or use one of: ${netNames.join(', ') || '(none defined)'}`);
    }

    const labelSeen = new Set<string>();
    (v.labels ?? []).forEach((label, i) => {
      const folded = label.toLowerCase();
      if (labelSeen.has(folded)) add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, 'labels', i], 'value', `label "${label}" is listed twice`, 'labels match case-insensitively; list each once');
      labelSeen.add(folded);
    });

    const isStatic = r.path[0] === 'static_runners';
    const max = v.maxRunners ?? DEFAULTS.maxRunners;
    const min = v.minIdle ?? (isStatic ? max : DEFAULTS.minIdle);
    if (min > max) add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, v.minIdle == null ? 'maxRunners' : 'minIdle'], 'value', `minIdle (${min}) is larger than maxRunners (${max})`, 'raise maxRunners or lower minIdle');

    const cpus = v.cpuCount ?? DEFAULTS.cpuCount;
    if ((v.smt ?? DEFAULTS.smt) && cpus > 1 && cpus % 2 === 1) {
      add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, v.cpuCount == null ? 'smt' : 'cpuCount'], 'value', `with smt: true, cpuCount must be 1 or even (got ${cpus})`, 'Firecracker places vCPUs in sibling pairs when SMT is on; use an even count or smt: false');
    }

    if ((v.hypervisor ?? DEFAULTS.hypervisor) === 'firecracker') {
      for (const k of ['jailer', 'firecracker'] as const) {
        if (isRecord(rawRunner) && (rawRunner[k] === undefined || rawRunner[k] === null)) add('FLINT_ERR_CONFIG_MISSING_KEY', [...r.path, k], 'value', `required key \`${k}\` is missing (hypervisor is firecracker)`, `add \`${k}:\` — ${KEY_HINTS[k] ?? ''}, or set \`hypervisor: qemu\``);
      }
    }
  }
  return problems;
}

/**
 * The fields of an object that pass their own schema, each on its own, so
 * that cross-field rules still run when a neighbouring key is wrong. The
 * problems of the failing fields are reported by the whole-file pass.
 */
function partialParse<S extends z.ZodObject>(schema: S, value: unknown): Partial<z.output<S>> {
  const out: Record<string, unknown> = {};
  if (!isRecord(value)) return {};
  for (const [key, field] of Object.entries(schema.shape)) {
    // Each shape entry is a zod schema (ZodObject's shape type guarantees it).
    const r = (field as z.ZodType).safeParse(value[key]);
    if (r.success && r.data !== undefined && r.data !== null) out[key] = r.data;
  }
  return out as Partial<z.output<S>>; // built key by key from the same shape
}

function buildRunner(v: RunnerShape, isStatic: boolean, onlyNetwork: string | undefined): RunnerConfig {
  const maxRunners = v.maxRunners ?? DEFAULTS.maxRunners;
  return {
    name: v.name,
    group: v.group ?? DEFAULTS.group,
    labels: v.labels,
    kernel: v.kernel,
    ...(v.initrd != null ? { initrd: v.initrd } : {}),
    filesystem: v.filesystem,
    // Empty for QEMU runners, which need neither (crossChecks requires both for Firecracker).
    jailer: v.jailer ?? '',
    firecracker: v.firecracker ?? '',
    qemu: v.qemu ?? DEFAULTS.qemu,
    hypervisor: v.hypervisor ?? DEFAULTS.hypervisor,
    // crossChecks guarantees a network here: named, or the only one there is.
    network: v.network ?? onlyNetwork ?? '',
    cpuCount: v.cpuCount ?? DEFAULTS.cpuCount,
    memorySize: v.memorySize ?? DEFAULTS.memorySize,
    smt: v.smt ?? DEFAULTS.smt,
    diskSize: v.diskSize ?? DEFAULTS.diskSize,
    maxRunners,
    // Static runners are always on: by default every one of them is kept warm.
    minIdle: v.minIdle ?? (isStatic ? maxRunners : DEFAULTS.minIdle),
    jobTimeoutSeconds: v.jobTimeout ?? DEFAULTS.jobTimeoutSeconds,
    kernelArgs: v.kernelArgs ?? DEFAULTS.kernelArgs,
    uid: v.uid ?? DEFAULTS.uid,
    gid: v.gid ?? DEFAULTS.gid,
    static: isStatic,
  };
}

/**
 * Parses and validates a configuration. `source` names the file in
 * messages; `env` resolves `{env: NAME}` references; `readFile` reads
 * `privateKeyFile` (the only file the loader itself reads).
 */
export function parseConfig(
  text: string,
  source: string,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
  options: ParseOptions = {},
): ParseResult {
  const lines = new LineCounter();
  // prettyErrors: false keeps the source text (which may hold a key) out of messages.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locate = makeLocator(doc, lines);
  const at = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: sortProblems(doc.errors.map((e) => ({
        code: 'FLINT_ERR_CONFIG_SYNTAX' as const, file: source, ...at(e.pos[0]), path: '(yaml)',
        message: e.message.split('\n')[0] ?? e.message,
        hint: e.code === 'DUPLICATE_KEY' ? 'each key may appear once in a mapping; remove or merge the repeated one' : 'fix the YAML here: indentation, quotes, colons',
      }))),
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Unresolved aliases and alias bombs surface only when converting.
    return {
      ok: false,
      problems: [{
        code: 'FLINT_ERR_CONFIG_SYNTAX', file: source, line: 1, column: 1, path: '(yaml)',
        message: err instanceof Error ? (err.message.split('\n')[0] ?? 'invalid YAML') : 'invalid YAML',
        hint: 'define each &anchor before its *alias, and do not nest aliases deeply',
      }],
    };
  }
  if (!isRecord(raw)) {
    return {
      ok: false,
      problems: [{
        code: 'FLINT_ERR_CONFIG_VALUE', file: source, line: 1, column: 1, path: '(file)',
        message: raw === null || raw === undefined ? 'the file is empty' : `the file must be a mapping of keys, not ${kindOf(raw)}`,
        hint: 'start from the example in docs/config.md',
      }],
    };
  }

  const baseDir = options.baseDir ?? (posix.isAbsolute(source) ? posix.dirname(source) : undefined);
  const ctx: ParseContext = { env, readFile, baseDir };
  const parsed = fileSchema(ctx).safeParse(raw);
  let problems = parsed.success ? [] : parsed.error.issues.flatMap((i) => issueToProblems(i, raw, source, locate));
  problems.push(...crossChecks(raw, ctx, source, locate));
  // `appId: 1` is one mistake, not two: when a misspelt key suggests a
  // missing one, the "missing" report adds nothing.
  const suggested = new Set(problems.flatMap((p) => {
    const m = /^did you mean `([^`]+)`\?$/.exec(p.hint);
    return p.code === 'FLINT_ERR_CONFIG_UNKNOWN_KEY' && m ? [`${p.path.slice(0, p.path.lastIndexOf('.') + 1)}${m[1] ?? ''}`] : [];
  }));
  problems = problems.filter((p) => !(p.code === 'FLINT_ERR_CONFIG_MISSING_KEY' && suggested.has(p.path)));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: sortProblems(problems) };

  const f = parsed.data;
  const networks: NetworkConfig[] = f.networks.map((n) => ({
    name: n.name,
    v4: n.v4,
    ...(n.v6 != null ? { v6: n.v6 } : {}),
    create: n.create ?? false,
    dns: n.dns ?? [...DEFAULTS.dns],
  }));
  const onlyNetwork = networks.length === 1 ? networks[0]?.name : undefined;
  const runnerPaths: PathSegment[][] = [];
  const runners: RunnerConfig[] = [];
  (f.runners ?? []).forEach((r, i) => { runners.push(buildRunner(r, false, onlyNetwork)); runnerPaths.push(['runners', i]); });
  (f.static_runners ?? []).forEach((r, i) => { runners.push(buildRunner(r, true, onlyNetwork)); runnerPaths.push(['static_runners', i]); });
  const stateDir = f.stateDir ?? DEFAULTS.stateDir;
  const gh = f.github;
  const config: FlintConfig = {
    source,
    logLevel: f.logLevel ?? DEFAULTS.logLevel,
    address: f.address ?? DEFAULTS.address,
    ...(f.email != null ? { email: f.email } : {}),
    stateDir,
    instanceId: f.instanceId ?? deriveInstanceId(`${options.hostname ?? ''}:${stateDir}`),
    networks,
    github: {
      appId: gh.appID,
      organization: gh.organization,
      webhookSecrets: gh.previousWebhookSecret != null ? [gh.webhookSecret, gh.previousWebhookSecret] : [gh.webhookSecret],
      // crossChecks guarantees exactly one of the two.
      privateKey: gh.privateKey ?? gh.privateKeyFile?.pem ?? '',
      ...(gh.privateKeyFile != null ? { privateKeyFile: gh.privateKeyFile.path } : {}),
      apiUrl: gh.apiUrl ?? DEFAULTS.apiUrl,
    },
    runners,
  };
  return { ok: true, config, locate, runnerPaths };
}

/** Every problem as `FILE:LINE:COL: key.path: message (hint)`, one per line. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

/**
 * Reads and parses a configuration file. Throws FLINT_ERR_CONFIG_UNREADABLE
 * or FLINT_ERR_CONFIG_INVALID (message: every problem, one per line;
 * details.problems: the list).
 */
export function loadConfigFile(path: string, env: Readonly<Record<string, string | undefined>>, options: ParseOptions = {}): FlintConfig {
  const result = parseConfigFile(path, env, options);
  if (!result.ok) {
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `${path}: ${result.problems.length} problem(s):\n${formatProblems(result.problems)}`, { details: { problems: result.problems } });
  }
  return result.config;
}

/**
 * Like loadConfigFile, but returns the problems (and the locator) instead of
 * throwing on them. The instance id defaults from this host's name unless
 * options.hostname says otherwise, so two hosts with default settings never
 * share one (their runner names would collide in the organization).
 */
export function parseConfigFile(path: string, env: Readonly<Record<string, string | undefined>>, options: ParseOptions = {}): ParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new FlintError('FLINT_ERR_CONFIG_UNREADABLE', `cannot read configuration file ${path} (${reason})`, { cause: err });
  }
  const baseDir = options.baseDir ?? posix.dirname(resolve(path));
  return parseConfig(text, path, env, (p) => readFileSync(p, 'utf8'), { hostname: hostname(), ...options, baseDir });
}
