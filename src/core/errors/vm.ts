import type { CatalogueEntry } from './entry.ts';

/** Error codes of the vm area. Keys are stable; never rename or reuse one. */
export const vmErrors = {
} as const satisfies Record<string, CatalogueEntry>;
