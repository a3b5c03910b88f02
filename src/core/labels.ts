/**
 * Label matching as GitHub does it: a runner can take a job when the job's
 * `runs-on` labels are a subset of the runner's labels, compared without
 * regard to case. (The reference system compared whole lists for equality,
 * which left jobs queued forever.)
 */
export function canServe(runnerLabels: readonly string[], jobLabels: readonly string[]): boolean {
  const have = new Set(runnerLabels.map((l) => l.toLowerCase()));
  return jobLabels.every((l) => have.has(l.toLowerCase()));
}

/** The first definition (in configuration order) that can serve the job, or undefined. */
export function firstServing<T extends { readonly labels: readonly string[] }>(definitions: readonly T[], jobLabels: readonly string[]): T | undefined {
  return definitions.find((d) => canServe(d.labels, jobLabels));
}
