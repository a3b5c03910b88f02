/**
 * Obtains a certificate for one host name from an ACME server with the
 * HTTP-01 challenge, through acme-client (the protocol is not hand-written
 * here). The account key is made once and kept in the certificate files;
 * every certificate gets a fresh ECDSA P-256 key.
 */
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import { FlintError } from '../../core/errors/index.ts';
import type { CertificateFiles, CertificatePair } from './certificate-files.ts';
import type { Challenges } from './challenges.ts';

const REQUEST_TIMEOUT_MS = 30_000;

export interface Issuer {
  issue(domain: string): Promise<CertificatePair>;
}

export interface AcmeIssuerOptions {
  readonly directoryUrl: string;
  /** PEM of a CA trusted besides the system's, for a private ACME server's HTTPS. */
  readonly caPem?: string;
  /** The account's contact. */
  readonly email: string;
  readonly files: CertificateFiles;
  readonly challenges: Challenges;
  /**
   * acme-client's retries: `attempts`, `minMs` and `maxMs` of its polls and
   * retried steps; `requests`, the retries of one HTTP request that got no
   * answer or a 5xx/429 (5 s, 10 s, … apart).
   */
  readonly backoff?: { readonly attempts: number; readonly minMs: number; readonly maxMs: number; readonly requests: number };
}

/** acme-client's own defaults for requests, fewer and shorter polls. */
const DEFAULT_BACKOFF = { attempts: 10, minMs: 1000, maxMs: 10_000, requests: 5 };

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Why `url` cannot be reached (a network error's code and message), or
 * undefined when any HTTP answer comes back. acme-client, once its retries
 * of a request that got no answer are spent, fails with a TypeError of its
 * own ("Cannot read properties of undefined") that hides the network error;
 * asking once more tells the operator what actually went wrong.
 */
function unreachable(url: string, agent: Agent | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    let req;
    try {
      req = url.startsWith('https:') ? httpsRequest(url, { agent, timeout: REQUEST_TIMEOUT_MS }) : httpRequest(url, { timeout: REQUEST_TIMEOUT_MS });
    } catch (err) {
      resolve(reason(err));
      return;
    }
    req.on('response', (res) => { res.resume(); resolve(undefined); });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code !== undefined && !err.message.includes(err.code) ? `${err.code} ${err.message}` : err.message));
    req.end();
  });
}

export function createAcmeIssuer(opts: AcmeIssuerOptions): Issuer {
  return {
    async issue(domain) {
      // acme-client sends every request through one shared axios instance;
      // a Flint process talks to one ACME server, so its trust is set here
      // (always, so that no earlier setting lingers).
      const agent = opts.caPem === undefined ? undefined : new Agent({ ca: [...rootCertificates, opts.caPem] });
      acme.axios.defaults.httpsAgent = agent;
      // No request may hang a pass: the renewal loop runs one pass at a time,
      // and stopping Flint waits for the pass in flight.
      acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
      const backoff = opts.backoff ?? DEFAULT_BACKOFF;
      // Not in axios's types: acme-client keeps its request retries beside the defaults.
      const defaults = acme.axios.defaults as { acmeSettings?: Record<string, unknown> };
      defaults.acmeSettings = { ...defaults.acmeSettings, retryMaxAttempts: backoff.requests };
      let accountKey = opts.files.readAccountKey();
      if (accountKey === undefined) {
        accountKey = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
        opts.files.writeAccountKey(accountKey);
      }
      const client = new acme.Client({ directoryUrl: opts.directoryUrl, accountKey, backoffAttempts: backoff.attempts, backoffMin: backoff.minMs, backoffMax: backoff.maxMs });
      const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey('P-256'));
      try {
        const certPem = await client.auto({
          csr,
          email: opts.email,
          termsOfServiceAgreed: true,
          challengePriority: ['http-01'],
          // acme-client would first fetch the challenge itself through public
          // DNS; the CA's own validation is the one that counts.
          skipChallengeVerification: true,
          challengeCreateFn: async (_authz, challenge, keyAuthorization) => { opts.challenges.set(challenge.token, keyAuthorization); },
          challengeRemoveFn: async (_authz, challenge) => { opts.challenges.delete(challenge.token); },
        });
        return { certPem, keyPem: key.toString() };
      } catch (err) {
        // An answer from the server (an ACME problem document) is the reason as it stands; an error without one may hide a network failure.
        const answered = typeof err === 'object' && err !== null && 'response' in err && err.response !== undefined;
        const network = answered ? undefined : await unreachable(opts.directoryUrl, agent);
        const why = network === undefined ? reason(err) : `the ACME server could not be reached: ${network}`;
        throw new FlintError('FLINT_ERR_ACME_FAILED', `could not obtain a certificate for ${domain} from ${opts.directoryUrl}: ${why}`, { cause: err, details: { domain, directoryUrl: opts.directoryUrl } });
      }
    },
  };
}
