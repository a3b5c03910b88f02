/**
 * The one catalogue of Flint's error codes.
 *
 * Every error Flint reports to an operator carries a stable `FLINT_ERR_…`
 * code. Code branches on `err.code`, never on the message. Each area keeps
 * its entries in its own file beside this one (so areas can grow without
 * touching each other); this module merges them and `docs/errors.md` is
 * generated from the merged catalogue (`npm run docs:errors`), with a test
 * that fails when the page is stale.
 */
import { configErrors } from './config.ts';
import { githubErrors } from './github.ts';
import { webhookErrors } from './webhook.ts';
import { storeErrors } from './store.ts';
import { vmErrors } from './vm.ts';
import { networkErrors } from './network.ts';
import { imageErrors } from './image.ts';
import { generalErrors } from './general.ts';
import { adminErrors } from './admin.ts';
import { scaleSetErrors } from './scaleset.ts';
import type { CatalogueEntry } from './entry.ts';

export type { CatalogueEntry } from './entry.ts';

export const catalogue = {
  ...generalErrors,
  ...configErrors,
  ...githubErrors,
  ...webhookErrors,
  ...storeErrors,
  ...vmErrors,
  ...networkErrors,
  ...imageErrors,
  ...adminErrors,
  ...scaleSetErrors,
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

/**
 * An error with a catalogue code. `message` is for humans and may carry
 * details; `hint` (from the catalogue unless overridden) says what to do
 * next. `details` are structured fields safe to log (never secrets).
 */
export class FlintError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    const entry: CatalogueEntry = catalogue[code];
    super(message ?? entry.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FlintError';
    this.code = code;
    this.hint = options.hint ?? entry.hint;
    this.details = options.details ?? {};
  }
}

export function isFlintError(err: unknown, code?: ErrorCode): err is FlintError {
  return err instanceof FlintError && (code === undefined || err.code === code);
}
