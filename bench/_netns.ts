// Benchmarks that make bridges, taps or namespaces run in a private network
// namespace of their own: the first call re-executes the benchmark under
// `unshare -n` (loopback up) and exits with its status; inside, it returns
// and the benchmark goes on. Whatever it makes vanishes with the namespace.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function inOwnNetns(name: string, args: readonly string[], why: string): void {
  if (process.env.FLINT_BENCH_NETNS === '1') return;
  if (process.getuid?.() !== 0) {
    console.error(`${name}: needs root (${why}); run it as root`);
    process.exit(1);
  }
  const runTs = fileURLToPath(new URL('./run.ts', import.meta.url));
  const r = spawnSync('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, '--import', 'tsx', runTs, name, ...args], {
    stdio: 'inherit', env: { ...process.env, FLINT_BENCH_NETNS: '1', FLINT_TEST_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}
