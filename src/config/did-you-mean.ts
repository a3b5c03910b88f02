/**
 * "Did you mean `memorySize`?" for misspelt keys and names.
 *
 * Candidates are compared after folding case and dropping `_`/`-`, so
 * `memory_size`, `MemorySize` and `memorysize` all find `memorySize`; then
 * by edit distance, allowing about one edit per three characters of the
 * longer word (so `memsize` still finds `memorySize`).
 */

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions
 * and swaps of two neighbouring characters each cost 1 (so "qmeu" is one
 * slip from "qemu", as a typist would count it).
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      // Every index read below is inside the rows built so far (i-1, i-2 ≥ 0 where used).
      const up = rows[i - 1] ?? [];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((up[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (up[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? 0;
}

function fold(s: string): string {
  return s.toLowerCase().replace(/[_-]/g, '');
}

/** The closest candidate within the allowed distance, or undefined. Ties go to the earlier candidate. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const w = fold(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const f = fold(c);
    const limit = Math.max(1, Math.floor(Math.max(w.length, f.length) / 3));
    const d = editDistance(w, f);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
