// Writes docs/errors.md from the error catalogue (src/core/errors).
// With --check, exits 1 when the page on disk differs from the catalogue.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { catalogue } from '../src/core/errors/index.ts';

export function renderErrorDocs(): string {
  const lines = [
    '# Error catalogue',
    '',
    'Every error Flint reports carries a stable code. Scripts and alerts should',
    'match on the code, never on the message. This page is generated from',
    '`src/core/errors/` by `npm run docs:errors`; a check fails when it is stale.',
    '',
  ];
  const codes = Object.keys(catalogue).sort();
  for (const code of codes) {
    const entry = catalogue[code as keyof typeof catalogue];
    lines.push(`## ${code}`, '', `**${entry.title}.**`, '', `What to do: ${entry.hint}`, '');
  }
  return lines.join('\n');
}

const path = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const want = renderErrorDocs();
  if (process.argv.includes('--check')) {
    let have = '';
    try { have = readFileSync(path, 'utf8'); } catch { /* missing counts as stale */ }
    if (have !== want) {
      console.error('docs/errors.md is stale: run `npm run docs:errors`');
      process.exit(1);
    }
  } else {
    writeFileSync(path, want);
  }
}
