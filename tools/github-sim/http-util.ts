/** HTTP plumbing shared by the REST and control APIs: replies, bodies, pagination. */
import type { IncomingMessage } from 'node:http';

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export const DOCS = 'https://docs.github.com/rest';

/**
 * GitHub's error body: `{message, documentation_url, status}` (`basic-error`).
 * 422s use `validation-error-simple`, which the description gives no
 * `status` field, so they go without one.
 */
export function error(status: number, message: string, documentationUrl = DOCS, headers?: Record<string, string>): Reply {
  const body = status === 422 ? { message, documentation_url: documentationUrl } : { message, documentation_url: documentationUrl, status: String(status) };
  return { status, body, ...(headers === undefined ? {} : { headers }) };
}

export const notFound = (): Reply => error(404, 'Not Found');

export class BadBody extends Error {}

export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer; // node streams of an IncomingMessage yield Buffers
    size += b.length;
    if (size > limit) throw new BadBody('body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** JSON object body; an empty body is `{}`. Throws BadBody on anything else. */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new BadBody('Problems parsing JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadBody('Body should be a JSON object');
  return v as Record<string, unknown>; // checked to be a non-array object just above
}

/**
 * A body that is JSON, or form-encoded as busybox `wget --post-data` sends it.
 * Form values keep `+` (base64 JIT configs): a literal space never occurs in them.
 */
export function parseLooseBody(text: string): Record<string, unknown> {
  if (text.trimStart().startsWith('{')) return parseJsonObject(text);
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(text.replace(/\+/g, '%2B'))) out[k] = v;
  return out;
}

export interface Page<T> { readonly items: T[]; readonly link: string | undefined }

/** `per_page` (default 30, at most 100) / `page` pagination with GitHub's `Link` header. */
export function paginate<T>(all: readonly T[], url: URL, base: string): Page<T> | Reply {
  const perPageRaw = url.searchParams.get('per_page');
  const pageRaw = url.searchParams.get('page');
  const perPage = perPageRaw === null ? 30 : Math.min(100, Number(perPageRaw));
  const page = pageRaw === null ? 1 : Number(pageRaw);
  if (!Number.isInteger(perPage) || perPage < 1 || !Number.isInteger(page) || page < 1) {
    return error(422, 'Invalid request.\n\nInvalid pagination parameters.');
  }
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const items = all.slice((page - 1) * perPage, page * perPage);
  const href = (p: number): string => {
    const u = new URL(url.pathname + url.search, base);
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(p));
    return `${base}${u.pathname}${u.search}`;
  };
  const rels: string[] = [];
  if (page > 1) rels.push(`<${href(page - 1)}>; rel="prev"`);
  if (page < last) rels.push(`<${href(page + 1)}>; rel="next"`, `<${href(last)}>; rel="last"`);
  if (page > 1) rels.push(`<${href(1)}>; rel="first"`);
  return { items, link: rels.length === 0 ? undefined : rels.join(', ') };
}

export function isPage<T>(p: Page<T> | Reply): p is Page<T> {
  return 'items' in p;
}
