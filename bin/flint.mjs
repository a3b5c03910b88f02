#!/usr/bin/env node
// Launcher for the `flint` command. Runs the compiled CLI when the package
// has been built (`npm run build`, done by `npm install` through `prepare`),
// and otherwise the TypeScript sources through tsx, so a fresh checkout
// works either way.
import '../scripts/node-version.mjs'; // first: a node too old stops here, with the version it needs
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
// A reader that stops early (`flint status | head`) closes the pipe: the
// command ends quietly with 141, as a program killed by SIGPIPE does (never
// 0: a daemon whose log pipe broke is restarted by Restart=on-failure).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ? process.exitCode : 141);
    throw err;
  });
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
