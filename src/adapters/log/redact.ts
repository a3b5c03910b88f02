/**
 * Secret scrubbing for log records, in two layers that do not depend on
 * each other:
 *
 *  - by key: any property whose name says it is a secret (private key,
 *    webhook secret, token, Authorization, JIT config, password, cookie) is
 *    replaced by "[REDACTED]", at any depth, in any object or error;
 *  - by content: the finished text is searched for PEM private-key blocks,
 *    `Bearer …`/`token …` credentials, GitHub token formats, JWTs and the
 *    literal values the caller registered as secrets (webhook secrets, keys),
 *    whatever key or message they hide in.
 */

export const REDACTED = '[REDACTED]';

/** Folded (lowercase, no `_`/`-`) fragments of key names that hold secrets. */
const SECRET_KEY_PARTS = ['secret', 'token', 'password', 'passphrase', 'privatekey', 'jitconfig', 'authorization', 'cookie', 'apikey', 'credential'];

export function isSecretKey(key: string): boolean {
  const folded = key.toLowerCase().replace(/[_-]/g, '');
  return SECRET_KEY_PARTS.some((part) => folded.includes(part));
}

const MAX_DEPTH = 10;

/**
 * A copy of `value` with secret-named keys replaced, errors turned into plain
 * objects (type, message, stack, code, cause and own fields), cycles cut.
 */
export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (depth > MAX_DEPTH) return '[Too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.constructor.name} ${value.byteLength} bytes]`;
    if (value instanceof Date || value instanceof URL) return value;
    const out: Record<string, unknown> = {};
    if (value instanceof Error) {
      out['type'] = value.name;
      out['message'] = value.message;
      if (value.stack !== undefined) out['stack'] = value.stack;
      if (value.cause !== undefined) out['cause'] = redactDeep(value.cause, depth + 1, seen);
    }
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretKey(k) ? REDACTED : redactDeep(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

const CONTENT_PATTERNS: readonly RegExp[] = [
  // PEM private keys of any kind; the JSON-escaped newlines inside are matched too.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g,
  // An unterminated PEM private key (cut-off messages).
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\\\s]*/g,
  // HTTP credentials: "Bearer x", "token x", "Basic x". The value must look
  // like one (≥ 16 characters with a digit) so prose like "token refreshed" survives.
  /\b(Bearer|token|Basic)\s+(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}/gi,
  // GitHub token formats: ghp_, gho_, ghu_, ghs_, ghr_, github_pat_.
  /\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})\b/g,
  // JWTs (App JWTs sign as the App).
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
];

/** Shorter registered secrets are ignored: replacing "abc" everywhere would shred the log, and such a secret is no secret. */
export const MIN_SECRET_LENGTH = 6;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces known secret formats and the registered literal values in a finished log line. */
export function scrubText(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    // The line is JSON: match the value as it appears there (escaped) and as it was.
    const escaped = JSON.stringify(secret).slice(1, -1);
    for (const form of new Set([secret, escaped])) {
      out = out.replace(new RegExp(escapeRegExp(form), 'g'), REDACTED);
    }
  }
  for (const pattern of CONTENT_PATTERNS) out = out.replace(pattern, (m, scheme: unknown) => (typeof scheme === 'string' && /^(bearer|token|basic)$/i.test(scheme) ? `${scheme} ${REDACTED}` : REDACTED));
  return out;
}
