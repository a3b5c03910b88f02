#!/usr/bin/env node
// Launcher for the `flint` command. Runs the compiled CLI when the package
// has been built (`npm run build`, done by `npm install` through `prepare`),
// and otherwise the TypeScript sources through tsx, so a fresh checkout
// works either way.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}dist/src/entrypoints/cli.js`;
let entry;
if (existsSync(built) && !process.env.FLINT_FROM_SOURCE) {
  entry = pathToFileURL(built).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = pathToFileURL(`${root}src/entrypoints/cli.ts`).href;
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
