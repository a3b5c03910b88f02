// The Linux network (real `ip` and `nft`) against the HostNetwork contract,
// only inside the private network namespace the test runner creates
// (FLINT_TEST_NETNS=1); never elsewhere.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../store/db.ts';
import { openLeaseStore } from '../store/leases.ts';
import { createLinuxNetwork } from './linux-network.ts';
import { guardTableName, nftTableName } from './nft-rules.ts';
import { hostNetworkContract } from '../../../test/contracts/host-network.contract.ts';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import type { Prerequisite } from '../../../test/helpers/prereq.ts';

const privateNetns: Prerequisite = {
  what: 'the private network namespace of scripts/test.mjs',
  ok: () => process.env.FLINT_TEST_NETNS === '1',
  install: 'run through `node scripts/test.mjs` as root (it runs the tests under `unshare -n`)',
};

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore', env: { ...process.env, PATH } });
    return true;
  } catch {
    return false;
  }
}
function trySh(cmd: string, args: string[]): void {
  try { execFileSync(cmd, args, { stdio: 'ignore', env: { ...process.env, PATH } }); } catch { /* already gone */ }
}
function tapsOf(instanceId: string): string[] {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8', env: { ...process.env, PATH } })) as Array<{ ifname: string }>;
  return links.map((l) => l.ifname).filter((n) => n.startsWith(`f${instanceId}-`));
}

hostNetworkContract('Linux network', async (t) => {
  if (!requirePrereqs(t, root, privateNetns, program('ip'), program('nft'))) return undefined;
  // A unique instance and bridge per test: other test files share the namespace.
  const r = randomBytes(2).toString('hex');
  const instanceId = `c${r}`;
  const bridge = `fbc${r}`;
  const dir = mkdtempSync(join(tmpdir(), 'flint-net-contract-'));
  const db = openDatabase(dir);
  return {
    network: createLinuxNetwork({ instanceId, leases: openLeaseStore(db) }),
    instanceId,
    config: { name: bridge, v4: { address: '10.214.0.1', prefixLength: 24 }, create: true, dns: ['10.214.0.1'] },
    hasTap: linkExists,
    close: async () => {
      for (const tap of tapsOf(instanceId)) trySh('ip', ['link', 'del', 'dev', tap]);
      trySh('ip', ['link', 'del', 'dev', bridge]);
      trySh('nft', ['delete', 'table', 'inet', nftTableName(instanceId, bridge)]);
      trySh('nft', ['delete', 'table', 'bridge', guardTableName(instanceId, bridge)]);
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
