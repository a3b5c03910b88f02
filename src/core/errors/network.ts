import type { CatalogueEntry } from './entry.ts';

/** Error codes of the network area. Keys are stable; never rename or reuse one. */
export const networkErrors = {
} as const satisfies Record<string, CatalogueEntry>;
