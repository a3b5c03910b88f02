/**
 * Obtains a certificate for one host name from an ACME server with the
 * HTTP-01 challenge, through acme-client (the protocol is not hand-written
 * here). The account key is made once and kept in the certificate files;
 * every certificate gets a fresh ECDSA P-256 key.
 */
import { Agent } from 'node:https';
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
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createAcmeIssuer(opts: AcmeIssuerOptions): Issuer {
  return {
    async issue(domain) {
      // acme-client sends every request through one shared axios instance;
      // a Flint process talks to one ACME server, so its trust is set here
      // (always, so that no earlier setting lingers).
      acme.axios.defaults.httpsAgent = opts.caPem === undefined ? undefined : new Agent({ ca: [...rootCertificates, opts.caPem] });
      // No request may hang a pass: the renewal loop runs one pass at a time,
      // and stopping Flint waits for the pass in flight.
      acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
      let accountKey = opts.files.readAccountKey();
      if (accountKey === undefined) {
        accountKey = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
        opts.files.writeAccountKey(accountKey);
      }
      const client = new acme.Client({ directoryUrl: opts.directoryUrl, accountKey, backoffAttempts: 10, backoffMin: 1000, backoffMax: 10_000 });
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
        throw new FlintError('FLINT_ERR_ACME_FAILED', `could not obtain a certificate for ${domain} from ${opts.directoryUrl}: ${reason(err)}`, { cause: err, details: { domain, directoryUrl: opts.directoryUrl } });
      }
    },
  };
}
