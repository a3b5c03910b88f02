// Lint rules, including the dependency direction of the code:
//   core  <-  config, daemon (the application layer)  <-  adapters, entrypoints
// Test infrastructure (tools/, test/) may use anything; production code may
// never import test infrastructure. No import cycles in src/ (static or
// dynamic imports alike): one composition root (src/entrypoints/flint.ts)
// is imported by the commands, never the other way round.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';

const nodeIo = ['fs', 'fs/promises', 'child_process', 'net', 'http', 'https', 'http2', 'dgram', 'dns', 'os', 'cluster', 'worker_threads', 'process']
  .flatMap((m) => [`node:${m}`, m]);

const erasableOnly = [
  { selector: 'TSEnumDeclaration', message: 'No enums: use a union of string literals (erasable syntax only).' },
  { selector: 'TSModuleDeclaration[kind!="global"]', message: 'No namespaces (erasable syntax only).' },
];

const appLayerForbidden = ['**/adapters/**', '**/images/**', '**/entrypoints/**', '**/tools/**', '**/test/**'];
const appLayerMessage = 'the application layer depends on core and ports, never on adapters, entrypoints or test infrastructure.';
const fsModules = ['fs', 'fs/promises'].flatMap((m) => [`node:${m}`, m]);

// The daemon's own hidden inputs and side effects: files, signals, the wall
// clock and timers come through ports (daemon/ports, daemon/vm/ports.ts,
// the clock in each Deps, LoopTimers of daemon/loop.ts), so that tests
// drive them and every adapter can be swapped.
const daemonRules = {
  'no-restricted-imports': ['error', {
    paths: fsModules.map((name) => ({ name, message: 'the daemon reads and writes files through a port (an adapter implements it).' })),
    patterns: appLayerForbidden.map((group) => ({ group: [group], message: appLayerMessage })),
  }],
  'no-restricted-properties': ['error',
    { object: 'process', property: 'kill', message: 'the daemon signals processes through a port (HostProcesses, a driver).' },
    { object: 'Date', property: 'now', message: 'the daemon takes a clock ({ now(): number }) from its deps.' }],
  'no-restricted-syntax': ['error', ...erasableOnly,
    { selector: 'NewExpression[callee.name="Date"][arguments.length=0]', message: 'the daemon takes a clock from its deps: new Date(clock.now()).' }],
  'no-restricted-globals': ['error',
    ...['setTimeout', 'setInterval'].map((name) => ({ name, message: 'the daemon takes its timers from its deps (LoopTimers, daemon/loop.ts) and its periodic work is a startLoop loop.' }))],
};

const layer = (files, forbidden, message) => ({
  files,
  ignores: ['**/*.test.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: forbidden.map((group) => ({ group: [group], message })) }],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.state/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', ...erasableOnly],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodeIo.map((name) => ({ name, message: 'core is pure: no I/O. Take what you need as a parameter.' })),
        patterns: [{ group: ['**/config/**', '**/daemon/**', '**/adapters/**', '**/images/**', '**/entrypoints/**', '**/tools/**', '**/test/**'], message: 'core imports only core.' }],
      }],
      'no-restricted-globals': ['error',
        { name: 'Date', message: 'core takes a clock as a parameter.' },
        { name: 'process', message: 'core takes its inputs as parameters.' }],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'core takes an id/random source as a parameter.' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    // Import paths name the .ts file itself (verbatimModuleSyntax,
    // allowImportingTsExtensions), so the plain node resolver finds them.
    settings: {
      'import-x/resolver-next': [createNodeResolver()],
      // Dependencies are read (for their own imports) as TypeScript.
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  layer(['src/config/**/*.ts', 'src/daemon/**/*.ts'], appLayerForbidden, appLayerMessage),
  { files: ['src/daemon/**/*.ts'], ignores: ['**/*.test.ts'], rules: daemonRules },
  layer(['src/adapters/**/*.ts', 'src/images/**/*.ts'], ['**/entrypoints/**', '**/tools/**', '**/test/**'],
    'adapters never import entrypoints or test infrastructure.'),
  layer(['src/entrypoints/**/*.ts'], ['**/tools/**', '**/test/**'],
    'production code never imports test infrastructure (start it as a separate program instead).'),
);
