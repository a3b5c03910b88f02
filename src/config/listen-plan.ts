/**
 * How the webhook endpoint listens, decided from the configuration alone
 * (pure): the plan that entrypoints/http/listen.ts carries out, and the
 * one sentence that `flint config check` and the start-up log both say
 * about it.
 *
 *   tls: set            HTTPS on `address` with the operator's certificate
 *   address port 443    HTTPS with an ACME certificate for `address`'s host;
 *                       port 80 answers the challenges
 *   any other port      plain HTTP (behind a TLS-terminating proxy)
 */
import { FlintError } from '../core/errors/index.ts';
import type { FlintConfig } from './types.ts';
import { parseListenAddress } from './values.ts';

export type ListenPlan =
  | { readonly kind: 'http'; readonly host: string; readonly port: number }
  | { readonly kind: 'tls-files'; readonly host: string; readonly port: number; readonly certFile: string; readonly keyFile: string }
  | {
    readonly kind: 'acme'; readonly domain: string; readonly port: number; readonly challengePort: number;
    readonly email: string; readonly directoryUrl: string; readonly caFile?: string;
  };

export const ACME_PORT = 443;
export const CHALLENGE_PORT = 80;

export type ListenSettings = Pick<FlintConfig, 'address' | 'email' | 'acme' | 'tls'>;

/** The listening mode the configuration asks for. */
export function listenPlan(config: ListenSettings): ListenPlan {
  const parsed = parseListenAddress(config.address);
  if (!parsed.ok) throw new FlintError('FLINT_ERR_LISTEN_FAILED', parsed.message);
  // "[::1]" → "::1" for listen(); "" → all interfaces.
  const host = parsed.value.host.startsWith('[') ? parsed.value.host.slice(1, -1) : parsed.value.host;
  const { port } = parsed.value;
  if (config.tls !== undefined) return { kind: 'tls-files', host, port, certFile: config.tls.certFile, keyFile: config.tls.keyFile };
  if (port !== ACME_PORT) return { kind: 'http', host, port };
  // The loader's cross-checks require both; a hand-built configuration may not have them.
  if (host === '' || config.email === undefined) {
    throw new FlintError('FLINT_ERR_CONFIG_CONFLICT', `address ${config.address}: port 443 means HTTPS with an ACME certificate, which needs a host name and \`email\``);
  }
  return {
    kind: 'acme', domain: host.toLowerCase(), port, challengePort: CHALLENGE_PORT, email: config.email,
    directoryUrl: config.acme.directoryUrl, ...(config.acme.caFile === undefined ? {} : { caFile: config.acme.caFile }),
  };
}

/** The plan in one phrase, for `flint config check` and the start-up log's `tls` field. */
export function describePlan(plan: ListenPlan): string {
  switch (plan.kind) {
    case 'http': return 'plain HTTP';
    case 'tls-files': return `HTTPS with the certificate in ${plan.certFile} and its key in ${plan.keyFile}, re-read when they change`;
    case 'acme': return `HTTPS with a certificate for ${plan.domain} from the ACME directory ${plan.directoryUrl}, contact ${plan.email}, ` +
      `renewed automatically; port ${plan.challengePort} answers the challenges and redirects the rest to HTTPS`;
  }
}

/** describePlan of the configuration; a plan it cannot make (a hand-built configuration) is said as why. */
export function describeListening(config: ListenSettings): string {
  try {
    return describePlan(listenPlan(config));
  } catch (err) {
    return `not usable: ${err instanceof Error ? err.message : String(err)}`;
  }
}
