import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { DEFAULTS, loadConfigFile, parseConfig } from './load.ts';
import { deriveInstanceId } from './values.ts';
import { summarizeConfig } from './summary.ts';
import { isFlintError } from '../core/errors/index.ts';
import type { ParseOptions } from './load.ts';
import type { ConfigProblem } from './problems.ts';
import { formatProblem } from './problems.ts';
import { KNOWN_KEYS } from './schema.ts';
import type { FlintConfig } from './types.ts';

const SEED = fileURLToPath(new URL('../../test/fixtures/seed-config.yaml', import.meta.url));
const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};

function parse(text: string, env: Record<string, string | undefined> = {}, readFile = noFiles, options: ParseOptions = {}) {
  return parseConfig(text, '/etc/flint/config.yaml', env, readFile, options);
}
function ok(text: string, env: Record<string, string | undefined> = {}, readFile = noFiles, options: ParseOptions = {}): FlintConfig {
  const r = parse(text, env, readFile, options);
  if (!r.ok) assert.fail(`expected a valid config, got:\n${r.problems.map(formatProblem).join('\n')}`);
  return r.config;
}
function problems(text: string, env: Record<string, string | undefined> = {}, readFile = noFiles): readonly ConfigProblem[] {
  const r = parse(text, env, readFile);
  if (r.ok) assert.fail('expected problems, the config was accepted');
  return r.problems;
}
function only(list: readonly ConfigProblem[]): ConfigProblem {
  assert.equal(list.length, 1, `expected exactly one problem, got:\n${list.map(formatProblem).join('\n')}`);
  return list[0] as ConfigProblem; // length checked just above
}

/** A small valid file; tests change one thing at a time. Line numbers below refer to it. */
const BASE = `logLevel: info
address: ":8080"
networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 1234
  organization: acme
  webhookSecret: s3cret-webhook
  privateKey: inline-key
runners:
  - name: small
    labels: [self-hosted, linux]
    kernel: /srv/flint/vmlinux
    filesystem: /srv/flint/rootfs.ext4
    jailer: /usr/bin/jailer
    firecracker: /usr/bin/firecracker
    network: br-flint
`;
const edit = (from: string, to: string): string => {
  assert.ok(BASE.includes(from), `BASE has no "${from}"`);
  return BASE.replace(from, to);
};

test('the seed file of the reference system loads with exactly its meaning', () => {
  const c = ok(readFileSync(SEED, 'utf8'), {}, noFiles, { hostname: 'builder-1' });
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.address, 'example.net:443');
  assert.equal(c.email, 'flint@example.net');
  assert.deepEqual(c.networks, [{ name: 'br-default', v4: { address: '10.0.0.1', prefixLength: 24 }, create: false, dns: ['1.1.1.1'] }]);
  assert.equal(c.github.appId, 'ID');
  assert.equal(c.github.organization, 'ORGANIZATION');
  assert.deepEqual(c.github.webhookSecrets, ['WEBHOOK_SECRET']);
  assert.equal(c.github.privateKey, '-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n');
  assert.equal(c.github.apiUrl, 'https://api.github.com');
  assert.equal(c.runners.length, 1);
  const r = c.runners[0];
  assert.ok(r);
  assert.equal(r.name, 'Default');
  assert.equal(r.group, 'Default');
  assert.deepEqual(r.labels, ['self-hosted', 'Linux', 'amd64']);
  assert.equal(r.kernel, '/root/flint/kernel/build/kernel/linux/vmlinux');
  assert.equal(r.filesystem, '/root/flint/fs/build/rootfs/bazel.ext4');
  assert.equal(r.jailer, '/root/flint/jailer');
  assert.equal(r.firecracker, '/root/flint/firecracker');
  assert.equal(r.network, 'br-default');
  assert.equal(r.cpuCount, 8);
  assert.equal(r.memorySize, 16384);
  assert.equal(r.smt, true);
  assert.equal(r.diskSize, 42949672960);
  assert.equal(r.hypervisor, 'firecracker');
  assert.equal(r.static, false);
  assert.equal(r.uid, 123);
  assert.equal(r.gid, 100);
});

test('defaults of the reference system and of Flint are applied to a minimal runner', () => {
  const c = ok(BASE);
  const r = c.runners[0];
  assert.ok(r);
  assert.equal(r.cpuCount, 2);
  assert.equal(r.memorySize, 4096);
  assert.equal(r.smt, false);
  assert.equal(r.diskSize, 10 * 1024 ** 3);
  assert.equal(r.group, 'Default');
  assert.equal(r.maxRunners, DEFAULTS.maxRunners);
  assert.equal(r.minIdle, 0);
  assert.equal(r.jobTimeoutSeconds, 6 * 3600);
  assert.equal(r.kernelArgs, '');
  assert.equal(r.qemu, 'qemu-system-x86_64');
  assert.equal(r.pidsMax, DEFAULTS.pidsMax);
  assert.equal(r.rateLimits, undefined, 'no rate limits unless asked for');
  assert.equal(c.stateDir, '/var/lib/flint');
  assert.equal(c.github.apiUrl, 'https://api.github.com');
  assert.equal(c.github.appId, '1234');
  assert.match(c.instanceId, /^[a-z0-9]{6}$/);
});

test('pidsMax and rate limits: sizes per second, any subset, typos and nonsense refused', () => {
  const r = ok(edit('    network: br-flint\n', '    network: br-flint\n    pidsMax: 300\n    rateLimits: {diskBandwidth: 200MiB, diskIops: 5000, networkTx: 1048576}\n')).runners[0];
  assert.equal(r?.pidsMax, 300);
  assert.deepEqual(r?.rateLimits, { disk: { bytesPerSecond: 200 * 2 ** 20, opsPerSecond: 5000 }, network: { txBytesPerSecond: 2 ** 20 } });
  const onlyRx = ok(edit('    network: br-flint\n', '    network: br-flint\n    rateLimits: {networkRx: 10MiB}\n')).runners[0];
  assert.deepEqual(onlyRx?.rateLimits, { network: { rxBytesPerSecond: 10 * 2 ** 20 } });
  const typo = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    rateLimits: {diskBandwith: 1MiB}\n')));
  assert.equal(typo.code, 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
  assert.match(typo.hint, /`diskBandwidth`/);
  assert.equal(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    rateLimits: {networkRx: 100}\n'))).path, 'runners[0].rateLimits.networkRx');
  assert.equal(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    pidsMax: 3\n'))).path, 'runners[0].pidsMax');
});

test('a misspelt key is an error with did-you-mean at the exact line and column', () => {
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    memsize: 8192\n')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
  assert.equal(p.path, 'runners[0].memsize');
  assert.equal(p.line, 19);
  assert.equal(p.column, 5);
  assert.match(p.hint, /did you mean `memorySize`\?/);
  assert.equal(formatProblem(p), '/etc/flint/config.yaml:19:5: runners[0].memsize: unknown key `memsize` (did you mean `memorySize`?)');
});

test('snake_case and case slips find the key too; appId finds appID', () => {
  const p = only(problems(edit('  appID: 1234', '  appId: 1234')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
  assert.match(p.hint, /`appID`/);
  const q = problems(edit('    network: br-flint\n', '    network: br-flint\n    cpu_count: 4\n'));
  assert.match(only(q).hint, /`cpuCount`/);
});

test('a key in the wrong section says where it belongs', () => {
  const p = only(problems(`cpuCount: 4\n${BASE}`));
  assert.equal(p.path, 'cpuCount');
  assert.match(p.hint, /belongs in a runner/);
});

test('a value of the wrong type names what was expected, at the value', () => {
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    cpuCount: eight\n')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_VALUE');
  assert.equal(p.path, 'runners[0].cpuCount');
  assert.deepEqual([p.line, p.column], [19, 15]);
  assert.match(p.message, /expected a number, got a string/);
  assert.match(p.hint, /vCPUs/);
});

test('a secret or label that YAML reads as a number is refused with "put it in quotes", never converted', () => {
  const p = only(problems(edit('  webhookSecret: s3cret-webhook', '  webhookSecret: 0123456')));
  assert.equal(p.path, 'github.webhookSecret');
  assert.match(p.hint, /quotes/);
  assert.ok(!formatProblem(p).includes('123456'));
  assert.match(only(problems(edit('labels: [self-hosted, linux]', 'labels: [self-hosted, 2204]'))).hint, /quotes/);
});

test('out-of-range numbers are reported with their bound', () => {
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    cpuCount: 64\n')));
  assert.match(p.message, /at most 32/);
  const q = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    memorySize: 64\n')));
  assert.match(q.message, /at least 128 MiB/);
});

test('a missing required key points at the object that lacks it', () => {
  const p = only(problems(edit('    kernel: /srv/flint/vmlinux\n', '')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_MISSING_KEY');
  assert.equal(p.path, 'runners[0].kernel');
  assert.deepEqual([p.line, p.column], [12, 5]);
  assert.match(p.message, /required key `kernel` is missing/);
  const q = only(problems(edit('  organization: acme\n', '')));
  assert.equal(q.path, 'github.organization');
});

test('every problem is reported, in file order, not just the first', () => {
  const text = BASE.replace('logLevel: info', 'logLevel: loud')
    .replace('v4: 10.0.0.1/24', 'v4: 10.0.0.0/24')
    .replace('  organization: acme\n', '')
    .replace('labels: [self-hosted, linux]', 'labels: []')
    .replace('    network: br-flint\n', '    network: br-flint\n    smt: maybe\n    jobTimeout: soon\n');
  const list = problems(text);
  assert.deepEqual(list.map((p) => p.path), ['logLevel', 'networks[0].v4', 'github.organization', 'runners[0].labels', 'runners[0].smt', 'runners[0].jobTimeout']);
  const lines = list.map((p) => p.line);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
});

test('secrets can come from environment variables with {env: NAME}', () => {
  const text = edit('  webhookSecret: s3cret-webhook\n  privateKey: inline-key\n',
    '  webhookSecret: {env: FLINT_WEBHOOK_SECRET}\n  previousWebhookSecret: {env: FLINT_OLD_SECRET}\n  privateKey:\n    env: FLINT_APP_KEY\n');
  const c = ok(text, { FLINT_WEBHOOK_SECRET: 'from-env', FLINT_OLD_SECRET: 'older', FLINT_APP_KEY: 'pem-from-env' });
  assert.deepEqual(c.github.webhookSecrets, ['from-env', 'older']);
  assert.equal(c.github.privateKey, 'pem-from-env');
});

test('a missing environment variable is its own problem, naming the variable, at the reference', () => {
  const text = edit('  webhookSecret: s3cret-webhook', '  webhookSecret: {env: FLINT_WEBHOOK_SECRET}');
  const p = only(problems(text, {}));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_ENV_MISSING');
  assert.equal(p.path, 'github.webhookSecret');
  assert.deepEqual([p.line, p.column], [9, 18]);
  assert.match(p.message, /FLINT_WEBHOOK_SECRET is not set/);
  assert.equal(only(problems(text, { FLINT_WEBHOOK_SECRET: '' })).code, 'FLINT_ERR_CONFIG_ENV_MISSING');
  const bad = only(problems(edit('  webhookSecret: s3cret-webhook', '  webhookSecret: {env: "not a name"}')));
  assert.equal(bad.path, 'github.webhookSecret.env');
});

test('both privateKey and privateKeyFile is a conflict; neither is a missing key', () => {
  const both = only(problems(edit('  privateKey: inline-key', '  privateKey: inline-key\n  privateKeyFile: /etc/flint/app.pem'), {}, () => 'pem'));
  assert.equal(both.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(both.path, 'github.privateKeyFile');
  assert.deepEqual([both.line, both.column], [11, 3]);
  const neither = only(problems(edit('  privateKey: inline-key\n', '')));
  assert.equal(neither.code, 'FLINT_ERR_CONFIG_MISSING_KEY');
  assert.match(neither.hint, /privateKeyFile/);
});

test('privateKeyFile is read through the injected reader, relative to the config file', () => {
  const read: string[] = [];
  const c = ok(edit('  privateKey: inline-key', '  privateKeyFile: keys/app.pem'), {}, (p) => { read.push(p); return 'PEM TEXT'; });
  assert.deepEqual(read, ['/etc/flint/keys/app.pem']);
  assert.equal(c.github.privateKey, 'PEM TEXT');
  assert.equal(c.github.privateKeyFile, '/etc/flint/keys/app.pem');
  const p = only(problems(edit('  privateKey: inline-key', '  privateKeyFile: /nope/app.pem')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_SECRET_FILE');
  assert.match(p.message, /cannot read \/nope\/app.pem \(ENOENT\)/);
});

test('organization must be a GitHub account name; a rotation needs two different secrets', () => {
  assert.equal(only(problems(edit('  organization: acme', '  organization: "acme corp"'))).path, 'github.organization');
  assert.equal(only(problems(edit('  organization: acme', '  organization: -acme'))).path, 'github.organization');
  const same = only(problems(edit('  webhookSecret: s3cret-webhook', '  webhookSecret: s3cret-webhook\n  previousWebhookSecret: s3cret-webhook')));
  assert.equal(same.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.ok(!formatProblem(same).includes('s3cret-webhook'));
});

test('problem messages never repeat a secret value', () => {
  const text = edit('  webhookSecret: s3cret-webhook\n  privateKey: inline-key\n', '  webhookSecret: [s3cret-webhook]\n  privateKey: {envv: inline-key}\n');
  const out = problems(text).map(formatProblem).join('\n');
  assert.ok(!out.includes('s3cret-webhook'), out);
  assert.ok(!out.includes('inline-key'), out);
});

test('YAML syntax errors and duplicate keys come with their position', () => {
  const p = problems('networks:\n  - name: a\n   v4: x\n')[0];
  assert.ok(p);
  assert.equal(p.code, 'FLINT_ERR_CONFIG_SYNTAX');
  assert.ok(p.line >= 2);
  const dup = only(problems(edit('  organization: acme\n', '  organization: acme\n  organization: other\n')));
  assert.equal(dup.code, 'FLINT_ERR_CONFIG_SYNTAX');
  assert.equal(dup.line, 9);
  assert.match(dup.hint, /once/);
});

test('a second YAML document is refused in operator words', () => {
  const p = only(problems(`${BASE}---\nlogLevel: debug\n`));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_SYNTAX');
  assert.match(p.message, /more than one YAML document/);
});

test('an empty file or a file that is not a mapping is one clear problem', () => {
  assert.match(only(problems('')).message, /empty/);
  assert.match(only(problems('- a\n- b\n')).message, /mapping/);
});

test('v4 must be a host address of its subnet with room for guests', () => {
  const net = (v4: string) => problems(edit('v4: 10.0.0.1/24', `v4: ${v4}`));
  assert.match(only(net('10.0.0.0/24')).message, /network address.*10\.0\.0\.1\/24/);
  assert.match(only(net('10.0.0.255/24')).message, /broadcast/);
  assert.match(only(net('10.0.0.1/31')).message, /out of range/);
  assert.match(only(net('10.0.0.1')).message, /not an IPv4 address with prefix/);
  assert.match(only(net('300.0.0.1/24')).message, /not an IPv4/);
  assert.equal(ok(edit('v4: 10.0.0.1/24', 'v4: 10.0.0.77/24')).networks[0]?.v4.address, '10.0.0.77');
});

test('v6, dns and create are understood; overlapping subnets conflict', () => {
  const c = ok(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    v6: "fd00:f1::1/64"\n    create: true\n    dns: [9.9.9.9, "2620:fe::fe"]\n'));
  assert.deepEqual(c.networks[0], { name: 'br-flint', v4: { address: '10.0.0.1', prefixLength: 24 }, v6: { address: 'fd00:f1::1', prefixLength: 64 }, create: true, dns: ['9.9.9.9', '2620:fe::fe'] });
  assert.match(only(problems(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    v6: "fd00:f1::/64"\n'))).message, /router anycast/);
  const two = edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n  - name: br-two\n    v4: 10.0.0.129/25\n');
  const p = only(problems(two));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(p.path, 'networks[1].v4');
});

test('range and range6 narrow the addresses a network hands out; a wrong one is reported at its line and key', () => {
  const c = ok(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    range: 10.0.0.100-10.0.0.149\n    v6: "fd00:f1::1/64"\n    range6: "FD00:F1::100 - fd00:f1::1ff"\n'));
  assert.deepEqual(c.networks[0]?.range, { first: '10.0.0.100', last: '10.0.0.149' });
  assert.deepEqual(c.networks[0]?.range6, { first: 'fd00:f1::100', last: 'fd00:f1::1ff' }, 'canonical text');
  assert.equal(c.runDir, '/run/flint');
  const one = (range: string): ConfigProblem => only(problems(edit('    v4: 10.0.0.1/24\n', `    v4: 10.0.0.1/24\n    range: "${range}"\n`)));
  const outside = one('10.0.0.200-10.0.1.5');
  assert.equal(outside.code, 'FLINT_ERR_CONFIG_VALUE');
  assert.equal(outside.path, 'networks[0].range');
  assert.equal(outside.line, 6);
  assert.match(outside.message, /not inside the guest addresses 10\.0\.0\.1-10\.0\.0\.254/);
  assert.match(one('10.0.0.1-10.0.0.1').message, /no address but the bridge's own/);
  assert.match(one('10.0.0.9-10.0.0.2').message, /ends before it starts/);
  assert.match(one('10.0.0.9').message, /not a range/);
  assert.match(one('fd00:f1::1-fd00:f1::9').message, /IPv6 range; this key takes IPv4/);
  const noV6 = only(problems(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    range6: "fd00::2-fd00::9"\n')));
  assert.equal(noV6.path, 'networks[0].range6');
  assert.match(noV6.message, /needs `v6`/);
  assert.equal(ok(edit('address: ":8080"\n', 'address: ":8080"\nrunDir: /run/flint-a\n')).runDir, '/run/flint-a');
});

test('port 443 turns on ACME and needs email', () => {
  const p = only(problems(edit('address: ":8080"', 'address: flint.example.com:443')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(p.path, 'address');
  assert.match(p.message, /needs `email`/);
  assert.equal(ok(edit('address: ":8080"', 'address: flint.example.com:443\nemail: ops@example.com')).email, 'ops@example.com');
  assert.match(only(problems(edit('address: ":8080"', 'address: "nope"'))).message, /not a listen address/);
});

test('acme: the directory defaults to Let\'s Encrypt; a private CA takes directoryUrl and caFile; port 443 needs a host name', () => {
  const acme = 'address: flint.example.com:443\nemail: ops@example.com';
  assert.deepEqual(ok(edit('address: ":8080"', acme)).acme, { directoryUrl: DEFAULTS.acmeDirectoryUrl });
  const files = (path: string): string => (path === '/etc/flint/ca.pem' ? 'PEM' : noFiles(path));
  assert.deepEqual(ok(edit('address: ":8080"', `${acme}\nacme: {directoryUrl: "https://ca.internal/dir", caFile: ca.pem}`), {}, files).acme,
    { directoryUrl: 'https://ca.internal/dir', caFile: '/etc/flint/ca.pem' });
  assert.match(only(problems(edit('address: ":8080"', `${acme}\nacme: {directoryUrl: "http://ca.internal/dir"}`))).message, /must be an https URL/);
  const missing = only(problems(edit('address: ":8080"', `${acme}\nacme: {caFile: /nope.pem}`)));
  assert.equal(missing.path, 'acme.caFile');
  assert.equal(missing.code, 'FLINT_ERR_CONFIG_SECRET_FILE');
  assert.equal(only(problems(edit('address: ":8080"', `${acme}\nacme: {directory: x}`))).code, 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
  assert.match(only(problems(edit('address: ":8080"', 'address: ":443"\nemail: ops@example.com'))).message, /host name, not an address/);
});

test('tls: an operator-managed certificate on any port, with no email needed on 443', () => {
  const files = (path: string): string => (path.startsWith('/etc/flint/tls/') ? 'PEM' : noFiles(path));
  const c = ok(edit('address: ":8080"', 'address: ":443"\ntls: {certFile: tls/cert.pem, keyFile: /etc/flint/tls/key.pem}'), {}, files);
  assert.deepEqual(c.tls, { certFile: '/etc/flint/tls/cert.pem', keyFile: '/etc/flint/tls/key.pem' });
  assert.equal(only(problems(edit('address: ":8080"', 'tls: {certFile: /etc/flint/tls/cert.pem}'), {}, files)).path, 'tls.keyFile');
});

test('runner.network must name a network, with a suggestion for a near miss', () => {
  const p = only(problems(edit('    network: br-flint', '    network: br-flnt')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(p.path, 'runners[0].network');
  assert.match(p.hint, /did you mean "br-flint"/);
  // With a single network, network may be left out.
  assert.equal(ok(edit('    network: br-flint\n', '')).runners[0]?.network, 'br-flint');
});

test('runner names are unique across runners and static_runners', () => {
  const text = `${BASE}static_runners:\n  - name: small\n    labels: [always]\n    kernel: /k\n    filesystem: /f\n    hypervisor: qemu\n`;
  const p = only(problems(text));
  assert.equal(p.path, 'static_runners[0].name');
  assert.match(p.message, /used twice \(also runners\[0\]\)/);
});

test('labels must be a non-empty list of non-empty strings, each once', () => {
  assert.match(only(problems(edit('labels: [self-hosted, linux]', 'labels: []'))).message, /must not be empty/);
  assert.equal(only(problems(edit('labels: [self-hosted, linux]', 'labels: [self-hosted, ""]'))).path, 'runners[0].labels[1]');
  assert.match(only(problems(edit('labels: [self-hosted, linux]', 'labels: [linux, Linux]'))).message, /listed twice/);
});

test('maxRunners must be at least minIdle; static runners keep all of theirs warm', () => {
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    maxRunners: 2\n    minIdle: 3\n')));
  assert.equal(p.path, 'runners[0].minIdle');
  const text = `${BASE}static_runners:\n  - name: always\n    labels: [always]\n    kernel: /k\n    filesystem: /f\n    hypervisor: qemu\n    maxRunners: 3\n`;
  const s = ok(text).runners[1];
  assert.ok(s);
  assert.equal(s.static, true);
  assert.equal(s.minIdle, 3);
});

test('durations, sizes and limits accept numbers and readable strings', () => {
  const c = ok(edit('    network: br-flint\n', '    network: br-flint\n    jobTimeout: 1h30m\n    diskSize: 40GiB\n    memorySize: 2GiB\n    maxRunners: 4\n    minIdle: 1\n'));
  const r = c.runners[0];
  assert.ok(r);
  assert.equal(r.jobTimeoutSeconds, 5400);
  assert.equal(r.diskSize, 40 * 2 ** 30);
  assert.equal(r.memorySize, 2048);
  assert.equal(ok(edit('    network: br-flint\n', '    network: br-flint\n    jobTimeout: 600\n')).runners[0]?.jobTimeoutSeconds, 600);
  assert.match(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    diskSize: 40GB\n'))).message, /binary unit/);
});

test('idle grace and the unhealthy threshold default to 5 minutes and 3, and are checked with their line', () => {
  const r = ok(BASE).runners[0];
  assert.equal(r?.idleGraceSeconds, 300);
  assert.equal(r?.unhealthyAfter, 3);
  const c = ok(edit('    network: br-flint\n', '    network: br-flint\n    idleGrace: 10m\n    unhealthyAfter: 5\n')).runners[0];
  assert.equal(c?.idleGraceSeconds, 600);
  assert.equal(c?.unhealthyAfter, 5);
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    unhealthyAfter: 0\n')));
  assert.equal(p.path, 'runners[0].unhealthyAfter');
  assert.equal(p.line, 19);
  assert.match(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    idleGrace: soon\n'))).message, /not a duration/);
});

test('shutdownGrace defaults to 30 minutes, takes seconds or a duration, and refuses anything else with its line', () => {
  assert.equal(ok(BASE).shutdownGraceSeconds, 1800);
  assert.equal(ok(`shutdownGrace: 1h30m\n${BASE}`).shutdownGraceSeconds, 5400);
  assert.equal(ok(`shutdownGrace: 45\n${BASE}`).shutdownGraceSeconds, 45);
  const p = only(problems(`shutdownGrace: soon\n${BASE}`));
  assert.equal(p.path, 'shutdownGrace');
  assert.equal(p.line, 1);
  assert.match(p.message, /not a duration/);
  assert.match(only(problems(`shutdownGrace: 0\n${BASE}`)).message, /positive/);
});

test('smt needs 1 or an even number of vCPUs', () => {
  const p = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    smt: true\n    cpuCount: 3\n')));
  assert.equal(p.path, 'runners[0].cpuCount');
  ok(edit('    network: br-flint\n', '    network: br-flint\n    smt: true\n    cpuCount: 4\n'));
});

test('qemu runners need neither jailer nor firecracker; firecracker runners need both', () => {
  const c = ok(edit('    jailer: /usr/bin/jailer\n    firecracker: /usr/bin/firecracker\n', '    hypervisor: qemu\n    initrd: /srv/flint/initrd.img\n'));
  assert.equal(c.runners[0]?.hypervisor, 'qemu');
  assert.equal(c.runners[0]?.jailer, '');
  assert.equal(c.runners[0]?.initrd, '/srv/flint/initrd.img');
  const p = only(problems(edit('    jailer: /usr/bin/jailer\n', '')));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_MISSING_KEY');
  assert.match(p.message, /`jailer`/);
  assert.match(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    hypervisor: qmeu\n'))).hint, /did you mean "qemu"/);
});

test('kernelArgs may not set what Flint writes itself', () => {
  assert.match(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    kernelArgs: "console=ttyS0 ip=dhcp"\n'))).message, /ip=/);
  assert.match(only(problems(edit('    network: br-flint\n', '    network: br-flint\n    kernelArgs: "flint.dns=8.8.8.8"\n'))).message, /flint\.dns=/);
  assert.equal(ok(edit('    network: br-flint\n', '    network: br-flint\n    kernelArgs: "flint.init=/sbin/init"\n')).runners[0]?.kernelArgs, 'flint.init=/sbin/init');
  assert.equal(ok(edit('    network: br-flint\n', '    network: br-flint\n    kernelArgs: "console=ttyS0 quiet"\n')).runners[0]?.kernelArgs, 'console=ttyS0 quiet');
});

test('apiUrl points Flint at GitHub Enterprise Server or the simulator', () => {
  assert.equal(ok(edit('  organization: acme', '  organization: acme\n  apiUrl: https://ghes.example.com/api/v3/')).github.apiUrl, 'https://ghes.example.com/api/v3');
  assert.equal(ok(edit('  organization: acme', '  organization: acme\n  apiUrl: {env: SIM_URL}'), { SIM_URL: 'http://127.0.0.1:4000' }).github.apiUrl, 'http://127.0.0.1:4000');
  assert.match(only(problems(edit('  organization: acme', '  organization: acme\n  apiUrl: ftp://x'))).message, /http\(s\)/);
  assert.match(only(problems(edit('  organization: acme', '  organization: acme\n  apiUrl: "https://u:p@ghes"'))).message, /credentials/);
});

test('scanBudget: 1,000 requests an hour unless set; at least 10', () => {
  assert.equal(ok(BASE).github.scanBudget, 1000);
  assert.equal(ok(edit('  organization: acme', '  organization: acme\n  scanBudget: 2500')).github.scanBudget, 2500);
  assert.match(only(problems(edit('  organization: acme', '  organization: acme\n  scanBudget: 5'))).message, /10/);
});

test('instanceId defaults to a stable tag from the host name and state dir; an explicit one is checked', () => {
  const a = ok(BASE, {}, noFiles, { hostname: 'runner-host-1' }).instanceId;
  assert.equal(ok(BASE, {}, noFiles, { hostname: 'runner-host-1' }).instanceId, a);
  assert.notEqual(ok(BASE, {}, noFiles, { hostname: 'runner-host-2' }).instanceId, a);
  assert.notEqual(ok(`stateDir: /srv/flint-b\n${BASE}`, {}, noFiles, { hostname: 'runner-host-1' }).instanceId, a);
  assert.equal(ok(`instanceId: h7k2\n${BASE}`).instanceId, 'h7k2');
  assert.equal(only(problems(`instanceId: TooLong1\n${BASE}`)).path, 'instanceId');
});

test('optional keys left empty (YAML null) mean "not set"', () => {
  const c = ok(`email:\nstatic_runners:\n${BASE}`);
  assert.equal(c.email, undefined);
  assert.equal(c.runners.length, 1);
});

test('a file without runners is refused', () => {
  const p = only(problems(BASE.slice(0, BASE.indexOf('runners:'))));
  assert.equal(p.code, 'FLINT_ERR_CONFIG_MISSING_KEY');
  assert.match(p.message, /no runner/);
});

test('log levels of the reference system are understood', () => {
  assert.equal(ok(edit('logLevel: info', 'logLevel: WARNING')).logLevel, 'warn');
  assert.match(only(problems(edit('logLevel: info', 'logLevel: debg'))).hint, /did you mean "debug"/);
});

test('any text gives a result with positioned problems, never an exception', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
    const r = parse(text);
    if (!r.ok) for (const p of r.problems) assert.ok(p.line >= 1 && p.column >= 1 && p.message.length > 0);
  }), { numRuns: 300 });
});

test('any single-character slip in a runner key is caught with the right suggestion', () => {
  const keys = KNOWN_KEYS.runner.filter((k) => k.length >= 5);
  fc.assert(fc.property(fc.constantFrom(...keys), fc.nat(), fc.constantFrom('x', 'q', ''), (key, at, ch) => {
    const i = at % key.length;
    const typo = key.slice(0, i) + ch + key.slice(i + 1);
    if (KNOWN_KEYS.runner.includes(typo)) return;
    const list = problems(edit('    network: br-flint\n', `    network: br-flint\n    ${typo}: 1\n`));
    const p = list.find((x) => x.code === 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
    assert.ok(p, `no unknown-key problem for ${typo}`);
    assert.match(p.hint, new RegExp(`\`${key}\``), `${typo} → ${p.hint}`);
  }), { numRuns: 200 });
});

test('loadConfigFile reads the file, derives the instance id from this host, and throws every problem at once', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-load-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, BASE);
  const c = loadConfigFile(good, {});
  assert.equal(c.source, good);
  assert.equal(c.instanceId, deriveInstanceId(`${hostname()}:/var/lib/flint`));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, BASE.replace('logLevel: info', 'logLevel: loud').replace('  organization: acme\n', ''));
  assert.throws(() => loadConfigFile(bad, {}), (e) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_CONFIG_INVALID'));
    assert.match(e.message, /bad\.yaml:1:11: logLevel: /);
    assert.match(e.message, /github\.organization: required key/);
    // loadConfigFile documents details.problems as the problem list.
    assert.equal((e.details['problems'] as unknown[]).length, 2);
    return true;
  });
  assert.throws(() => loadConfigFile(join(dir, 'nope.yaml'), {}), (e) => isFlintError(e, 'FLINT_ERR_CONFIG_UNREADABLE'));
});

test('any file built from valid values loads with exactly those values, whatever the key order', async () => {
  const { stringify } = await import('yaml');
  const runner = fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
    labels: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { minLength: 1, maxLength: 4 }),
    cpuCount: fc.integer({ min: 1, max: 16 }).map((n) => (n === 1 ? 1 : n * 2 > 32 ? 32 : n * 2)),
    memorySize: fc.integer({ min: 128, max: 65536 }),
    smt: fc.boolean(),
    diskSize: fc.integer({ min: 64 * 2 ** 20, max: 2 ** 40 }),
    maxRunners: fc.integer({ min: 1, max: 50 }),
    jobTimeout: fc.integer({ min: 1, max: 5 * 86400 }),
    uid: fc.integer({ min: 0, max: 65535 }),
  }, { requiredKeys: ['name', 'labels'] });
  fc.assert(fc.property(fc.uniqueArray(runner, { minLength: 1, maxLength: 3, selector: (r) => r.name }), fc.integer({ min: 8, max: 30 }), fc.boolean(), (runners, prefix, reverse) => {
    const order = <T extends object>(o: T): T => (reverse ? Object.fromEntries(Object.entries(o).reverse()) as T : o); // same entries, other order
    const file = order({
      networks: [order({ name: 'br0', v4: `10.0.0.1/${prefix}` })],
      github: order({ appID: 7, organization: 'o', webhookSecret: 'whs-000000', privateKey: 'k' }),
      runners: runners.map((r) => order({ ...r, kernel: '/k', filesystem: '/f', hypervisor: 'qemu' })),
    });
    const c = ok(stringify(file));
    assert.deepEqual(c.networks[0]?.v4, { address: '10.0.0.1', prefixLength: prefix });
    assert.equal(c.runners.length, runners.length);
    runners.forEach((want, i) => {
      const got = c.runners[i];
      assert.ok(got);
      assert.equal(got.name, want.name);
      assert.deepEqual(got.labels, want.labels);
      assert.equal(got.cpuCount, want.cpuCount ?? 2);
      assert.equal(got.memorySize, want.memorySize ?? 4096);
      assert.equal(got.smt, want.smt ?? false);
      assert.equal(got.diskSize, want.diskSize ?? 10 * 2 ** 30);
      assert.equal(got.maxRunners, want.maxRunners ?? 1);
      assert.equal(got.jobTimeoutSeconds, want.jobTimeout ?? 21600);
      assert.equal(got.uid, want.uid ?? 123);
      assert.equal(got.network, 'br0');
    });
  }), { numRuns: 150 });
});

test('the seed fixture is the reference system\'s seed file, unchanged', (t) => {
  // The project's shared examples sit beside the checkout where it is developed; a clone elsewhere has only the copy.
  const shared = fileURLToPath(new URL('../../../shared/examples/seed-config.yaml', import.meta.url));
  if (!existsSync(shared)) {
    t.skip(`no ${shared} beside this checkout to compare with`);
    return;
  }
  assert.equal(readFileSync(SEED, 'utf8'), readFileSync(shared, 'utf8'));
});

test('admin takes a socket path and a group name or gid; unknown keys under it are refused with its known keys', () => {
  assert.equal(ok(BASE).admin, undefined);
  assert.deepEqual(ok(`admin:\n  group: flint-admin\n  socket: /run/flint-b/admin.sock\n${BASE}`).admin, { group: 'flint-admin', socket: '/run/flint-b/admin.sock' });
  assert.deepEqual(ok(`admin: {group: 990}\n${BASE}`).admin, { group: 990 });
  const p = only(problems(`admin: {groups: wheel}\n${BASE}`));
  assert.equal(p.path, 'admin.groups');
  assert.match(only(problems(`admin: {group: "no such:group"}\n${BASE}`)).message, /group name or a numeric gid/);
});

test('status: off unless set; its address defaults to loopback; beyond loopback it needs a token of at least 16 characters', () => {
  assert.equal(ok(BASE).status, undefined);
  assert.deepEqual(ok(`status: {}\n${BASE}`).status, { address: '127.0.0.1:9090' });
  assert.deepEqual(ok(`status: {address: "[::1]:9191"}\n${BASE}`).status, { address: '[::1]:9191' });
  const token = 'a'.repeat(32);
  assert.deepEqual(ok(`status: {address: ":9090", token: {env: TOK}}\n${BASE}`, { TOK: token }).status, { address: ':9090', token });
  const open = only(problems(`status:\n  address: 0.0.0.0:9090\n${BASE}`));
  assert.equal(open.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(open.path, 'status.address');
  assert.equal(open.line, 2);
  assert.match(open.message, /open to anyone/);
  assert.match(open.hint, /token/);
  assert.equal(only(problems(`status: {address: ":9090"}\n${BASE}`)).path, 'status.address');
  const short = only(problems(`status: {address: ":9090", token: short}\n${BASE}`));
  assert.equal(short.path, 'status.token');
  assert.equal(only(problems(`status: {adress: ":9090"}\n${BASE}`)).path, 'status.adress');
});

test('store: SQLite unless store.postgres is set; the PostgreSQL password comes apart from the URL, from a file or the environment', () => {
  assert.equal(ok(BASE).store, undefined);
  assert.equal(ok(`store: {}\n${BASE}`).store, undefined);
  const url = 'postgresql://flint@db.example:5432/flint';
  assert.deepEqual(ok(`store: {postgres: {url: "${url}"}}\n${BASE}`).store, { postgres: { url } });
  const files = (path: string): string => {
    if (path === '/etc/flint/pg-password') return 's3cret\n';
    if (path === '/etc/flint/empty') return '\n';
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  };
  assert.deepEqual(ok(`store: {postgres: {url: "${url}", passwordFile: pg-password}}\n${BASE}`, {}, files).store, { postgres: { url, password: 's3cret' } }, 'relative to the config file; the trailing newline dropped');
  assert.deepEqual(ok(`store: {postgres: {url: {env: PGURL}, passwordEnv: PGPW}}\n${BASE}`, { PGURL: url, PGPW: 'pw' }).store, { postgres: { url, password: 'pw' } });
  assert.equal(only(problems(`store: {postgres: {url: "${url}", passwordEnv: PGPW}}\n${BASE}`)).code, 'FLINT_ERR_CONFIG_ENV_MISSING');
  assert.equal(only(problems(`store: {postgres: {url: "${url}", passwordFile: /nope}}\n${BASE}`, {}, files)).code, 'FLINT_ERR_CONFIG_SECRET_FILE');
  assert.equal(only(problems(`store: {postgres: {url: "${url}", passwordFile: /etc/flint/empty}}\n${BASE}`, {}, files)).code, 'FLINT_ERR_CONFIG_SECRET_FILE');
  const both = only(problems(`store: {postgres: {url: "postgresql://flint:inline@db/flint", passwordEnv: PGPW}}\n${BASE}`, { PGPW: 'pw' }));
  assert.equal(both.path, 'store.postgres');
  assert.match(both.message, /carries a password/);
  assert.doesNotMatch(`${both.message} ${both.hint}`, /inline/, 'the password is not repeated');
  assert.match(only(problems(`store: {postgres: {url: "mysql://db/flint"}}\n${BASE}`)).message, /postgresql:\/\//);
  assert.match(only(problems(`store: {postgres: {url: "postgresql://db"}}\n${BASE}`)).message, /names no database/);
  assert.equal(only(problems(`store: {postgres: {url: "${url}", passwordEnv: A, passwordFile: pg-password}}\n${BASE}`, { A: 'x' }, files)).path, 'store.postgres');
  assert.equal(only(problems(`store: {postgress: {url: "${url}"}}\n${BASE}`)).path, 'store.postgress');
  const summary = summarizeConfig(ok(`store: {postgres: {url: "postgresql://flint:Zq9secret@db/flint"}}\n${BASE}`)).join('\n');
  assert.match(summary, /store: PostgreSQL at postgresql:\/\/flint:\*\*\*@db\/flint/);
  assert.doesNotMatch(summary, /Zq9secret/, 'the summary never shows the password');
  assert.equal(only(problems(`store: {postgres: {uri: "${url}"}}\n${BASE}`)).path.startsWith('store.postgres'), true);
});

test('fleet: the heartbeat, the lease ttl and the claim ttl of hosts on a PostgreSQL store, in seconds; refused without one, or with a ttl too short', () => {
  const pg = 'store: {postgres: {url: "postgresql://flint@db.example:5432/flint"}}\n';
  assert.equal(ok(`${pg}${BASE}`).fleet, undefined, 'absent: the defaults');
  assert.deepEqual(ok(`${pg}fleet: {heartbeat: 5s, leaseTtl: 1m, claimTtl: 20s, hostLost: 2m}\n${BASE}`).fleet,
    { heartbeatSeconds: 5, leaseTtlSeconds: 60, claimTtlSeconds: 20, hostLostSeconds: 120 });
  assert.match(only(problems(`${pg}fleet: {claimTtl: 5s}\n${BASE}`)).message, /at least 10 seconds/);
  assert.match(only(problems(`${pg}fleet: {hostLost: 20s}\n${BASE}`)).message, /at least 30 seconds/);
  assert.deepEqual(ok(`${pg}fleet: {leaseTtl: 3}\n${BASE}`).fleet, { leaseTtlSeconds: 3 });
  assert.match(summarizeConfig(ok(`${pg}fleet: {leaseTtl: 15s}\n${BASE}`)).join('\n'), /fleet: heartbeat every 10s, leader lease 15s, claims on queued jobs 30s/);
  const short = only(problems(`${pg}fleet: {leaseTtl: 2s}\n${BASE}`));
  assert.equal(short.path, 'fleet.leaseTtl');
  assert.match(short.message, /at least 3 seconds/);
  assert.equal(only(problems(`${pg}fleet: {heartbeat: soon}\n${BASE}`)).path, 'fleet.heartbeat');
  assert.equal(only(problems(`${pg}fleet: {ttl: 30s}\n${BASE}`)).path, 'fleet.ttl');
  const alone = only(problems(`fleet: {leaseTtl: 15s}\n${BASE}`));
  assert.equal(alone.code, 'FLINT_ERR_CONFIG_CONFLICT');
  assert.equal(alone.path, 'fleet');
  assert.match(alone.hint, /store: \{postgres/);
});

test('egress allow-lists: prefixes are made canonical, host names kept apart; hostDns defaults to off', () => {
  const c = ok(edit('    network: br-flint\n', '    network: br-flint\n    egress:\n      allow: [140.82.112.9/20, "2606:50c0::/32", API.GitHub.com, 192.0.2.7, api.github.com]\n'));
  assert.deepEqual(c.runners[0]?.egress, { cidrs: ['140.82.112.0/20', '2606:50c0::/32', '192.0.2.7/32'], hosts: ['api.github.com'] });
  assert.equal(c.networks[0]?.hostDns, undefined);
  assert.equal(ok(BASE).runners[0]?.egress, undefined, 'no egress key: guests may reach anything');
  assert.equal(ok(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    hostDns: true\n')).networks[0]?.hostDns, true);
  assert.deepEqual(ok(edit('    v4: 10.0.0.1/24\n', '    v4: 10.0.0.1/24\n    hostPorts: [5000, 3128, 5000]\n')).networks[0]?.hostPorts, [3128, 5000]);
});

test('an egress entry that is neither address, prefix nor host name, or an unknown egress key, is refused where it stands', () => {
  const bad = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    egress:\n      allow: [10.0.0.0/33]\n')));
  assert.equal(bad.path, 'runners[0].egress.allow[0]');
  assert.match(bad.message, /prefix length must be 0–32/);
  const word = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    egress:\n      allow: [localhost]\n')));
  assert.match(word.message, /neither an address/);
  const key = only(problems(edit('    network: br-flint\n', '    network: br-flint\n    egress:\n      allowed: []\n')));
  assert.equal(key.code, 'FLINT_ERR_CONFIG_UNKNOWN_KEY');
  assert.match(key.hint, /did you mean `allow`\?/);
});
