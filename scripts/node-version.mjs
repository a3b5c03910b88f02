// Stops with a clear message when the node running Flint's commands is older
// than package.json's `engines.node` (">=20.11"). Imported first by
// scripts/ensure.mjs (so by `npm test`, `npm run demo`, `npm run bench` and
// `npm run check`) and by bin/flint.mjs: an older node would otherwise fail
// later with an error that does not say why.
//
// Plain JavaScript in old syntax (no `?.`, no `??`): it must parse on the
// old nodes it turns away.
import { readFileSync } from 'node:fs';

/** Why `version` (e.g. "18.19.0") does not satisfy `range` (">=MAJOR.MINOR"), or undefined when it does. */
export function nodeVersionProblem(version, range) {
  const want = /^>=\s*(\d+)(?:\.(\d+))?/.exec(range);
  if (want === null) return undefined; // a range this check does not understand: npm's own engine warning stays
  const have = /^v?(\d+)\.(\d+)/.exec(version);
  const needMajor = Number(want[1]);
  const needMinor = Number(want[2] || 0);
  if (have !== null) {
    const major = Number(have[1]);
    const minor = Number(have[2]);
    if (major > needMajor || (major === needMajor && minor >= needMinor)) return undefined;
  }
  return [
    `Flint needs Node.js ${needMajor}.${needMinor} or later (package.json: "engines": {"node": "${range}"}); this is Node.js ${version}.`,
    'Debian 13 packages Node.js 20: apt-get install nodejs npm. Debian 12 packages only Node.js 18: install Node.js 20, 22 or 24',
    "from NodeSource's packages or the Node.js project's Linux binaries, put that node (and its npm) first on PATH, and run the command again.",
  ].join('\n');
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const problem = nodeVersionProblem(process.versions.node, (pkg.engines && pkg.engines.node) || '');
if (problem !== undefined) {
  console.error(`${problem}\n(node: ${process.execPath})`);
  process.exit(1);
}
