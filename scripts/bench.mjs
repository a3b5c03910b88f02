#!/usr/bin/env node
// `npm run bench -- <name> [args]`: installs what the benchmarks need (the
// system packages of the tests, the npm dependencies) and, as root, the test
// guest image — before a benchmark enters its private network namespace,
// which has no way out — then runs bench/run.ts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNodeModules, ensureSystemPackages, ensureTestImage } from './ensure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
// Usage errors answer at once, before anything is installed.
if (args.length > 0 && !args[0].startsWith('-')) {
  ensureSystemPackages(['tests']);
  ensureNodeModules(root);
  if (process.getuid?.() === 0) ensureTestImage(root);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'run.ts'), ...args], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`npm run bench: could not start: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
