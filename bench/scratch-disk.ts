// `npm run bench -- scratch-disk [--size BYTES] [--runs N] [--dir DIR]`
//
// Measures the two ways to make a VM's sparse ext4 scratch disk
// (src/adapters/disks/scratch.ts), alternating them run by run so that both
// see the same machine load:
//   mkfs   truncate + mkfs.ext4 per VM
//   clone  copy of a pre-formatted template (made once, not timed per VM)
// and the whole DiskProvisioner.prepare (scratch + config drive + chown) with
// the default strategy. Prints the figures and, last, one JSON line.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemCommandRunner } from '../src/adapters/network/command.ts';
import { cloneScratch, mkfsScratch, scratchTemplates } from '../src/adapters/disks/scratch.ts';
import { createDiskProvisioner } from '../src/adapters/disks/provisioner.ts';

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

function summary(samples: number[]): { p50: number; p90: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50: r(quantile(s, 0.5)), p90: r(quantile(s, 0.9)), p99: r(quantile(s, 0.99)), max: r(s.at(-1) ?? NaN) };
}

export default async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, '--size', String(40 * 1024 ** 3)));
  const runs = Number(arg(args, '--runs', '30'));
  const dir = mkdtempSync(join(arg(args, '--dir', tmpdir()), 'flint-bench-disk-'));
  const commands = systemCommandRunner();
  try {
    const t0 = performance.now();
    const template = await scratchTemplates(commands, join(dir, 'templates'), () => 'bench').get(size);
    const templateMs = performance.now() - t0;
    const times = { mkfs: [] as number[], clone: [] as number[], prepare: [] as number[] };
    const allocated = { mkfs: 0, clone: 0 };
    const disks = createDiskProvisioner({ stateDir: dir, templatesDir: join(dir, 'templates') });
    const env = { FLINT_RUNNER_NAME: 'flint-bench-00001', FLINT_JITCONFIG: 'x'.repeat(4096) };
    for (let i = 0; i < runs; i++) {
      for (const method of i % 2 === 0 ? (['mkfs', 'clone'] as const) : (['clone', 'mkfs'] as const)) {
        const path = join(dir, `${method}-${i}.ext4`);
        const s = performance.now();
        if (method === 'mkfs') await mkfsScratch(commands, path, size);
        else await cloneScratch(commands, template, path);
        times[method].push(performance.now() - s);
        allocated[method] = statSync(path).blocks * 512;
        rmSync(path);
      }
      const work = join(dir, `vm-${i}`);
      const s = performance.now();
      await disks.prepare(`bench-${i}`, work, size, env, { uid: 123, gid: 100 });
      times.prepare.push(performance.now() - s);
      await disks.remove(`bench-${i}`, work);
    }
    const mkfs = summary(times.mkfs);
    const clone = summary(times.clone);
    const prepare = summary(times.prepare);
    console.log(`scratch disk of ${size} bytes, ${runs} runs each, in ${dir}`);
    console.log(`  template (once per size): ${templateMs.toFixed(1)} ms`);
    console.log(`  mkfs   p50 ${mkfs.p50} ms  p90 ${mkfs.p90}  p99 ${mkfs.p99}  max ${mkfs.max}  allocated ${(allocated.mkfs / 1024 ** 2).toFixed(1)} MiB`);
    console.log(`  clone  p50 ${clone.p50} ms  p90 ${clone.p90}  p99 ${clone.p99}  max ${clone.max}  allocated ${(allocated.clone / 1024 ** 2).toFixed(1)} MiB`);
    console.log(`  prepare (clone + config drive + chown) p50 ${prepare.p50} ms  p99 ${prepare.p99}`);
    console.log(JSON.stringify({
      bench: 'scratch-disk', size_bytes: size, runs, template_ms: Math.round(templateMs * 10) / 10,
      mkfs_ms_p50: mkfs.p50, mkfs_ms_p99: mkfs.p99, clone_ms_p50: clone.p50, clone_ms_p99: clone.p99,
      prepare_ms_p50: prepare.p50, prepare_ms_p99: prepare.p99,
      mkfs_allocated_bytes: allocated.mkfs, clone_allocated_bytes: allocated.clone,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
