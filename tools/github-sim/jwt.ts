/**
 * GitHub App JWTs (RS256), checked by GitHub's rules:
 * - the signature verifies against the App's public key, algorithm RS256;
 * - `iss` is the App id (number or numeric string, as GitHub accepts both);
 * - `iat` may lie at most 60 s in the future (clock drift allowance);
 * - `exp` is in the future and at most 10 minutes after `iat`.
 * The messages are the ones GitHub answers with, so clients that log them
 * read the same text as in production.
 */
import { createPrivateKey, createPublicKey, createSign, createVerify, type KeyObject } from 'node:crypto';

export type JwtCheck =
  | { readonly ok: true; readonly appId: number }
  | { readonly ok: false; readonly message: string };

const IAT_SKEW_SECONDS = 60;
const MAX_LIFETIME_SECONDS = 600;

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** True when `token` has the shape of a JWT (three base64url parts), as opposed to an installation token. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export function verifyAppJwt(token: string, publicKey: KeyObject, expectedAppId: number, nowSeconds: number): JwtCheck {
  const undecodable = { ok: false, message: 'A JSON web token could not be decoded' } as const;
  const parts = token.split('.');
  if (parts.length !== 3) return undecodable;
  const [h, p, s] = parts as [string, string, string];
  let header: unknown;
  let payload: unknown;
  try {
    header = b64urlJson(h);
    payload = b64urlJson(p);
  } catch {
    return undecodable;
  }
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'RS256') return undecodable; // an object, checked just before
  const verifier = createVerify('RSA-SHA256');
  verifier.update(`${h}.${p}`);
  if (!verifier.verify(publicKey, Buffer.from(s, 'base64url'))) return undecodable;
  if (typeof payload !== 'object' || payload === null) return undecodable;
  const claims = payload as { iss?: unknown; iat?: unknown; exp?: unknown }; // an object, checked on the line above; each claim is type-checked below
  const iss = typeof claims.iss === 'string' ? Number(claims.iss) : claims.iss;
  if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat) || claims.iat > nowSeconds + IAT_SKEW_SECONDS) {
    return { ok: false, message: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued." };
  }
  if (typeof claims.exp !== 'number' || !Number.isInteger(claims.exp) || claims.exp <= nowSeconds) {
    return { ok: false, message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires." };
  }
  if (claims.exp - claims.iat > MAX_LIFETIME_SECONDS) {
    return { ok: false, message: "'Expiration time' claim ('exp') is too far in the future." };
  }
  if (iss !== expectedAppId) {
    // GitHub does not reveal which apps exist: a wrong issuer reads like a bad token.
    return { ok: false, message: "'Issuer' claim ('iss') must be an Integer" };
  }
  return { ok: true, appId: expectedAppId };
}

/**
 * Signs a JWT with arbitrary claims. Test helper: lets tests build the
 * expired, future-dated and foreign-key tokens that a correct client never
 * produces.
 */
export function signJwt(claims: Record<string, unknown>, privateKeyPem: string): string {
  const h = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signer = createSign('RSA-SHA256');
  signer.update(`${h}.${p}`);
  return `${h}.${p}.${signer.sign(createPrivateKey(privateKeyPem)).toString('base64url')}`;
}

export function publicKeyOf(privateKeyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(privateKeyPem));
}
