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
import { LineCounter, parseDocument } from 'yaml';
import { FlintError } from '../core/errors/index.ts';
import { crossChecks } from './cross-checks.ts';
import { isScaleSetMode } from './scale-set-mode.ts';
import { DEFAULTS } from './defaults.ts';
import { issueToProblems, kindOf } from './issues.ts';
import type { ConfigLocator } from './locate.ts';
import { isRecord, makeLocator } from './locate.ts';
import type { ConfigProblem, PathSegment } from './problems.ts';
import { formatProblem, sortProblems } from './problems.ts';
import type { ParseContext, RunnerShape } from './schema.ts';
import { fileSchema } from './schema.ts';
import type { FlintConfig, NetworkConfig, RateLimits, RunnerConfig } from './types.ts';
import { deriveInstanceId } from './values.ts';

export { DEFAULTS, DEFAULT_CONFIG_PATH } from './defaults.ts';
export type { ConfigLocator } from './locate.ts';

export interface ParseOptions {
  /** Stable seed for the default instance id, usually the host name. */
  readonly hostname?: string;
  /** Directory relative paths resolve against; default: the directory of `source` when it is absolute. */
  readonly baseDir?: string;
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

/** The rate limits as RunnerConfig holds them: absent when none is set. */
function rateLimits(r: RunnerShape['rateLimits']): { rateLimits: RateLimits } | undefined {
  if (r == null) return undefined;
  const disk = {
    ...(r.diskBandwidth != null ? { bytesPerSecond: r.diskBandwidth } : {}),
    ...(r.diskIops != null ? { opsPerSecond: r.diskIops } : {}),
  };
  const network = {
    ...(r.networkRx != null ? { rxBytesPerSecond: r.networkRx } : {}),
    ...(r.networkTx != null ? { txBytesPerSecond: r.networkTx } : {}),
  };
  const out: RateLimits = {
    ...(Object.keys(disk).length > 0 ? { disk } : {}),
    ...(Object.keys(network).length > 0 ? { network } : {}),
  };
  return Object.keys(out).length > 0 ? { rateLimits: out } : undefined;
}

function buildRunner(v: RunnerShape, isStatic: boolean, onlyNetwork: string | undefined, defaultMode: 'webhook' | 'scaleset' | undefined): RunnerConfig {
  const maxRunners = v.maxRunners ?? DEFAULTS.maxRunners;
  const group = v.group ?? DEFAULTS.group;
  const scaleSet = isScaleSetMode(v, defaultMode) ? { scaleSet: { name: v.scaleSet?.name ?? v.name, runnerGroup: v.scaleSet?.runnerGroup ?? group } } : {};
  return {
    name: v.name,
    group,
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
    idleGraceSeconds: v.idleGrace ?? DEFAULTS.idleGraceSeconds,
    unhealthyAfter: v.unhealthyAfter ?? DEFAULTS.unhealthyAfter,
    kernelArgs: v.kernelArgs ?? DEFAULTS.kernelArgs,
    uid: v.uid ?? DEFAULTS.uid,
    gid: v.gid ?? DEFAULTS.gid,
    pidsMax: v.pidsMax ?? DEFAULTS.pidsMax,
    ...(rateLimits(v.rateLimits) ?? {}),
    static: isStatic,
    ...(v.egress != null ? {
      egress: {
        cidrs: [...new Set(v.egress.allow.flatMap((t) => (t.kind === 'cidr' ? [t.cidr] : [])))],
        hosts: [...new Set(v.egress.allow.flatMap((t) => (t.kind === 'host' ? [t.name] : [])))],
      },
    } : {}),
    ...scaleSet,
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
        message: e.code === 'MULTIPLE_DOCS' ? 'the file holds more than one YAML document (a second `---`)' : (e.message.split('\n')[0] ?? e.message),
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
    ...(n.range != null ? { range: n.range } : {}),
    ...(n.range6 != null ? { range6: n.range6 } : {}),
    create: n.create ?? false,
    dns: n.dns ?? [...DEFAULTS.dns],
    ...(n.hostDns === true ? { hostDns: true } : {}),
    ...(n.hostPorts != null && n.hostPorts.length > 0 ? { hostPorts: [...new Set(n.hostPorts)].sort((a, b) => a - b) } : {}),
  }));
  const onlyNetwork = networks.length === 1 ? networks[0]?.name : undefined;
  const runnerPaths: PathSegment[][] = [];
  const runners: RunnerConfig[] = [];
  (f.runners ?? []).forEach((r, i) => { runners.push(buildRunner(r, false, onlyNetwork, f.mode ?? undefined)); runnerPaths.push(['runners', i]); });
  (f.static_runners ?? []).forEach((r, i) => { runners.push(buildRunner(r, true, onlyNetwork, f.mode ?? undefined)); runnerPaths.push(['static_runners', i]); });
  const stateDir = f.stateDir ?? DEFAULTS.stateDir;
  const gh = f.github;
  const config: FlintConfig = {
    source,
    logLevel: f.logLevel ?? DEFAULTS.logLevel,
    address: f.address ?? DEFAULTS.address,
    ...(f.email != null ? { email: f.email } : {}),
    acme: { directoryUrl: f.acme?.directoryUrl ?? DEFAULTS.acmeDirectoryUrl, ...(f.acme?.caFile != null ? { caFile: f.acme.caFile } : {}) },
    ...(f.tls != null ? { tls: { certFile: f.tls.certFile, keyFile: f.tls.keyFile } } : {}),
    stateDir,
    runDir: f.runDir ?? DEFAULTS.runDir,
    instanceId: f.instanceId ?? deriveInstanceId(`${options.hostname ?? ''}:${stateDir}`),
    shutdownGraceSeconds: f.shutdownGrace ?? DEFAULTS.shutdownGraceSeconds,
    ...(f.admin != null ? { admin: { ...(f.admin.socket != null ? { socket: f.admin.socket } : {}), ...(f.admin.group != null ? { group: f.admin.group } : {}) } } : {}),
    ...(f.store?.postgres != null ? { store: { postgres: f.store.postgres } } : {}),
    ...(f.fleet != null ? {
      fleet: { ...(f.fleet.heartbeat != null ? { heartbeatSeconds: f.fleet.heartbeat } : {}),  ...(f.fleet.leaseTtl != null ? { leaseTtlSeconds: f.fleet.leaseTtl } : {}),
        ...(f.fleet.claimTtl != null ? { claimTtlSeconds: f.fleet.claimTtl } : {}),
        ...(f.fleet.hostLost != null ? { hostLostSeconds: f.fleet.hostLost } : {}),
      },
    } : {}),
    ...(f.status != null ? { status: { address: f.status.address ?? DEFAULTS.statusAddress, ...(f.status.token != null ? { token: f.status.token } : {}) } } : {}),
    networks,
    github: {
      appId: gh.appID,
      organization: gh.organization,
      // crossChecks guarantees a webhookSecret unless every definition is in scale-set mode.
      webhookSecrets: [gh.webhookSecret, gh.previousWebhookSecret].filter((x): x is string => x != null),
      // crossChecks guarantees exactly one of the two.
      privateKey: gh.privateKey ?? gh.privateKeyFile?.pem ?? '',
      ...(gh.privateKeyFile != null ? { privateKeyFile: gh.privateKeyFile.path } : {}),
      apiUrl: gh.apiUrl ?? DEFAULTS.apiUrl,
      scanBudget: gh.scanBudget ?? DEFAULTS.scanBudget,
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
