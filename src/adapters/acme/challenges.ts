/**
 * HTTP-01 challenge answers (RFC 8555 §8.3): while an order is being
 * validated, `GET /.well-known/acme-challenge/<token>` on port 80 must
 * answer the key authorization. The issuer puts answers here, the port-80
 * listener reads them.
 */
export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export interface Challenges {
  set(token: string, keyAuthorization: string): void;
  delete(token: string): void;
  /** The key authorization for a request path, or undefined when no such challenge is open. */
  answer(path: string): string | undefined;
}

export function createChallenges(): Challenges {
  const open = new Map<string, string>();
  return {
    set: (token, keyAuthorization) => { open.set(token, keyAuthorization); },
    delete: (token) => { open.delete(token); },
    answer(path) {
      if (!path.startsWith(CHALLENGE_PREFIX)) return undefined;
      const token = path.slice(CHALLENGE_PREFIX.length);
      // Tokens are base64url (RFC 8555 §8.1); anything else is not ours.
      return /^[A-Za-z0-9_-]+$/.test(token) ? open.get(token) : undefined;
    },
  };
}
