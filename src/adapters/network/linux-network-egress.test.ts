// The host names of egress allow-lists, through the adapter's own code with
// a recording command runner (no nft, no root): what the resolver answers is
// what the allow sets get, and a lookup that fails keeps the last answer.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../store/db.ts';
import { openLeaseStore } from '../store/leases.ts';
import { createLinuxNetwork } from './linux-network.ts';
import type { LinuxHostNetwork } from './linux-network.ts';
import { CommandError } from './command.ts';
import type { CommandRunner } from './command.ts';
import { systemHostResolver } from './host-resolver.ts';
import type { HostResolver } from './host-resolver.ts';
import { nftTableName } from './nft-rules.ts';
import type { NetworkConfig } from '../../config/types.ts';

const BRIDGE = 'flintbr0';
const CFG: NetworkConfig = { name: BRIDGE, v4: { address: '10.100.0.1', prefixLength: 24 }, create: true, dns: [] };
const SET4 = `allow_0_4`;
const SET6 = `allow_0_6`;

interface Host {
  readonly net: LinuxHostNetwork;
  /** Every `nft -f` script, in order. */
  readonly scripts: string[];
  readonly warnings: Array<{ obj: Record<string, unknown>; msg: string }>;
}

/**
 * A host as the commands see it: the bridge exists with its address, no
 * table exists yet (so every pass writes one), and `nft -f` is recorded.
 */
function host(t: TestContext, resolver: HostResolver, hosts: readonly string[]): Host {
  const dir = mkdtempSync(join(tmpdir(), 'flint-egress-'));
  mkdirSync(join(dir, 'sys', 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(dir, 'sys', 'net', 'ipv4', 'ip_forward'), '1\n');
  const db = openDatabase(dir);
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const scripts: string[] = [];
  const warnings: Host['warnings'] = [];
  const bridge = [{ ifname: BRIDGE, flags: ['UP'], linkinfo: { info_kind: 'bridge' }, addr_info: [{ family: 'inet', local: '10.100.0.1', prefixlen: 24 }] }];
  const commands: CommandRunner = {
    run(program, args, opts = {}) {
      if (program === 'ip') return Promise.resolve({ stdout: JSON.stringify(args.includes('show') && args.includes(BRIDGE) ? bridge : []), stderr: '' });
      if (args[0] === '-f') {
        scripts.push(opts.input ?? '');
        return Promise.resolve({ stdout: '', stderr: '' });
      }
      if (args[0] === 'list' && args[1] === 'tables') return Promise.resolve({ stdout: '', stderr: '' });
      return Promise.reject(new CommandError(program, args, 1, 'Error: No such file or directory', undefined));
    },
  };
  const net = createLinuxNetwork({
    instanceId: 'eg1', leases: openLeaseStore(db), commands, procSys: join(dir, 'sys'), resolver,
    definitions: [{ name: 'small', network: BRIDGE, egress: { cidrs: [], hosts } }],
    log: { info: () => undefined, warn: (obj, msg) => { warnings.push({ obj, msg }); } },
  });
  return { net, scripts, warnings };
}

/** The elements the last script put into an allow set (empty: flushed and left empty). */
function allowed(h: Host, set: string): string[] {
  const script = h.scripts.at(-1) ?? '';
  const table = nftTableName('eg1', BRIDGE);
  assert.ok(script.includes(`flush set inet ${table} ${set}`), `the pass rewrote ${set}:\n${script}`);
  const m = new RegExp(`add element inet ${table} ${set} \\{ ([^}]*) \\}`).exec(script);
  return m?.[1]?.split(', ') ?? [];
}

test('a host name the host\'s own resolver knows (localhost, from /etc/hosts) is allowed by its addresses', async (t) => {
  const resolver = systemHostResolver();
  const expected = (await resolver.lookup('localhost')).sort();
  assert.ok(expected.includes('127.0.0.1'), `localhost resolves on this host (${expected.join(', ')})`);
  const h = host(t, resolver, ['localhost']);
  await h.net.reassert([CFG]);
  assert.deepEqual(allowed(h, SET4), ['127.0.0.1']);
  assert.deepEqual(allowed(h, SET6), expected.includes('::1') ? ['::1'] : []);
  assert.deepEqual(h.warnings, []);
});

test('a lookup that fails keeps the addresses of the last answer, and says so; the next answer replaces them', async (t) => {
  const answers: Array<string[] | Error> = [['203.0.113.7', '2001:db8::7'], new Error('getaddrinfo EAI_AGAIN registry.example'), ['203.0.113.8']];
  const resolver: HostResolver = {
    lookup() {
      const next = answers.shift();
      if (next === undefined) throw new Error('more lookups than the test expected');
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  };
  const h = host(t, resolver, ['registry.example']);
  await h.net.reassert([CFG]);
  assert.deepEqual([allowed(h, SET4), allowed(h, SET6)], [['203.0.113.7'], ['2001:db8::7']]);

  await h.net.reassert([CFG]);
  assert.deepEqual([allowed(h, SET4), allowed(h, SET6)], [['203.0.113.7'], ['2001:db8::7']], 'the failed lookup changed nothing');
  assert.equal(h.warnings.length, 1);
  assert.match(h.warnings[0]?.msg ?? '', /previous addresses stay allowed/);
  assert.deepEqual(h.warnings[0]?.obj, { host: 'registry.example', err: 'getaddrinfo EAI_AGAIN registry.example', kept: ['2001:db8::7', '203.0.113.7'] });

  await h.net.reassert([CFG]);
  assert.deepEqual([allowed(h, SET4), allowed(h, SET6)], [['203.0.113.8'], []], 'the address it moved to, and no longer the old ones');
});

test('a name that never resolved allows nothing (the set stays empty) and is asked again on the next pass', async (t) => {
  let asked = 0;
  const resolver: HostResolver = {
    lookup(name) {
      asked++;
      return asked === 1 ? Promise.reject(new Error(`getaddrinfo ENOTFOUND ${name}`)) : Promise.resolve(['198.51.100.9']);
    },
  };
  const h = host(t, resolver, ['late.example']);
  await h.net.reassert([CFG]);
  assert.deepEqual(allowed(h, SET4), []);
  assert.equal(asked, 1, 'asked once in the pass, not again by each step of it');
  assert.deepEqual(h.warnings.map((w) => w.obj.kept), [[]]);
  await h.net.reassert([CFG]);
  assert.equal(asked, 2);
  assert.deepEqual(allowed(h, SET4), ['198.51.100.9']);
});
