/**
 * The one declaration of Flint's system prerequisites (src/prerequisites.json)
 * is complete: every program a test asks for, and every program the test
 * image's build script needs, is declared for what installs it — so a test
 * cannot require a program that `npm test` and `.ci/run` do not install.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { packageRoot } from './images/paths.ts';
import declared from './prerequisites.json' with { type: 'json' };

const root = packageRoot();

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

const declaredFor = (purpose: string): Set<string> =>
  new Set(declared.prerequisites.filter((e) => e.for.includes(purpose)).map((e) => e.program).filter((p) => p !== undefined));

test('every entry names a program or a file, a package, and only known purposes', () => {
  const purposes = Object.keys(declared.purposes);
  for (const e of declared.prerequisites) {
    const what = e.program ?? e.file;
    assert.ok((e.program === undefined) !== (e.file === undefined), `${JSON.stringify(e)}: a program or a file, not both`);
    assert.match(e.package, /^[a-z0-9][a-z0-9+.-]+$/, `${what}: a Debian package name`);
    assert.ok(e.for.length > 0, `${what}: needed for something`);
    for (const p of e.for) assert.ok(purposes.includes(p), `${what}: unknown purpose ${p}`);
  }
  const programs = declared.prerequisites.map((e) => e.program).filter((p) => p !== undefined);
  assert.equal(new Set(programs).size, programs.length, 'each program is declared once');
});

test('every program(…) a test asks for is declared for "tests"', () => {
  const forTests = declaredFor('tests');
  const used = new Map<string, string>();
  for (const file of ['src', 'tools', 'test', 'bench', 'guest', 'images'].flatMap((d) => sources(join(root, d)))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bprogram\(\s*'([^']+)'/g)) used.set(m[1] ?? '', relative(root, file));
    // A program chosen at run time must come from a literal list nearby; these are checked by their own tests.
  }
  assert.ok(used.size >= 10, `found the tests' program(…) calls (${used.size})`);
  const missing = [...used].filter(([name]) => !forTests.has(name)).map(([name, file]) => `${name} (${file})`);
  assert.deepEqual(missing, [], 'programs the tests need but src/prerequisites.json does not declare for "tests"');
});

test('every program the test image build script needs is declared for the tests and the demo', () => {
  const script = readFileSync(join(root, 'images', 'test', 'build.sh'), 'utf8');
  const needs = [...script.matchAll(/^need (\S+) (\S+)$/gm)].map((m) => ({ program: m[1] ?? '', pkg: m[2] ?? '' }));
  assert.ok(needs.length >= 5, 'found the script\'s need lines');
  for (const purpose of ['tests', 'demo']) {
    const have = declaredFor(purpose);
    assert.deepEqual(needs.filter((n) => !have.has(n.program)).map((n) => n.program), [], `declared for ${purpose}`);
  }
  for (const n of needs) {
    assert.equal(declared.prerequisites.find((e) => e.program === n.program)?.package, n.pkg, `${n.program}: the script names the declared package`);
  }
});

test('.ci/run and the development commands install from the declaration, not from a list of their own', () => {
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
  assert.match(ci, /apt-get update/, '.ci/run refreshes the package lists first');
  assert.match(ci, /node scripts\/ensure\.mjs\b[^\n]*\btests\b/, '.ci/run installs the tests\' prerequisites through scripts/ensure.mjs');
  assert.doesNotMatch(ci, /apt-get install/, '.ci/run keeps no package list of its own');
  for (const script of ['test.mjs', 'demo.mjs', 'bench.mjs']) {
    assert.match(readFileSync(join(root, 'scripts', script), 'utf8'), /ensureSystemPackages\(/, `scripts/${script} installs what it needs`);
  }
});

test('npm ci compiles better-sqlite3 against the running node\'s own headers, never downloading them', async (t) => {
  const { localNodeHeaders } = await import('../scripts/ensure.mjs');
  const prefix = mkdtempSync(join(tmpdir(), 'flint-node-headers-'));
  t.after(() => rmSync(prefix, { recursive: true, force: true }));
  const node = join(prefix, 'bin', 'node');
  assert.equal(localNodeHeaders(node, '20.20.2'), undefined, 'a node without headers beside it: node-gyp fetches them as usual');
  mkdirSync(join(prefix, 'include', 'node'), { recursive: true });
  writeFileSync(join(prefix, 'include', 'node', 'node_version.h'),
    '#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 20\n#define NODE_PATCH_VERSION 2\n');
  assert.equal(localNodeHeaders(node, '20.20.2'), undefined, 'headers without common.gypi cannot build an addon');
  writeFileSync(join(prefix, 'include', 'node', 'common.gypi'), '{}\n');
  assert.equal(localNodeHeaders(node, '20.20.2'), prefix);
  assert.equal(localNodeHeaders(node, '20.20.1'), undefined, 'headers of another node version are not used');
  assert.equal(localNodeHeaders(node, '22.20.2'), undefined);
});

test('a node older than package.json\'s engines.node is turned away first, naming the version it needs', async () => {
  const { nodeVersionProblem } = await import('../scripts/node-version.mjs');
  const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  assert.equal(engines, '>=20.11');
  for (const ok of ['20.11.0', '20.20.2', '22.0.0', '24.1.0']) assert.equal(nodeVersionProblem(ok, engines), undefined, ok);
  for (const old of ['18.19.0', '20.10.9', '12.22.12']) assert.match(nodeVersionProblem(old, engines) ?? '', /^Flint needs Node\.js 20\.11 or later .*; this is Node\.js \d/, old);
  assert.match(nodeVersionProblem('18.19.0', engines) ?? '', /Debian 13 packages Node\.js 20: apt-get install nodejs npm/);
  // The commands themselves: a node that says it is 18 stops at once, before installing anything.
  const pretend = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"18.19.0"})';
  for (const script of [['scripts/test.mjs', '--no-install', '--no-prepare', 'no-such.test.ts'], ['scripts/ensure.mjs', '--help'], ['bin/flint.mjs', '--help']]) {
    const r = spawnSync(process.execPath, ['--import', pretend, ...script], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 1, script.join(' '));
    assert.match(r.stderr, /^Flint needs Node\.js 20\.11 or later/, script.join(' '));
    assert.equal(r.stdout, '', `${script.join(' ')} printed nothing else`);
  }
  for (const script of ['test.mjs', 'demo.mjs', 'bench.mjs']) {
    assert.match(readFileSync(join(root, 'scripts', script), 'utf8'), /^import \{[^}]*\} from '\.\/ensure\.mjs';$/m, `scripts/${script} starts through ensure.mjs`);
  }
});
