// `npm run bench -- net-attach [--runs N]` (root)
//
// Measures HostNetwork.attach (lease in SQLite + tap on the bridge) and
// detach, in a private network namespace this benchmark makes for itself
// (it re-executes itself under `unshare -n`; the host's network is never
// touched). Prints the figures and, last, one JSON line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../src/adapters/store/db.ts';
import { openLeaseStore } from '../src/adapters/store/leases.ts';
import { createLinuxNetwork } from '../src/adapters/network/linux-network.ts';
import { vmId } from '../src/core/ids.ts';

function p(sorted: number[], q: number): number {
  return Math.round((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN) * 10) / 10;
}

export default async function main(args: string[]): Promise<void> {
  if (process.env.FLINT_BENCH_NETNS !== '1') {
    if (process.getuid?.() !== 0) throw new Error('net-attach needs root (it creates a bridge and taps in a private network namespace)');
    const runner = fileURLToPath(new URL('./run.ts', import.meta.url));
    const r = spawnSync('unshare', ['-n', '--', process.execPath, '--import', 'tsx', runner, 'net-attach', ...args], {
      stdio: 'inherit', env: { ...process.env, FLINT_BENCH_NETNS: '1' },
    });
    if (r.status !== 0) throw new Error(`net-attach in its namespace failed (${r.status ?? r.signal ?? r.error?.message})`);
    return;
  }
  const i = args.indexOf('--runs');
  const runs = i === -1 ? 50 : Number(args[i + 1]);
  const dir = mkdtempSync(join(tmpdir(), 'flint-bench-net-'));
  const db = openDatabase(dir);
  try {
    const net = createLinuxNetwork({ instanceId: 'bench', leases: openLeaseStore(db) });
    const cfg = { name: 'flintbench0', v4: { address: '10.77.0.1', prefixLength: 16 }, v6: { address: 'fd00:77::1', prefixLength: 64 }, create: true, dns: ['10.77.0.1'] };
    const e0 = performance.now();
    await net.ensureNetwork(cfg);
    const ensureMs = performance.now() - e0;
    const attach: number[] = [];
    const detach: number[] = [];
    for (let n = 0; n < runs; n++) {
      const id = vmId('bench', n);
      let s = performance.now();
      await net.attach(id, 'flint-bench', cfg, { uid: 123, gid: 100 });
      attach.push(performance.now() - s);
      s = performance.now();
      await net.detach(id);
      detach.push(performance.now() - s);
    }
    attach.sort((a, b) => a - b);
    detach.sort((a, b) => a - b);
    console.log(`network: ensureNetwork (create) ${ensureMs.toFixed(1)} ms; ${runs} runs`);
    console.log(`  attach (v4+v6 lease, tap, bridge, up) p50 ${p(attach, 0.5)} ms  p99 ${p(attach, 0.99)}`);
    console.log(`  detach (tap, leases)                  p50 ${p(detach, 0.5)} ms  p99 ${p(detach, 0.99)}`);
    console.log(JSON.stringify({ bench: 'net-attach', runs, ensure_ms: Math.round(ensureMs * 10) / 10, attach_ms_p50: p(attach, 0.5), attach_ms_p99: p(attach, 0.99), detach_ms_p50: p(detach, 0.5), detach_ms_p99: p(detach, 0.99) }));
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
