import type { CatalogueEntry } from './entry.ts';

/** Error codes of the image area. Keys are stable; never rename or reuse one. */
export const imageErrors = {
} as const satisfies Record<string, CatalogueEntry>;
