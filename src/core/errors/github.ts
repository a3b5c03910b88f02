import type { CatalogueEntry } from './entry.ts';

/** Error codes of the github area. Keys are stable; never rename or reuse one. */
export const githubErrors = {
} as const satisfies Record<string, CatalogueEntry>;
