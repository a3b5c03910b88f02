import type { CatalogueEntry } from './entry.ts';

/** Error codes of the store area. Keys are stable; never rename or reuse one. */
export const storeErrors = {
} as const satisfies Record<string, CatalogueEntry>;
