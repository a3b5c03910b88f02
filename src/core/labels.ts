/**
 * Label matching as GitHub does it: a runner can take a job when the job's
 * `runs-on` labels are a subset of the runner's labels, compared without
 * regard to case. (The reference system compared whole lists for equality,
 * which left jobs queued forever.)
 *
 * Which labels a Flint runner has: exactly the ones Flint passes to
 * GitHub's generate-jitconfig endpoint, i.e. the definition's configured
 * `labels`. The default labels (`self-hosted`, OS, architecture) are added
 * by the runner's `config.sh` on the client side, which a JIT runner never
 * runs; docs/config.md ("Which labels a runner has") gives the evidence.
 * Routing on the configured labels alone errs on the safe side: if GitHub
 * did add more, a runner would take more jobs than Flint counted for it,
 * never fewer, so no VM is started for a job its runner cannot take.
 */

const key = (l: string): string => l.toLowerCase();

/**
 * The labels a runner registered for a definition with these configured
 * labels carries on GitHub, case-insensitively de-duplicated (first
 * spelling kept).
 */
export function registeredLabels(configured: readonly string[]): readonly string[] {
  const seen = new Set<string>();
  return configured.filter((l) => {
    const k = key(l);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function canServe(runnerLabels: readonly string[], jobLabels: readonly string[]): boolean {
  const have = new Set(runnerLabels.map(key));
  return jobLabels.every((l) => have.has(key(l)));
}

/**
 * How many labels a runner with `runnerLabels` has beyond the job's, or
 * undefined when it cannot serve the job. A job without labels is served
 * by nothing: GitHub never queues one for a self-hosted runner, and the
 * empty set being a subset of everything must not route it somewhere.
 */
export function extraLabels(runnerLabels: readonly string[], jobLabels: readonly string[]): number | undefined {
  if (jobLabels.length === 0) return undefined;
  const have = new Set(runnerLabels.map(key));
  const want = new Set(jobLabels.map(key));
  for (const l of want) if (!have.has(l)) return undefined;
  return have.size - want.size;
}

/**
 * The definition that serves the job: among those whose runners' labels
 * (`registeredLabels`) cover the job's, the most specific one — fewest
 * labels beyond the job's — and on a tie the first in configuration order.
 * A job for `[self-hosted, gpu]` thus goes to the `gpu` definition rather
 * than to a catch-all listed before it, and a plain `[self-hosted]` job goes
 * to the smallest catch-all rather than to the `gpu` machines.
 */
export function mostSpecificServing<T extends { readonly labels: readonly string[] }>(definitions: readonly T[], jobLabels: readonly string[]): T | undefined {
  let best: T | undefined;
  let bestExtra = Number.POSITIVE_INFINITY;
  for (const d of definitions) {
    const extra = extraLabels(registeredLabels(d.labels), jobLabels);
    // Strictly fewer: an equal count keeps the earlier definition.
    if (extra !== undefined && extra < bestExtra) {
      best = d;
      bestExtra = extra;
    }
  }
  return best;
}
