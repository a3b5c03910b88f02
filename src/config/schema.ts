/**
 * The schema of the configuration FILE (what an operator writes), in zod.
 * The resolved shape every other part uses is src/config/types.ts; load.ts
 * turns one into the other, applying defaults.
 *
 * Keys of the reference system keep their spelling and meaning exactly
 * (including `appID` and `static_runners`). Objects are strict: an unknown
 * key is an error, never silently ignored. Optional keys also accept YAML
 * null (`email:` with nothing after it), which means "not set".
 *
 * Value checks that need the environment (env references, secret files,
 * relative paths) live in transforms built from a ParseContext, so that every
 * problem comes out of one zod pass with its exact key path.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import type { ErrorCode } from '../core/errors/index.ts';
import type { LogLevel } from './types.ts';
import { didYouMean } from './did-you-mean.ts';
import { isIpAddress, parseAddressRange, parseDuration, parseEgressTarget, parseListenAddress, parseSize, parseV4Interface, parseV6Interface } from './values.ts';

export interface ParseContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => string;
  /** Directory relative paths are resolved against (the config file's); undefined: only absolute paths are allowed. */
  readonly baseDir: string | undefined;
}

/** Extra data a custom issue carries so the loader can give it a catalogue code and a hint. */
export interface IssueParams {
  readonly flintCode?: ErrorCode;
  readonly hint?: string;
}

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Linux interface names: ≤ 15 bytes, no '/', ':' or whitespace (kept to a portable set). */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const RUNNER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** GitHub account names: alphanumerics and inner hyphens, ≤ 39 characters. */
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/**
 * Kernel parameters Flint writes itself for each VM (src/core/guest-contract.ts);
 * the operator must not set them. Other `flint.*` parameters (e.g. the init
 * shim's `flint.init=`) are the image's business and pass.
 */
const RESERVED_KERNEL_ARG = /(^|\s)(ip|flint\.ip6|flint\.gw6|flint\.dns)=/;

type Ctx = z.core.$RefinementCtx;

function fail(ctx: Ctx, message: string, params: IssueParams = {}): never {
  ctx.addIssue({ code: 'custom', message, params: { ...params } });
  // z.NEVER tells zod the transform produced no value; typed as never.
  return z.NEVER;
}

/** A string written inline or taken from the environment: `key: value` or `key: {env: NAME}`. */
const envRef = z.strictObject({
  env: z.string().regex(ENV_NAME, 'must be an environment variable name like FLINT_WEBHOOK_SECRET'),
});

function envString(c: ParseContext) {
  return z
    .union([z.string(), envRef], { error: 'expected a string, or {env: VARIABLE} to read it from the environment' })
    .transform((v, ctx) => {
      if (typeof v === 'string') return v;
      const value = c.env[v.env];
      if (value === undefined || value === '') {
        return fail(ctx, `environment variable ${v.env} is ${value === undefined ? 'not set' : 'empty'}`, {
          flintCode: 'FLINT_ERR_CONFIG_ENV_MISSING',
          hint: `set ${v.env} in Flint's environment, or write the value in the file`,
        });
      }
      return value;
    });
}

function nonEmpty() {
  return z.string().refine((v) => v.trim() !== '', 'must not be empty');
}

/** A host path; relative paths are taken from the config file's directory. */
function pathString(c: ParseContext) {
  return z.string().transform((v, ctx) => {
    if (v.trim() === '') return fail(ctx, 'must not be empty', { hint: 'write a file path' });
    if (posix.isAbsolute(v)) return posix.normalize(v);
    if (c.baseDir === undefined) return fail(ctx, `"${v}" is relative, and this configuration has no directory to resolve it from`, { hint: 'write an absolute path' });
    return posix.resolve(c.baseDir, v);
  });
}

function fromParsed<I, T>(parse: (v: I) => { ok: true; value: T } | { ok: false; message: string }) {
  return (v: I, ctx: Ctx): T => {
    const r = parse(v);
    return r.ok ? r.value : fail(ctx, r.message);
  };
}

const logLevel = z.string().transform((v, ctx): LogLevel => {
  const lower = v.trim().toLowerCase();
  // The reference system's logger also knew "warning" and "panic".
  const level = lower === 'warning' ? 'warn' : lower === 'panic' ? 'fatal' : lower;
  const found = LOG_LEVELS.find((l) => l === level);
  if (found) return found;
  const guess = didYouMean(lower, LOG_LEVELS);
  return fail(ctx, `"${v}" is not a log level`, { hint: `${guess ? `did you mean "${guess}"? ` : ''}use one of ${LOG_LEVELS.join(', ')}` });
});

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export function networkSchema(_c: ParseContext) {
  return z.strictObject({
    name: z.string().regex(IFNAME, 'must be a Linux bridge name: 1–15 letters, digits, "_", "." or "-"'),
    v4: z.string().transform(fromParsed(parseV4Interface)),
    v6: z.string().transform(fromParsed(parseV6Interface)).nullish(),
    create: z.boolean().nullish(),
    dns: z.array(z.string().refine(isIpAddress, 'must be an IPv4 or IPv6 address')).min(1).nullish(),
    range: z.string().transform(fromParsed((v: string) => parseAddressRange(v, 4))).nullish(),
    range6: z.string().transform(fromParsed((v: string) => parseAddressRange(v, 6))).nullish(),
    hostDns: z.boolean().nullish(),
    hostPorts: z.array(int(1, 65535)).nullish(),
  });
}

/** A runner definition's egress allow-list: where its guests may connect beyond the host. */
export function egressSchema(_c: ParseContext) {
  return z.strictObject({
    allow: z.array(z.string().transform(fromParsed(parseEgressTarget))),
  });
}

export function githubSchema(c: ParseContext) {
  return z.strictObject({
    appID: z.union([z.number().int().positive(), envString(c)], { error: 'expected the App id: a number, a string, or {env: VARIABLE}' }).transform((v) => String(v)),
    organization: envString(c).pipe(z.string().regex(GITHUB_LOGIN, 'must be a GitHub organization name: letters, digits and single hyphens, up to 39 characters')),
    // Optional only when every runner definition is in scale-set mode (cross-checks.ts).
    webhookSecret: envString(c).pipe(nonEmpty()).nullish(),
    previousWebhookSecret: envString(c).pipe(nonEmpty()).nullish(),
    privateKey: envString(c).pipe(nonEmpty()).nullish(),
    privateKeyFile: envString(c)
      .pipe(pathString(c))
      .transform((path, ctx) => {
        try {
          return { path, pem: c.readFile(path) };
        } catch (err) {
          const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
          return fail(ctx, `cannot read ${path} (${reason})`, { flintCode: 'FLINT_ERR_CONFIG_SECRET_FILE', hint: 'check the path and that Flint may read the file' });
        }
      })
      .nullish(),
    apiUrl: envString(c)
      .transform((v, ctx) => {
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return fail(ctx, `"${v}" is not a URL`, { hint: 'e.g. https://api.github.com or https://ghes.example.com/api/v3' });
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(ctx, `"${v}" must be an http(s) URL`);
        if (url.username !== '' || url.password !== '') return fail(ctx, 'must not carry credentials', { hint: 'Flint authenticates as the GitHub App; remove user:password@ from the URL' });
        return v.replace(/\/+$/, '');
      })
      .nullish(),
    scanBudget: int(10, 1_000_000).nullish(),
  });
}

export function runnerSchema(c: ParseContext) {
  return z.strictObject({
    name: z.string().regex(RUNNER_NAME, 'must start with a letter or digit and use only letters, digits, ".", "_" or "-" (≤ 64)'),
    group: nonEmpty().nullish(),
    labels: z.array(nonEmpty()).min(1),
    kernel: pathString(c),
    initrd: pathString(c).nullish(),
    filesystem: pathString(c),
    jailer: pathString(c).nullish(),
    firecracker: pathString(c).nullish(),
    qemu: nonEmpty().nullish(),
    hypervisor: z.enum(['firecracker', 'qemu']).nullish(),
    network: z.string().nullish(),
    cpuCount: int(1, 32).nullish(),
    memorySize: z
      .union([z.number(), z.string()], { error: 'expected a number of MiB or a size like "16GiB"' })
      .transform(fromParsed((x: string | number) => parseSize(x, 2 ** 20, 'MiB')))
      .pipe(z.number().min(128, 'must be at least 128 MiB'))
      .nullish(),
    smt: z.boolean().nullish(),
    diskSize: z
      .union([z.number(), z.string()], { error: 'expected a number of bytes or a size like "10GiB"' })
      .transform(fromParsed((x: string | number) => parseSize(x, 1, 'bytes')))
      .pipe(z.number().min(64 * 2 ** 20, 'must be at least 64 MiB (67108864 bytes)'))
      .nullish(),
    maxRunners: int(1, 10_000).nullish(),
    minIdle: int(0, 10_000).nullish(),
    jobTimeout: z
      .union([z.number(), z.string()], { error: 'expected seconds or a duration like "6h"' })
      .transform(fromParsed(parseDuration))
      .nullish(),
    idleGrace: z
      .union([z.number(), z.string()], { error: 'expected seconds or a duration like "5m"' })
      .transform(fromParsed(parseDuration))
      .nullish(),
    unhealthyAfter: int(1, 1000).nullish(),
    kernelArgs: z
      .string()
      .refine((v) => !RESERVED_KERNEL_ARG.test(v), 'must not set ip=, flint.ip6=, flint.gw6= or flint.dns=: Flint writes those itself for each VM')
      .nullish(),
    uid: int(0, 2 ** 32 - 2).nullish(),
    gid: int(0, 2 ** 32 - 2).nullish(),
    pidsMax: int(16, 1_000_000).nullish(),
    rateLimits: z.strictObject({
      diskBandwidth: rate().nullish(),
      diskIops: int(1, 1_000_000_000).nullish(),
      networkRx: rate().nullish(),
      networkTx: rate().nullish(),
    }).nullish(),
    egress: egressSchema(c).nullish(),
    mode: modeSchema.nullish(),
    scaleSet: scaleSetSchema().nullish(),
  });
}

/** How a definition learns of jobs: the App's webhooks, or a scale set's message queue (docs/scale-sets.md). */
const modeSchema = z.enum(['webhook', 'scaleset'], { error: 'expected "webhook" or "scaleset"' });

/** A runner definition's scale set: its name (default: the definition's) and runner group (default: the definition's `group`). */
export function scaleSetSchema() {
  return z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must start with a letter or digit and use only letters, digits, ".", "_" or "-" (≤ 64)').nullish(),
    runnerGroup: nonEmpty().nullish(),
  });
}

/** Bytes per second: a number, or a size like "100MiB" (meaning per second). */
function rate() {
  return z
    .union([z.number(), z.string()], { error: 'expected bytes per second or a size like "100MiB"' })
    .transform(fromParsed((x: string | number) => parseSize(x, 1, 'bytes')))
    .pipe(z.number().min(4096, 'must be at least 4 KiB (4096 bytes) per second'));
}

/** A readable PEM file named in the configuration: read once at load, so a bad path fails `flint config check`. */
function pemFile(c: ParseContext) {
  return envString(c)
    .pipe(pathString(c))
    .transform((path, ctx) => {
      try {
        c.readFile(path);
        return path;
      } catch (err) {
        const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
        return fail(ctx, `cannot read ${path} (${reason})`, { flintCode: 'FLINT_ERR_CONFIG_SECRET_FILE', hint: 'check the path and that Flint may read the file' });
      }
    });
}

export function acmeSchema(c: ParseContext) {
  return z.strictObject({
    directoryUrl: envString(c)
      .transform((v, ctx) => {
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return fail(ctx, `"${v}" is not a URL`, { hint: 'the ACME directory URL of the CA, e.g. https://acme-v02.api.letsencrypt.org/directory' });
        }
        if (url.protocol !== 'https:') return fail(ctx, `"${v}" must be an https URL`, { hint: 'ACME (RFC 8555) servers are reached over HTTPS; for a private CA also set acme.caFile' });
        return v;
      })
      .nullish(),
    caFile: pemFile(c).nullish(),
  });
}

export function tlsSchema(c: ParseContext) {
  return z.strictObject({
    certFile: pemFile(c),
    keyFile: pemFile(c),
  });
}

export function adminSchema(c: ParseContext) {
  return z.strictObject({
    group: z.union([
      z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'must be a group name or a numeric gid'),
      int(0, 2 ** 32 - 2),
    ], { error: 'expected a group name or a numeric gid' }).nullish(),
    socket: pathString(c).nullish(),
  });
}

/** The status page (entrypoints/http/status-page.ts): where it listens, and the token it asks for. */
export function statusSchema(c: ParseContext) {
  return z.strictObject({
    address: z.string().transform(fromParsed((v: string) => {
      const r = parseListenAddress(v);
      return r.ok ? { ok: true as const, value: v.trim() } : r;
    })).nullish(),
    token: envString(c).refine((v) => v.length >= 16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').nullish(),
  });
}

/** A duration in whole seconds ("30s", "1m", 30), as shutdownGrace. */
function durationSchema() {
  return z.union([z.number(), z.string()], { error: 'expected seconds or a duration like "30s"' }).transform(fromParsed(parseDuration));
}

/** The fleet's timings (docs/fleet.md): how often a host heartbeats, how long the leader's lease lasts. */
export function fleetSchema() {
  return z.strictObject({
    heartbeat: durationSchema().nullish(),
    // Renewed every third of it, in whole seconds or more: below 3 s a renewal would come more than once a second.
    leaseTtl: durationSchema().refine((v) => v >= 3, 'must be at least 3 seconds (the lease is renewed every third of it)').nullish(),
    // Renewed at every scale tick (2 s): 10 s outlasts a few slow ticks.
    claimTtl: durationSchema().refine((v) => v >= 10, 'must be at least 10 seconds (claims are renewed every scale tick, 2 s)').nullish(),
    // Marked by the leader's reaper, which runs every heartbeat interval: a few missed heartbeats are a slow host, not a lost one.
    hostLost: durationSchema().refine((v) => v >= 30, 'must be at least 30 seconds (a host marked lost loses its starting VMs)').nullish(),
  });
}

/** A secret read from a file named in the configuration: read once at load; one trailing newline is not part of it. */
function secretFile(c: ParseContext) {
  return pathString(c).transform((path, ctx) => {
    let text: string;
    try {
      text = c.readFile(path);
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      return fail(ctx, `cannot read ${path} (${reason})`, { flintCode: 'FLINT_ERR_CONFIG_SECRET_FILE', hint: 'check the path and that Flint may read the file' });
    }
    const secret = text.replace(/\r?\n$/, '');
    if (secret === '') return fail(ctx, `${path} is empty`, { flintCode: 'FLINT_ERR_CONFIG_SECRET_FILE', hint: 'write the password in the file' });
    return secret;
  });
}

/** The PostgreSQL store of a fleet (docs/fleet.md): its URL, and the password apart from it. */
export function postgresStoreSchema(c: ParseContext) {
  return z.strictObject({
    url: envString(c).transform((v, ctx) => {
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        return fail(ctx, 'is not a URL', { hint: 'write postgresql://USER@HOST:5432/DATABASE, or postgresql://USER@localhost/DATABASE?host=/run/postgresql for a unix socket' });
      }
      if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') return fail(ctx, `must be a postgresql:// URL, not ${url.protocol}//`, { hint: 'write postgresql://USER@HOST:5432/DATABASE' });
      if (url.pathname.length <= 1) return fail(ctx, 'names no database', { hint: 'end the URL with /DATABASE, e.g. postgresql://flint@db.example:5432/flint' });
      return { url: v, hasPassword: url.password !== '' };
    }),
    passwordFile: secretFile(c).nullish(),
    passwordEnv: z.string().regex(ENV_NAME, 'must be an environment variable name like FLINT_PGPASSWORD').transform((name, ctx) => {
      const value = c.env[name];
      if (value === undefined || value === '') {
        return fail(ctx, `environment variable ${name} is ${value === undefined ? 'not set' : 'empty'}`, {
          flintCode: 'FLINT_ERR_CONFIG_ENV_MISSING', hint: `set ${name} in Flint's environment, or use passwordFile`,
        });
      }
      return value;
    }).nullish(),
  }).transform((v, ctx) => {
    if (v.passwordFile != null && v.passwordEnv != null) {
      return fail(ctx, 'passwordFile and passwordEnv are both set', { hint: 'keep one of them' });
    }
    const password = v.passwordFile ?? v.passwordEnv ?? undefined;
    if (password !== undefined && v.url.hasPassword) {
      return fail(ctx, 'the url carries a password, and passwordFile or passwordEnv gives another', { hint: 'remove the password from the url (postgresql://USER@HOST/DATABASE)' });
    }
    return { url: v.url.url, ...(password === undefined ? {} : { password }) };
  });
}

/** Where the stores live: SQLite in stateDir (the default), or PostgreSQL shared by a fleet. */
export function storeSchema(c: ParseContext) {
  return z.strictObject({
    postgres: postgresStoreSchema(c).nullish(),
  });
}

export function fileSchema(c: ParseContext) {
  return z.strictObject({
    logLevel: logLevel.nullish(),
    address: z.string().transform(fromParsed((v: string) => {
      const r = parseListenAddress(v);
      return r.ok ? { ok: true as const, value: v.trim() } : r;
    })).nullish(),
    email: z.string().regex(EMAIL, 'must be an email address (ACME account contact)').nullish(),
    acme: acmeSchema(c).nullish(),
    tls: tlsSchema(c).nullish(),
    stateDir: pathString(c).nullish(),
    runDir: pathString(c).nullish(),
    instanceId: z.string().regex(/^[a-z0-9]{1,6}$/, 'must be 1–6 lowercase letters or digits').nullish(),
    shutdownGrace: z
      .union([z.number(), z.string()], { error: 'expected seconds or a duration like "30m"' })
      .transform(fromParsed(parseDuration))
      .nullish(),
    admin: adminSchema(c).nullish(),
    status: statusSchema(c).nullish(),
    store: storeSchema(c).nullish(),
    fleet: fleetSchema().nullish(),
    networks: z.array(networkSchema(c)).min(1),
    github: githubSchema(c),
    runners: z.array(runnerSchema(c)).nullish(),
    static_runners: z.array(runnerSchema(c)).nullish(),
    mode: modeSchema.nullish(),
  });
}

export type FileShape = z.output<ReturnType<typeof fileSchema>>;
export type RunnerShape = z.output<ReturnType<typeof runnerSchema>>;
export type NetworkShape = z.output<ReturnType<typeof networkSchema>>;
export type AcmeShape = z.output<ReturnType<typeof acmeSchema>>;

/** Keys allowed in each kind of object, for "unknown key" messages. */
const probe: ParseContext = { env: {}, readFile: () => '', baseDir: undefined };
export const KNOWN_KEYS = {
  file: Object.keys(fileSchema(probe).shape),
  network: Object.keys(networkSchema(probe).shape),
  github: Object.keys(githubSchema(probe).shape),
  runner: Object.keys(runnerSchema(probe).shape),
  rateLimits: Object.keys(runnerSchema(probe).shape.rateLimits.unwrap().unwrap().shape),
  egress: Object.keys(egressSchema(probe).shape),
  acme: Object.keys(acmeSchema(probe).shape),
  tls: Object.keys(tlsSchema(probe).shape),
  admin: Object.keys(adminSchema(probe).shape),
  status: Object.keys(statusSchema(probe).shape),
  store: Object.keys(storeSchema(probe).shape),
  fleet: Object.keys(fleetSchema().shape),
  postgres: Object.keys(postgresStoreSchema(probe).in.shape),
  scaleSet: Object.keys(scaleSetSchema().shape),
  env: ['env'],
} as const;

export function isEnvName(s: string): boolean {
  return ENV_NAME.test(s);
}

/**
 * What each key means, in a few words: the hint of a problem about the key,
 * so that "expected a number" comes with what the number is for.
 */
export const KEY_HINTS: Readonly<Record<string, string>> = {
  logLevel: 'one of trace, debug, info, warn, error, fatal, silent',
  address: 'where Flint listens for webhooks, "host:port"; port 443 means HTTPS with an ACME certificate',
  email: 'contact address for the ACME (Let\'s Encrypt) account; needed when address uses port 443',
  acme: 'ACME settings for port 443: directoryUrl (default Let\'s Encrypt) and caFile (a private ACME server\'s CA)',
  directoryUrl: 'the ACME directory URL; default Let\'s Encrypt production',
  caFile: 'PEM file of a CA to trust for the ACME server\'s own HTTPS (a private ACME server)',
  tls: 'a certificate the operator manages: certFile and keyFile; Flint then serves HTTPS on address\'s port without ACME',
  certFile: 'PEM file of the certificate (with its chain) Flint serves; re-read when it changes',
  keyFile: 'PEM file of the certificate\'s private key; re-read when it changes',
  stateDir: 'directory for Flint\'s database, VM directories and console logs',
  runDir: 'directory for host-wide runtime records shared by every Flint on the host (bridge claims), default /run/flint',
  instanceId: 'short tag of this Flint instance, 1–6 of [a-z0-9]; it prefixes every VM, tap and runner name',
  shutdownGrace: 'seconds, or a duration like "30m", that busy runners get to finish their jobs when Flint is stopped (SIGTERM); keep systemd\'s TimeoutStopSec above it',
  admin: 'the admin socket of the operator commands (flint status, vms, jobs, logs, drain, resume): socket and group',
  socket: 'path of the admin socket; default <runDir>/admin.sock',
  status: 'the live status page: address (default 127.0.0.1:9090) and token (needed when address is not loopback)',
  token: 'the status page\'s access token, ≥ 16 characters, inline or {env: VARIABLE}; needed when status.address is not loopback',
  store: 'where the state lives: absent for SQLite in stateDir (one host), or {postgres: {url, passwordFile | passwordEnv}} for a fleet',
  postgres: 'the PostgreSQL store shared by a fleet: url, and passwordFile or passwordEnv',
  fleet: 'the timings of a fleet on a PostgreSQL store: heartbeat (default 10s), leaseTtl (default 20s), claimTtl (default 30s) and hostLost (default 90s)',
  heartbeat: 'how often this host writes its heartbeat row, seconds or a duration like "10s"',
  leaseTtl: 'how long the leader\'s lease lasts after its last renewal (renewed every third of it), at least 3 seconds; a dead leader\'s loops move within it and a third',
  hostLost: 'how long a host may go without a heartbeat before the leader marks it lost (its unfinished VM records failed, its idle registrations removed), at least 30 seconds',
  claimTtl: 'how long a host\'s claim on a queued job lasts without renewal, at least 10 seconds; a dead host\'s claimed jobs go to other hosts within it',
  url: 'the PostgreSQL URL, postgresql://USER@HOST:5432/DATABASE (a unix socket: ?host=/run/postgresql); inline or {env: VARIABLE}',
  passwordFile: 'a file holding the PostgreSQL password (one trailing newline is ignored)',
  passwordEnv: 'the name of an environment variable holding the PostgreSQL password',
  networks: 'a list of bridges, e.g. [{name: br-flint, v4: "10.0.0.1/24"}]',
  name: 'a name: a Linux bridge name for networks, an identifier for runners',
  v4: 'the bridge\'s own IPv4 address with prefix, e.g. "10.0.0.1/24"; guests get the other addresses',
  v6: 'the bridge\'s own IPv6 address with prefix, e.g. "fd00:f1::1/64"',
  create: 'true to create the bridge (with its address and NAT) when it is missing',
  dns: 'list of DNS server addresses handed to guests',
  range: 'the IPv4 addresses this Flint hands out on the bridge, "FIRST-LAST", e.g. "10.0.0.10-10.0.0.99"; needed when several Flints share the bridge',
  hostDns: 'true when the host runs a DNS server on the bridge address that guests may ask (udp/tcp 53 to the gateway); default false',
  hostPorts: 'TCP ports on the bridge address that guests may connect to, e.g. [3128] for a caching proxy on the host; default none',
  range6: 'the IPv6 addresses this Flint hands out on the bridge, "FIRST-LAST", e.g. "fd00:f1::100-fd00:f1::1ff"',
  github: 'the GitHub App: appID, organization, webhookSecret, privateKey or privateKeyFile',
  appID: 'the numeric App ID from the GitHub App settings page',
  organization: 'the GitHub organization the App is installed on',
  webhookSecret: 'the App\'s webhook secret, inline or {env: VARIABLE}',
  previousWebhookSecret: 'the old webhook secret, accepted too while a rotation is under way',
  privateKey: 'the App\'s private key as inline PEM, or {env: VARIABLE}; or use privateKeyFile',
  privateKeyFile: 'path of the App\'s private key PEM file',
  apiUrl: 'GitHub REST API base URL; https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server',
  scanBudget: 'GitHub API requests an hour the missed-jobs scan may spend, ≥ 10 (default 1000; a 304 costs none)',
  runners: 'a list of runner definitions (VMs started on demand)',
  mode: '"webhook" (jobs from the App\'s webhooks, the default) or "scaleset" (jobs from a scale set\'s message queue; no webhook needed); top level: the default of every runner definition',
  scaleSet: 'the runner definition\'s scale set: name (default the definition\'s name) and runnerGroup (default its group); implies mode: scaleset',
  runnerGroup: 'the scale set\'s runner group in GitHub, default the definition\'s group',
  static_runners: 'a list of runner definitions kept running at all times',
  group: 'the runner group in GitHub, "Default" if not set',
  labels: 'a non-empty list of runner labels, e.g. [self-hosted, linux, x64]',
  kernel: 'path of the guest kernel (uncompressed vmlinux for Firecracker)',
  initrd: 'path of an initramfs for the kernel (stock distribution kernels need one)',
  filesystem: 'path of the base root filesystem image, attached read-only',
  jailer: 'path of Firecracker\'s jailer binary',
  firecracker: 'path of the firecracker binary',
  qemu: 'QEMU program for hypervisor: qemu, default qemu-system-x86_64',
  hypervisor: 'firecracker (default) or qemu',
  network: 'name of one of networks[]',
  cpuCount: 'vCPUs per VM, 1–32; 1 or even with smt',
  memorySize: 'memory per VM in MiB, or a size like "16GiB"',
  smt: 'true or false: simultaneous multithreading in the guest',
  diskSize: 'scratch disk per VM in bytes, or a size like "40GiB"',
  maxRunners: 'most VMs of this definition at once, ≥ 1',
  minIdle: 'idle runners of this definition kept warm, ≤ maxRunners',
  jobTimeout: 'seconds, or a duration like "6h", after which a VM is stopped',
  idleGrace: 'seconds, or a duration like "5m", an idle runner beyond the warm pool is kept before it is stopped',
  unhealthyAfter: 'consecutive failed launches after which the definition is marked unhealthy, ≥ 1',
  kernelArgs: 'extra kernel command-line parameters',
  uid: 'uid the VMM runs as (the jailer drops to it)',
  gid: 'gid the VMM runs as (the jailer drops to it)',
  pidsMax: 'most threads and processes the VMM\'s cgroup allows (pids.max), ≥ 16 (default 512)',
  rateLimits: 'optional per-VM device rate limits, each per second: diskBandwidth, diskIops, networkRx, networkTx',
  diskBandwidth: 'bytes per second each of the VM\'s drives may move, or a size like "200MiB"',
  diskIops: 'operations per second each of the VM\'s drives may do, ≥ 1',
  networkRx: 'bytes per second into the guest, or a size like "100MiB"',
  networkTx: 'bytes per second out of the guest, or a size like "100MiB"',
  egress: 'where this definition\'s guests may connect beyond the host: {allow: [CIDRs, addresses, host names]}; absent means anywhere',
  allow: 'the egress allow-list: addresses, prefixes like "140.82.112.0/20", and host names Flint resolves; [] allows nothing',
  env: 'the name of an environment variable',
};
