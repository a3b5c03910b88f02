/**
 * Keeps one host's certificate fresh. A pass is cheap when nothing is due:
 * it compares the clock with the certificate's validity. It obtains a
 * certificate when there is none, when the stored one is unusable, or when a
 * third of its lifetime is left (30 days of Let's Encrypt's 90); after a
 * failure it waits out an exponential back-off (5 min doubling to 6 h)
 * before the next attempt, which keeps well inside CA rate limits while the
 * certificate in service is still valid for weeks.
 *
 * Loop (started by the HTTPS listener):
 *   certificate-renewal  at start, then every 5 minutes: renew when due
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { FlintError } from '../../core/errors/index.ts';
import { startLoop } from '../../daemon/loop.ts';
import type { Loop, LoopLogger, LoopTimers } from '../../daemon/loop.ts';
import type { CertificateFiles, CertificatePair } from './certificate-files.ts';
import type { Issuer } from './issuer.ts';

export const RENEWAL_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_BACKOFF = { minMs: 5 * 60_000, maxMs: 6 * 3600_000 } as const;

export interface CertificateInUse extends CertificatePair {
  /** Epoch ms. */
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface RenewalLogger extends LoopLogger {
  info(obj: object, msg: string): void;
}

export interface RenewalOptions {
  readonly domain: string;
  readonly files: CertificateFiles;
  readonly issuer: Issuer;
  readonly now: () => number;
  readonly logger: RenewalLogger;
  /** Called with every certificate put in service (the stored one at start, then each renewal). */
  readonly onCertificate: (cert: CertificateInUse) => void;
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

export type PassOutcome = 'fresh' | 'renewed' | 'backing-off';

export interface Renewal {
  /** One pass: obtain a certificate if due and not backing off; throws FLINT_ERR_ACME_FAILED on a failed attempt. */
  pass(): Promise<PassOutcome>;
  current(): CertificateInUse | undefined;
  /** Epoch ms before which no new attempt is made after a failure (undefined: no failure pending). */
  retryAt(): number | undefined;
}

/** Due when a third of the lifetime or less is left. */
export function renewalDue(cert: { readonly notBefore: number; readonly notAfter: number }, now: number): boolean {
  return now >= cert.notAfter - (cert.notAfter - cert.notBefore) / 3;
}

/** Validity of a certificate PEM whose key matches; undefined when either is unusable. */
export function inspectCertificate(pair: CertificatePair): CertificateInUse | undefined {
  try {
    const x509 = new X509Certificate(pair.certPem);
    if (!x509.checkPrivateKey(createPrivateKey(pair.keyPem))) return undefined;
    return { ...pair, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) };
  } catch {
    return undefined;
  }
}

export function createRenewal(opts: RenewalOptions): Renewal {
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  let current: CertificateInUse | undefined;
  let failures = 0;
  let retryAt: number | undefined;

  const stored = opts.files.readCertificate(opts.domain);
  if (stored !== undefined) {
    current = inspectCertificate(stored);
    if (current === undefined) opts.logger.warn({ domain: opts.domain }, 'certificate-renewal: the stored certificate is unusable (unreadable, or its key does not match); a new one will be obtained');
    else opts.onCertificate(current);
  }

  return {
    current: () => current,
    retryAt: () => retryAt,
    async pass() {
      const now = opts.now();
      if (current !== undefined && now < current.notAfter && !renewalDue(current, now)) return 'fresh';
      if (retryAt !== undefined && now < retryAt) return 'backing-off';
      let pair: CertificatePair;
      try {
        pair = await opts.issuer.issue(opts.domain);
      } catch (err) {
        failures++;
        retryAt = opts.now() + Math.min(backoff.maxMs, backoff.minMs * 2 ** (failures - 1));
        const details = { domain: opts.domain, failures, nextAttemptAt: new Date(retryAt).toISOString(), ...(current === undefined ? {} : { validUntil: new Date(current.notAfter).toISOString() }) };
        const message = err instanceof FlintError ? err.message : `could not obtain a certificate for ${opts.domain}: ${err instanceof Error ? err.message : String(err)}`;
        throw new FlintError('FLINT_ERR_ACME_FAILED', `${message}; next attempt after ${details.nextAttemptAt}`, { cause: err, details });
      }
      const cert = inspectCertificate(pair);
      if (cert === undefined) throw new FlintError('FLINT_ERR_ACME_FAILED', `the ACME server issued a certificate for ${opts.domain} that does not parse or does not match its key`);
      opts.files.writeCertificate(opts.domain, pair);
      current = cert;
      failures = 0;
      retryAt = undefined;
      opts.onCertificate(cert);
      opts.logger.info({ domain: opts.domain, notAfter: new Date(cert.notAfter).toISOString() }, 'certificate-renewal: new certificate in service');
      return 'renewed';
    },
  };
}

export function startRenewalLoop(renewal: Renewal, deps: { readonly logger: LoopLogger; readonly now: () => number; readonly timers?: LoopTimers }): Loop {
  return startLoop({
    name: 'certificate-renewal', intervalMs: RENEWAL_INTERVAL_MS, runAtStart: true,
    run: () => renewal.pass(), logger: deps.logger, now: deps.now,
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
  });
}
