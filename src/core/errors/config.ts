import type { CatalogueEntry } from './entry.ts';

/** Error codes of the config area. Keys are stable; never rename or reuse one. */
export const configErrors = {
} as const satisfies Record<string, CatalogueEntry>;
