/**
 * GitHub signs every delivery: `X-Hub-Signature-256: sha256=<hex>`, the
 * HMAC-SHA256 of the RAW body bytes under the webhook secret. Verified over
 * the bytes as received (never a re-serialised parse), compared in constant
 * time. Several secrets are tried so that a secret can be rotated without
 * dropping deliveries: the current one first, then the previous one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const HEADER = /^sha256=([0-9a-f]{64})$/i;

/** The secret's index in `secrets` that signed `body`, or -1 when none did (or the header is malformed). */
export function verifySignature(secrets: readonly string[], body: Uint8Array, header: string | undefined): number {
  const m = header === undefined ? null : HEADER.exec(header.trim());
  if (m === null) return -1;
  // m[1] is the one capture group of HEADER, present whenever it matched.
  const claimed = Buffer.from(m[1] as string, 'hex');
  for (const [i, secret] of secrets.entries()) {
    const expected = createHmac('sha256', secret).update(body).digest();
    // Both are 32 bytes (checked by HEADER), as timingSafeEqual requires.
    if (timingSafeEqual(expected, claimed)) return i;
  }
  return -1;
}

/** The header value GitHub would send for `body` under `secret` (for tests, the simulator and the benchmark). */
export function signatureHeader(secret: string, body: Uint8Array | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
