/**
 * A problem found in a configuration file: where (file:line:column and the
 * key path), what, and what to do about it. The loader collects every
 * problem it can find instead of stopping at the first, so an operator fixes
 * a file in one round.
 *
 * Invariant: no message or hint ever contains a secret's value (webhook
 * secrets, private keys, environment variable values); they name keys and
 * variables only.
 */
import type { ErrorCode } from '../core/errors/index.ts';

export type PathSegment = string | number;

export interface ConfigProblem {
  readonly code: ErrorCode;
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** Key path as written in messages, e.g. `runners[0].cpuCount`; `(file)` for the document itself. */
  readonly path: string;
  readonly message: string;
  readonly hint: string;
}

/** `runners[0].cpuCount` from ['runners', 0, 'cpuCount']. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(file)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** One line: `FILE:LINE:COL: key.path: message (hint)`. */
export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path}: ${p.message}${p.hint === '' ? '' : ` (${p.hint})`}`;
}

/** Problems in file order, so the output reads top to bottom. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
}
