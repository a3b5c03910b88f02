/**
 * flint doctor's checks against a temporary configuration, fake host facts
 * (programs, /proc/mounts, cgroup controllers, bridges, KVM, free space)
 * and the real things where they can be had here: the GitHub simulator for
 * credentials, installation, runner groups and the clock's Date header, and
 * a real Flint webhook intake for the signed ping.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../config/load.ts';
import type { FileNeed } from '../../config/usable.ts';
import { CommandError, type CommandRunner } from '../../adapters/network/command.ts';
import { createGitHubClient } from '../../adapters/github/client.ts';
import { createLogger } from '../../adapters/log/logger.ts';
import { startSimulator, type Simulator } from '../../../tools/github-sim/index.ts';
import { startWebhooksOnly } from '../flint.ts';
import { localWebhookUrl, runDoctor, webhookUrlCheck, type CheckResult, type DoctorInput, type DoctorProbes } from './checks.ts';
import { readPostgresFacts } from './probes.ts';
import { postgresPrereqs, startPostgres, type PostgresCluster } from '../../../test/helpers/postgres.ts';
import { requirePrereqs } from '../../../test/helpers/prereq.ts';
import { openPostgresPool } from '../../adapters/store/postgres/pool.ts';
import { migrate, MIGRATIONS } from '../../adapters/store/postgres/migrations.ts';

const SECRET = 'doctor-webhook-secret-0815';
const GIB = 2 ** 30;

interface Host {
  /** Programs on PATH. */
  programs: Set<string>;
  /** Files that exist, and whether the runner's uid may read them (unless said otherwise, it may). */
  files: Map<string, { exec?: boolean; jailerReadable?: boolean }>;
  /** `--version` output per program path. */
  versions: Map<string, string>;
  /** Bridges and their addresses as `ip -j addr` gives them. */
  bridges: Map<string, { family: string; local: string; prefixlen: number }[]>;
  nft: boolean;
  texts: Map<string, string>;
  modes: Map<string, number>;
  free: number;
  kvm: { device: boolean; runs?: { ok: boolean; reason: string } };
  skewMs: number;
}

function healthyHost(dir: string): Host {
  return {
    programs: new Set(['ip', 'nft', 'mkfs.ext4', 'dumpe2fs', 'fsck.ext4', 'setpriv', 'qemu-system-x86_64']),
    files: new Map([
      [`${dir}/vmlinux`, {}], [`${dir}/rootfs.ext4`, {}],
      [`${dir}/jailer`, { exec: true }], [`${dir}/firecracker`, { exec: true }],
    ]),
    versions: new Map([[`${dir}/jailer`, 'Jailer v1.12.1'], [`${dir}/firecracker`, 'Firecracker v1.12.1\n\nSupported snapshot data format versions: v6.0.0']]),
    bridges: new Map([['br-flint', [{ family: 'inet', local: '10.0.0.1', prefixlen: 24 }]]]),
    nft: true,
    texts: new Map([['/proc/mounts', 'sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n'], ['/sys/fs/cgroup/cgroup.controllers', 'cpuset cpu io memory hugetlb pids\n']]),
    modes: new Map(),
    free: 100 * GIB,
    kvm: { device: true },
    skewMs: 0,
  };
}

function fakeCommands(host: Host): CommandRunner {
  return {
    async run(program, args) {
      const fail = (why: string): never => { throw new CommandError(program, args, 1, why); };
      if (program === 'sh' && args[0] === '-c') {
        const name = args[3] ?? '';
        return host.programs.has(name) ? { stdout: `/usr/sbin/${name}\n`, stderr: '' } : fail('');
      }
      if (program === 'ip') {
        const addrs = host.bridges.get(args[4] ?? '');
        return addrs === undefined ? fail(`Device "${args[4]}" does not exist.`) : { stdout: JSON.stringify([{ ifname: args[4], addr_info: addrs }]), stderr: '' };
      }
      if (program === 'nft') return host.nft ? { stdout: '', stderr: '' } : fail('Operation not permitted');
      const version = host.versions.get(program);
      if (args[0] === '--version' && version !== undefined) return { stdout: version, stderr: '' };
      return fail(`${program} not found`);
    },
  };
}

function probes(host: Host): DoctorProbes {
  return {
    files: {
      check(path: string, need: FileNeed) {
        const f = host.files.get(path);
        if (f === undefined) return 'does not exist';
        if (need.kind === 'exec' && f.exec !== true) return 'is not executable';
        if (need.kind === 'read-as' && f.jailerReadable === false) return `is not readable by uid ${need.uid} / gid ${need.gid} (owner 0:0, mode 0600)`;
        return undefined;
      },
    },
    commands: fakeCommands(host),
    readText: (p) => host.texts.get(p),
    fileMode: (p) => host.modes.get(p),
    freeBytes: () => host.free,
    kvm: async () => host.kvm,
    now: () => Date.now() + host.skewMs,
    fetch: globalThis.fetch,
    github: (config) => createGitHubClient({ github: config.github, retries: 0, requestTimeoutMs: 5_000 }),
    postgres: (store) => readPostgresFacts(store, 5_000),
  };
}

function workDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flint-doctor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A configuration with one Firecracker runner (and optionally a QEMU one) for `sim`. */
function input(dir: string, sim: Simulator | undefined, extra: { group?: string; address?: string; create?: boolean; store?: string; env?: Record<string, string>; scaleSetGroup?: string } = {}): DoctorInput {
  const keyFile = join(dir, 'app.pem');
  writeFileSync(keyFile, sim?.privateKeyPem ?? 'no key', { mode: 0o600 });
  const text = `address: "${extra.address ?? '127.0.0.1:9'}"
stateDir: ${dir}/state
instanceId: doc1
networks:
  - name: br-flint
    v4: 10.0.0.1/24
    create: ${extra.create ?? false}
github:
  appID: ${sim?.appId ?? 4242}
  organization: ${sim?.org ?? 'acme'}
${extra.scaleSetGroup === undefined ? `  webhookSecret: ${SECRET}\n` : ''}  privateKeyFile: ${keyFile}
  apiUrl: ${sim?.apiUrl ?? 'http://127.0.0.1:9'}
runners:
  - name: fc
    group: ${extra.group ?? 'Default'}
    labels: [self-hosted, linux]
    kernel: ${dir}/vmlinux
    filesystem: ${dir}/rootfs.ext4
    jailer: ${dir}/jailer
    firecracker: ${dir}/firecracker
    network: br-flint
${extra.scaleSetGroup === undefined ? '' : `    scaleSet: {runnerGroup: ${extra.scaleSetGroup}}\n`}${extra.store ?? ''}`;
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  const parsed = parseConfig(text, file, extra.env ?? {}, (p) => (p === keyFile ? sim?.privateKeyPem ?? 'no key' : ''), { baseDir: dir });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return { config: parsed.config, locate: parsed.locate, runnerPaths: parsed.runnerPaths, raw: parse(text) };
}

function byName(results: readonly CheckResult[], name: string): CheckResult {
  const r = results.find((x) => x.name === name);
  assert.ok(r !== undefined, `a check named "${name}" in ${results.map((x) => x.name).join(', ')}`);
  return r;
}

async function simulator(t: { after: (fn: () => Promise<void>) => void }, opts: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const sim = await startSimulator({ org: 'doctor-org', ...opts });
  t.after(() => sim.close());
  return sim;
}

test('a ready host with a reachable, installed App: nothing fails, and firecracker and jailer report their versions', async (t) => {
  const dir = workDir(t);
  const sim = await simulator(t, { webhook: { url: 'https://ci.example.org/webhook', secret: SECRET } });
  const results = await runDoctor(input(dir, sim), probes(healthyHost(dir)));
  assert.deepEqual(results.filter((r) => r.status === 'fail' || r.status === 'warn'), []);
  assert.match(byName(results, 'runner fc: firecracker').detail, /: Firecracker v1\.12\.1$/);
  assert.match(byName(results, 'runner fc: jailer').detail, /Jailer v1\.12\.1/);
  assert.match(byName(results, 'runner fc: filesystem').detail, /readable by uid 123 \/ gid 100/);
  assert.match(byName(results, 'github: app installation').detail, new RegExp(`installed on doctor-org \\(installation ${sim.installationId}\\)`));
  assert.equal(byName(results, 'github: runner group Default').status, 'ok');
  assert.equal(byName(results, 'github: webhook URL').detail, 'GitHub sends to https://ci.example.org/webhook, signed');
  assert.match(byName(results, 'github: clock').detail, /^this host's clock is \d+\.\d s (ahead of|behind) GitHub's$/);
  assert.equal(byName(results, 'webhook').status, 'skip', 'nothing listens on the configured address: not checked, and not a failure');
  assert.match(byName(results, 'cgroup v2').detail, /\/sys\/fs\/cgroup: cpu, memory, pids available/);
});

test('a hybrid host whose cgroup v1 hierarchies hold cpu, memory and pids: a warning, not a failure', async (t) => {
  const dir = workDir(t);
  const host = healthyHost(dir);
  host.texts.set('/proc/mounts', ['cpu', 'memory', 'pids'].map((c) => `cgroup /sys/fs/cgroup/${c} cgroup rw,relatime,${c} 0 0`).join('\n') + '\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n');
  host.texts.set('/sys/fs/cgroup/unified/cgroup.controllers', 'hugetlb\n');
  const cg = byName(await runDoctor(input(dir, undefined), probes(host), { offline: true }), 'cgroup v2');
  assert.equal(cg.status, 'warn');
  assert.match(cg.detail, /v1 hierarchies/);
});

test('a host without firecracker, KVM, cgroup controllers, nftables or the bridge: each fails with how to fix it', async (t) => {
  const dir = workDir(t);
  const host = healthyHost(dir);
  host.files.delete(`${dir}/firecracker`);
  host.files.set(`${dir}/rootfs.ext4`, { jailerReadable: false });
  host.programs.delete('mkfs.ext4');
  host.kvm = { device: false };
  host.texts.set('/proc/mounts', 'cgroup /sys/fs/cgroup/memory cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n');
  host.texts.set('/sys/fs/cgroup/unified/cgroup.controllers', 'hugetlb\n');
  host.bridges.clear();
  host.nft = false;
  const results = await runDoctor(input(dir, undefined), probes(host), { offline: true });
  const fc = byName(results, 'runner fc: firecracker');
  assert.equal(fc.status, 'fail');
  assert.match(fc.detail, /firecracker binary .*\/firecracker does not exist/);
  assert.match(fc.hint, /install Firecracker/);
  assert.match(byName(results, 'runner fc: filesystem').detail, /not readable by uid 123 \/ gid 100 .*, which the jailer runs Firecracker as/);
  assert.match(byName(results, 'runner fc: filesystem').hint, /chmod o\+r .*rootfs\.ext4/);
  const mkfs = byName(results, 'program mkfs.ext4');
  assert.deepEqual([mkfs.status, mkfs.hint], ['fail', 'apt-get install e2fsprogs'], 'the package from src/prerequisites.json');
  const kvm = byName(results, 'kvm');
  assert.equal(kvm.status, 'fail', 'Firecracker runners need KVM');
  assert.match(kvm.hint, /hypervisor: qemu/);
  const cg = byName(results, 'cgroup v2');
  assert.equal(cg.status, 'fail');
  assert.match(cg.detail, /lacks the controller\(s\) cpu, memory, pids .*hybrid/);
  assert.match(cg.hint, /systemd\.unified_cgroup_hierarchy=1/);
  const br = byName(results, 'bridge br-flint');
  assert.equal(br.status, 'fail');
  assert.match(br.hint, /ip link add br-flint type bridge .* or set `create: true`/);
  assert.match(byName(results, 'nftables').hint, /apt-get install nftables/);
  assert.deepEqual(['github: clock', 'github: app', 'webhook'].map((n) => byName(results, n).status), ['skip', 'skip', 'skip'], '--offline');
});

test('a missing bridge Flint may create, a bridge with the wrong address, KVM that runs no guest under QEMU, little disk', async (t) => {
  const dir = workDir(t);
  const host = healthyHost(dir);
  host.bridges.clear();
  let results = await runDoctor(input(dir, undefined, { create: true }), probes(host), { offline: true });
  assert.equal(byName(results, 'bridge br-flint').status, 'ok', 'create: true: Flint makes it');

  host.bridges.set('br-flint', [{ family: 'inet', local: '10.9.0.1', prefixlen: 24 }]);
  host.kvm = { device: true, runs: { ok: false, reason: 'QEMU with KVM exited with code 1: error: failed to set MSR' } };
  host.free = 2 * GIB;
  results = await runDoctor(input(dir, undefined), probes(host), { offline: true });
  const br = byName(results, 'bridge br-flint');
  assert.equal(br.status, 'fail');
  assert.match(br.detail, /exists with 10\.9\.0\.1\/24; the configuration expects 10\.0\.0\.1\/24/);
  const kvm = byName(results, 'kvm');
  assert.equal(kvm.status, 'fail');
  assert.match(kvm.detail, /only software emulation works/);
  const disk = byName(results, 'disk: state dir');
  assert.equal(disk.status, 'warn', 'scratch disks are sparse: VMs start, a full one fails its job');
  assert.match(disk.detail, /2\.0 GiB free .* less than one scratch disk \(10\.0 GiB\)/);
  host.free = 100 * 1024 * 1024;
  results = await runDoctor(input(dir, undefined), probes(host), { offline: true });
  assert.equal(byName(results, 'disk: jail dir').status, 'fail');
});

test('the clock: a few seconds off warns, over a minute fails (GitHub refuses the App\'s tokens)', async (t) => {
  const dir = workDir(t);
  const sim = await simulator(t);
  const host = healthyHost(dir);
  host.skewMs = 20_000;
  let clock = byName(await runDoctor(input(dir, sim), probes(host)), 'github: clock');
  assert.equal(clock.status, 'warn');
  assert.match(clock.detail, /clock is (19|20|21)\.\d s ahead of GitHub's/);
  host.skewMs = -180_000;
  clock = byName(await runDoctor(input(dir, sim), probes(host)), 'github: clock');
  assert.equal(clock.status, 'fail');
  assert.match(clock.detail, /behind GitHub's: GitHub rejects the App's tokens beyond 60 s/);
  assert.match(clock.hint, /timedatectl set-ntp true/);
});

test('the App not installed on the organization, and a runner group GitHub does not have', async (t) => {
  const dir = workDir(t);
  const notInstalled = await simulator(t, { installed: false });
  let results = await runDoctor(input(dir, notInstalled), probes(healthyHost(dir)));
  const app = byName(results, 'github: app installation');
  assert.equal(app.status, 'fail');
  assert.match(app.detail, /FLINT_ERR_GITHUB_APP_NOT_INSTALLED/);
  assert.match(app.hint, /Install the App on organization doctor-org/);

  const sim = await simulator(t);
  results = await runDoctor(input(dir, sim, { group: 'gpu' }), probes(healthyHost(dir)));
  assert.equal(byName(results, 'github: app installation').status, 'ok');
  assert.equal(byName(results, 'github: runner group gpu').status, 'fail');
});

test('an unusable private key fails the credentials check and the App is then not asked', async (t) => {
  const dir = workDir(t);
  const results = await runDoctor(input(dir, undefined), probes(healthyHost(dir)));
  assert.equal(byName(results, 'github: credentials in config').status, 'fail');
  assert.equal(byName(results, 'github: app installation').status, 'skip');
});

test('the webhook: a Flint with the same secret takes the signed ping; one with another secret refuses it', async (t) => {
  const dir = workDir(t);
  const sim = await simulator(t);
  const base = input(dir, sim, { address: '127.0.0.1:0' });
  const logger = createLogger({ level: 'silent', destination: { write: () => undefined }, secrets: new Set() });
  for (const [secret, status] of [[SECRET, 'ok'], ['another-secret', 'fail']] as const) {
    const config = { ...base.config, stateDir: join(dir, `state-${status}`), github: { ...base.config.github, webhookSecrets: [secret] } };
    const serving = await startWebhooksOnly({ config, logger });
    try {
      const address = new URL(serving.url).host;
      const results = await runDoctor({ ...base, config: { ...base.config, address } }, probes(healthyHost(dir)));
      const hook = byName(results, 'webhook');
      assert.equal(hook.status, status, hook.detail);
      if (status === 'fail') assert.match(hook.detail, /refused the ping's signature/);
    } finally {
      await serving.close();
    }
  }
});

test('a configuration holding secrets inline that others may read is a warning with the chmod', async (t) => {
  const dir = workDir(t);
  const host = healthyHost(dir);
  const inp = input(dir, undefined);
  host.modes.set(inp.config.source, 0o100644);
  const r = byName(await runDoctor(inp, probes(host), { offline: true }), 'config file');
  assert.equal(r.status, 'warn');
  assert.match(r.detail, /holds github\.webhookSecret and its group and every user of this host may read it \(mode 644\)/);
  assert.match(r.hint, /^chmod 600 /);
  host.modes.set(inp.config.source, 0o100600);
  assert.equal(byName(await runDoctor(inp, probes(host), { offline: true }), 'config file').status, 'ok');
  const keyFile = inp.config.github.privateKeyFile ?? '';
  host.modes.set(keyFile, 0o100640);
  const key = byName(await runDoctor(inp, probes(host), { offline: true }), 'private key file');
  assert.deepEqual([key.status, key.hint], ['warn', `chmod 600 ${keyFile} (owned by the user Flint runs as)`]);
  assert.match(key.detail, /holds the App's private key and its group may read it \(mode 640\)/);
});

test('the webhook URL doctor pings: loopback for a wildcard host, https for 443 and tls', () => {
  assert.equal(localWebhookUrl({ address: '0.0.0.0:8080' }), 'http://127.0.0.1:8080/webhook');
  assert.equal(localWebhookUrl({ address: 'flint.example.com:443' }), 'https://flint.example.com/webhook');
  assert.equal(localWebhookUrl({ address: ':8443', tls: { certFile: '/c', keyFile: '/k' } }), 'https://127.0.0.1:8443/webhook');
});

test('the App\'s webhook URL as GitHub reports it, against where Flint listens', async (t) => {
  const dir = workDir(t);
  const sim = await simulator(t, { webhook: { url: 'https://flint.example.com/webhook', secret: SECRET } });
  const results = await runDoctor(input(dir, sim), probes(healthyHost(dir)));
  const hook = byName(results, 'github: webhook URL');
  assert.deepEqual([hook.status, hook.detail], ['ok', 'GitHub sends to https://flint.example.com/webhook, signed']);
  const none = await simulator(t);
  const unset = byName(await runDoctor(input(dir, none), probes(healthyHost(dir))), 'github: webhook URL');
  assert.equal(unset.status, 'warn', 'no webhook: the missed-jobs scan still finds jobs');
  assert.match(unset.detail, /the App has no webhook URL: .* found only by the missed-jobs scan/);

  const acme = { address: 'flint.example.com:443' };
  const hookAt = (url: string, more: { insecureSsl?: boolean; hasSecret?: boolean } = {}) => webhookUrlCheck(acme, { url, insecureSsl: more.insecureSsl ?? false, hasSecret: more.hasSecret ?? true });
  assert.equal(hookAt('https://flint.example.com/webhook').status, 'ok');
  assert.match(hookAt('https://flint.example.com/hooks').detail, /Flint answers only \/webhook/);
  assert.match(hookAt('https://other.example.com/webhook').hint, /set Webhook URL to https:\/\/flint\.example\.com\/webhook/);
  assert.match(hookAt('http://flint.example.com/webhook').detail, /Flint serves HTTPS for flint\.example\.com/);
  assert.match(hookAt('https://flint.example.com/webhook', { hasSecret: false }).detail, /no secret: Flint refuses unsigned deliveries/);
  assert.match(hookAt('https://flint.example.com/webhook', { insecureSsl: true }).detail, /without checking its TLS certificate/);
  assert.ok(!hookAt('https://u:p@flint.example.com/hooks?token=x').detail.includes('token=x'), 'no query string (it may carry a token) in the report');
  assert.equal(webhookUrlCheck({ address: '127.0.0.1:8080' }, { url: 'https://ci.example.org/webhook/flint', insecureSsl: false, hasSecret: true }).status, 'ok', 'behind a proxy any host goes');
});

test('every runner definition on a scale set: no webhook URL, secret or endpoint is asked for, and the group checked is the scale set\'s', async (t) => {
  const dir = workDir(t);
  // An App without a webhook URL: a warning in webhook mode, irrelevant here.
  const sim = await simulator(t);
  const logger = createLogger({ level: 'silent', destination: { write: () => undefined }, secrets: new Set() });
  // A Flint with some other secret listens where the configuration points: the ping would be refused.
  const other = input(dir, sim, { address: '127.0.0.1:0' });
  const serving = await startWebhooksOnly({ config: { ...other.config, stateDir: join(dir, 'state-other'), github: { ...other.config.github, webhookSecrets: ['another-secret'] } }, logger });
  t.after(() => serving.close());
  const inp = input(dir, sim, { group: 'no-such-group', scaleSetGroup: 'Default', address: new URL(serving.url).host });
  assert.deepEqual(inp.config.github.webhookSecrets, [], 'scale-set mode needs no webhook secret');
  const results = await runDoctor(inp, probes(healthyHost(dir)));
  assert.deepEqual(results.filter((r) => r.status === 'fail' || r.status === 'warn'), []);
  for (const name of ['github: webhook URL', 'webhook']) {
    const r = byName(results, name);
    assert.deepEqual([r.status, r.detail], ['skip', 'not needed: every runner definition takes its jobs from a scale set\'s message queue, not from webhooks']);
  }
  assert.equal(byName(results, 'github: runner group Default').status, 'ok');
  assert.ok(!results.some((r) => r.name === 'github: runner group no-such-group'), 'the definition\'s own group is not where its scale set\'s runners go');
});

let cluster: Promise<PostgresCluster> | undefined;
after(async () => {
  const c = await cluster?.catch(() => undefined);
  await c?.stop();
});

const PASSWORD = 'pg-password-never-shown-4711';

/** A configuration whose store is `url`, with the password from the environment (the test cluster trusts its socket: any password logs in). */
function pgInput(dir: string, url: string): DoctorInput {
  return input(dir, undefined, { store: `store:\n  postgres:\n    url: "${url}"\n    passwordEnv: FLINT_PGPASSWORD\n`, env: { FLINT_PGPASSWORD: PASSWORD } });
}

async function pgChecks(dir: string, url: string): Promise<CheckResult[]> {
  const results = await runDoctor(pgInput(dir, url), probes(healthyHost(dir)), { offline: true });
  assert.ok(!JSON.stringify(results).includes(PASSWORD), 'the password is in no check');
  return results.filter((r) => r.name.startsWith('store: '));
}

test('doctor on a PostgreSQL store: the server\'s version, an empty schema, an older one Flint will migrate, the fleet\'s hosts and their heartbeats', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const c = await (cluster ??= startPostgres());
  const dir = workDir(t);
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  const url = await c.createSchema();
  t.after(() => c.dropSchema(url));

  let [store, ...rest] = await pgChecks(dir, url);
  assert.equal(store?.status, 'ok');
  assert.match(store?.detail ?? '', new RegExp(`^PostgreSQL \\d+\\.\\d+.* at postgresql://flint@localhost/.*: no Flint tables yet; \`flint serve\` creates them \\(schema version ${known}\\)$`));
  assert.deepEqual(rest, [], 'no fleet table yet: no fleet check');

  const pool = openPostgresPool({ url });
  t.after(() => pool.end());
  await migrate(pool, MIGRATIONS.filter((m) => m.version <= 2));
  const now = Date.now();
  // Rows as a host of that older schema wrote them (today's heartbeat writes columns of later migrations).
  const beat = (id: string, vms: number, at: number) => pool.query(
    'INSERT INTO fleet_hosts (id, vcpus, memory_mib, vms, first_seen_at, last_heartbeat_at) VALUES ($1, 8, 16384, $2, $3, $3)', [id, vms, at]);
  await beat('doc1', 2, now - 4_000);
  await beat('h2', 0, now - 3 * 3_600_000);
  [store, ...rest] = await pgChecks(dir, url);
  assert.deepEqual([store?.status, store?.detail.replace(/^.*: schema/, 'schema')], ['ok', `schema version 2; \`flint serve\` migrates it to ${known} at start`]);
  assert.equal(rest.length, 1);
  assert.equal(rest[0]?.name, 'store: fleet');
  assert.match(rest[0]?.detail ?? '', /^2 host\(s\) on record, 1 heartbeating: doc1 \(heartbeat [45] s ago, this configuration's instanceId\), h2 \(heartbeat 3 h ago, silent: stopped or gone\)$/);

  await migrate(pool);
  [store] = await pgChecks(dir, url);
  assert.match(store?.detail ?? '', new RegExp(`: schema version ${known} \\(current\\)$`));
});

test('doctor on a PostgreSQL store whose schema is newer than this Flint: FLINT_ERR_STORE_SCHEMA_NEWER, with the upgrade hint', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const c = await (cluster ??= startPostgres());
  const dir = workDir(t);
  const url = await c.createSchema();
  t.after(() => c.dropSchema(url));
  const pool = openPostgresPool({ url });
  t.after(() => pool.end());
  await migrate(pool);
  await pool.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from a newer Flint')");
  const [store] = await pgChecks(dir, url);
  assert.equal(store?.status, 'fail');
  assert.match(store?.detail ?? '', /^FLINT_ERR_STORE_SCHEMA_NEWER: .*schema version 999, newer than this Flint knows/);
  assert.match(store?.hint ?? '', /upgrade Flint on this host/);
});

test('doctor on a PostgreSQL store it cannot log in to, or cannot reach: each fails with what to check', async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const c = await (cluster ??= startPostgres());
  const dir = workDir(t);
  const refused = (await pgChecks(dir, `postgresql://nobody@localhost/flint_test?host=${encodeURIComponent(c.socketDir)}`))[0];
  assert.equal(refused?.status, 'fail');
  assert.match(refused?.detail ?? '', /refused the login: .*role "nobody" does not exist/);
  assert.match(refused?.hint ?? '', /passwordFile or passwordEnv/);

  const nowhere = join(dir, 'no-server-here');
  const down = (await pgChecks(dir, `postgresql://flint@localhost/flint_test?host=${encodeURIComponent(nowhere)}`))[0];
  assert.equal(down?.status, 'fail');
  assert.match(down?.detail ?? '', /^FLINT_ERR_STORE_UNREACHABLE: cannot reach the PostgreSQL store at postgresql:\/\/flint@localhost\/flint_test/);
  assert.match(down?.hint ?? '', /pg_hba\.conf/);
});
