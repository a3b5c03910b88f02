import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Flint package's root directory (where package.json and images/ are), from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'images'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Flint package root');
    dir = up;
  }
  return dir;
}

export const DEFAULT_CACHE_DIR = '/var/cache/flint';
