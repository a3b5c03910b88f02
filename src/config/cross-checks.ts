/**
 * The rules that relate keys to each other: references between sections
 * (runner.network), unique names, limits that depend on each other, and
 * keys required only in some cases. They run even when other keys of the
 * same object are wrong, on the fields that are right (partialParse), so one
 * check reports everything.
 */
import type { z } from 'zod';
import { didYouMean } from './did-you-mean.ts';
import { DEFAULTS } from './defaults.ts';
import type { ConfigLocator } from './locate.ts';
import { getRaw, isRecord } from './locate.ts';
import type { ConfigProblem, PathSegment } from './problems.ts';
import { formatPath } from './problems.ts';
import type { NetworkShape, ParseContext, RunnerShape } from './schema.ts';
import { KEY_HINTS, networkSchema, runnerSchema } from './schema.ts';
import { isScaleSetMode } from './scale-set-mode.ts';
import { isIpAddress, isLoopbackName, parseListenAddress, v4Range } from './values.ts';
import { addressPool, formatAddress, parseAddress, restrictPool } from '../core/ipam.ts';
import type { AddressPool, IpFamily } from '../core/ipam.ts';
import { isFlintError } from '../core/errors/index.ts';

interface Indexed<T> {
  readonly path: readonly PathSegment[];
  readonly value: T;
}

export function crossChecks(raw: Record<string, unknown>, ctx: ParseContext, file: string, locate: ConfigLocator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (code: ConfigProblem['code'], path: readonly PathSegment[], where: 'key' | 'value', message: string, hint: string) => {
    problems.push({ code, file, ...(where === 'key' ? locate.key(path) : locate.value(path)), path: formatPath(path), message, hint });
  };

  // address host:443 without tls → ACME → an account email and a host name are needed.
  const hasTls = raw['tls'] !== undefined && raw['tls'] !== null;
  if (typeof raw['address'] === 'string' && !hasTls) {
    const a = parseListenAddress(raw['address']);
    if (a.ok && a.value.port === 443 && (a.value.host === '' || isIpAddress(a.value.host.replace(/^\[|\]$/g, '')))) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['address'], 'value', 'port 443 turns on HTTPS with an ACME certificate, which is issued for a host name, not an address', 'write the public DNS name GitHub reaches Flint by, e.g. `address: flint.example.com:443`, or set `tls:` with a certificate you manage');
    }
    if (a.ok && a.value.port === 443 && (raw['email'] === undefined || raw['email'] === null)) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['address'], 'value', 'port 443 turns on HTTPS with an ACME certificate, which needs `email`', 'add `email: you@example.com` (the ACME account contact), or listen on another port behind your own TLS proxy');
    }
  }

  // The status page beyond loopback only with a token: it shows job and repository names, addresses and console output.
  const status = raw['status'];
  if (isRecord(status) && (status['token'] === undefined || status['token'] === null)) {
    const a = typeof status['address'] === 'string' ? parseListenAddress(status['address']) : undefined;
    if (a?.ok === true && !isLoopbackName(a.value.host)) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['status', 'address'], 'value', `the status page on "${a.value.host === '' ? 'every interface' : a.value.host}" would be open to anyone who reaches it`, 'add `token: {env: FLINT_STATUS_TOKEN}` under `status:` (at least 16 characters, e.g. `openssl rand -hex 32`), or keep `address: 127.0.0.1:9090` and reach it through `ssh -L 9090:127.0.0.1:9090 HOST`');
    }
  }

  // A fleet is hosts sharing a PostgreSQL store: on SQLite there is one host and its timings would mean nothing.
  const store = raw['store'];
  if (raw['fleet'] !== undefined && raw['fleet'] !== null && !(isRecord(store) && store['postgres'] !== undefined && store['postgres'] !== null)) {
    add('FLINT_ERR_CONFIG_CONFLICT', ['fleet'], 'key', '`fleet` sets the timings of hosts that share a PostgreSQL store, and there is none', 'add `store: {postgres: {url: …}}` (docs/fleet.md), or remove `fleet:` for a single host');
  }

  // github: exactly one of privateKey / privateKeyFile.
  const gh = raw['github'];
  if (isRecord(gh)) {
    const has = (k: string) => gh[k] !== undefined && gh[k] !== null;
    // Compared as written (an env reference compares by its variable name): a rotation needs two different secrets.
    if (has('previousWebhookSecret') && JSON.stringify(gh['previousWebhookSecret']) === JSON.stringify(gh['webhookSecret'])) {
      add('FLINT_ERR_CONFIG_CONFLICT', ['github', 'previousWebhookSecret'], 'key', 'previousWebhookSecret is the same as webhookSecret', 'during a rotation, webhookSecret is the new secret and previousWebhookSecret the old one; remove previousWebhookSecret when the rotation is done');
    }
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
  // range / range6: inside the subnet's guest addresses, with room for one guest.
  for (const n of nets) {
    const v = n.value;
    for (const [key, family, iface] of [['range', 4, v.v4], ['range6', 6, v.v6]] as const) {
      const range = v[key];
      if (range == null) continue;
      if (iface == null) {
        if (family === 6 && isRecord(getRaw(raw, n.path)) && getRaw(raw, [...n.path, 'v6']) == null) {
          add('FLINT_ERR_CONFIG_CONFLICT', [...n.path, key], 'key', '`range6` needs `v6`: the network hands out no IPv6 addresses', 'add `v6:` (the bridge\'s IPv6 address/prefix) or remove `range6`');
        }
        continue; // a wrong v4/v6 is reported on its own
      }
      const problem = rangeProblem(range, iface, family, v.name ?? '?');
      if (problem !== undefined) add('FLINT_ERR_CONFIG_VALUE', [...n.path, key], 'value', problem.message, problem.hint);
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
  // Webhooks are needed unless every definition learns of its jobs from a scale set.
  const topMode = raw['mode'] === 'scaleset' || raw['mode'] === 'webhook' ? raw['mode'] : undefined;
  const webhookDefs = runners.filter((r) => {
    const rawRunner = getRaw(raw, r.path);
    return !isScaleSetMode(isRecord(rawRunner) ? { mode: r.value.mode, scaleSet: rawRunner['scaleSet'] } : {}, topMode);
  });
  if (isRecord(gh) && (gh['webhookSecret'] === undefined || gh['webhookSecret'] === null) && (webhookDefs.length > 0 || runners.length === 0)) {
    const names = webhookDefs.flatMap((r) => (r.value.name === undefined ? [] : [r.value.name]));
    add('FLINT_ERR_CONFIG_MISSING_KEY', ['github'], 'key', `required key \`webhookSecret\` is missing${names.length > 0 ? ` (runner definitions in webhook mode: ${names.join(', ')})` : ''}`,
      'add `webhookSecret: {env: FLINT_WEBHOOK_SECRET}` (the App\'s webhook secret), or put every runner definition in scale-set mode (`mode: scaleset`) to need no webhook');
  }
  for (const r of runners) {
    const rawRunner = getRaw(raw, r.path);
    if (isRecord(rawRunner) && r.value.mode === 'webhook' && rawRunner['scaleSet'] != null) {
      add('FLINT_ERR_CONFIG_CONFLICT', [...r.path, 'scaleSet'], 'key', '`scaleSet:` is set but `mode` is webhook', 'remove `scaleSet:`, or set `mode: scaleset` (or leave `mode` out)');
    }
  }
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

/** Why a network's range does not fit its subnet, or undefined when it does. */
function rangeProblem(range: { first: string; last: string }, iface: { address: string; prefixLength: number }, family: IpFamily, label: string): { message: string; hint: string } | undefined {
  const first = parseAddress(range.first);
  const last = parseAddress(range.last);
  if (first === undefined || last === undefined) return undefined; // the schema reports it
  let pool: AddressPool;
  try {
    pool = addressPool(iface.address, iface.prefixLength, family, label);
  } catch (err) {
    if (isFlintError(err)) return undefined; // the v4/v6 key reports its own problem
    throw err;
  }
  const guests = `${formatAddress(family, pool.first)}-${formatAddress(family, pool.last)}`;
  try {
    restrictPool(pool, { family, first: first.value, last: last.value }, label);
  } catch (err) {
    if (!isFlintError(err)) throw err;
    const onlyGateway = first.value >= pool.first && last.value <= pool.last;
    return onlyGateway
      ? { message: `${range.first}-${range.last} holds no address but the bridge's own (${iface.address})`, hint: `widen the range within ${guests}` }
      : { message: `${range.first}-${range.last} is not inside the guest addresses ${guests} of ${iface.address}/${iface.prefixLength}`, hint: `choose first and last address within ${guests}` };
  }
  return undefined;
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
