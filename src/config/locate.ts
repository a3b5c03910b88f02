/**
 * From a key path (['runners', 0, 'cpuCount']) to the position in the YAML
 * file, and to the raw value the YAML held there.
 */
import { isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import type { PathSegment } from './problems.ts';

/** Finds file positions of keys and values by their path in the document. */
export interface ConfigLocator {
  /** Position of the key at `path` (for "unknown key"), else of the nearest enclosing value that exists. */
  key(path: readonly PathSegment[]): { line: number; column: number };
  /** Position of the value at `path`, else of the nearest enclosing value that exists. */
  value(path: readonly PathSegment[]): { line: number; column: number };
}

export function makeLocator(doc: Document, lines: LineCounter): ConfigLocator {
  const pos = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const nodeAt = (path: readonly PathSegment[]): YamlNode | undefined => {
    if (path.length === 0) return doc.contents ?? undefined;
    const n: unknown = doc.getIn(path, true);
    return isMap(n) || isSeq(n) || isScalar(n) ? n : undefined;
  };
  const value = (path: readonly PathSegment[]): { line: number; column: number } => {
    for (let n = path.length; n >= 0; n--) {
      const node = nodeAt(path.slice(0, n));
      if (node?.range) return pos(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
  const key = (path: readonly PathSegment[]): { line: number; column: number } => {
    const parent = nodeAt(path.slice(0, -1));
    const last = path[path.length - 1];
    if (isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === String(last) && item.key.range) return pos(item.key.range[0]);
      }
    }
    return value(path);
  };
  return { key, value };
}

export function getRaw(raw: unknown, path: readonly PathSegment[]): unknown {
  let cur = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PathSegment, unknown>)[seg]; // indexing a parsed YAML object or array by its own path segment
  }
  return cur;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
