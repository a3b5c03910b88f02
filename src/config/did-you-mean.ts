/**
 * "Did you mean `memorySize`?" for misspelt keys and names.
 *
 * Candidates are compared after folding case and dropping `_`/`-`, so
 * `memory_size`, `MemorySize` and `memorysize` all find `memorySize`; then
 * by edit distance, allowing about one edit per three characters of the
 * longer word (so `memsize` still finds `memorySize`).
 */

/** Levenshtein distance (insertions, deletions, substitutions each cost 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      // Indices are within 0..b.length by construction of the loops.
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
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
