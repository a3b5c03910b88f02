import type { CatalogueEntry } from './entry.ts';

/** Error codes of the webhook area. Keys are stable; never rename or reuse one. */
export const webhookErrors = {
} as const satisfies Record<string, CatalogueEntry>;
