/**
 * Where the ACME account key and the certificates live: under
 * `<stateDir>/acme/`, directories 0700 and files 0600 (the private keys are
 * secrets; Flint's own process is the only trusted reader). A file is
 * written to a temporary name and renamed into place, so a crash half-way
 * leaves the previous certificate, never a torn one.
 *
 *   acme/account.key            the ACME account's private key (PEM)
 *   acme/certs/<domain>/cert.pem  the certificate with its chain
 *   acme/certs/<domain>/key.pem   the certificate's private key
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertificatePair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateFiles {
  readAccountKey(): string | undefined;
  writeAccountKey(pem: string): void;
  readCertificate(domain: string): CertificatePair | undefined;
  writeCertificate(domain: string, pair: CertificatePair): void;
}

/** Host names only (no path separators, no leading dot): the domain names a directory. */
const DOMAIN = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i;

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

function writeSecret(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  // The mode given to writeFileSync is masked by the umask and ignored for an existing file.
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
}

export function createCertificateFiles(stateDir: string): CertificateFiles {
  const root = join(stateDir, 'acme');
  const domainDir = (domain: string): string => {
    if (!DOMAIN.test(domain) || domain.includes('..')) throw new Error(`not a host name: ${domain}`);
    return join(root, 'certs', domain.toLowerCase());
  };
  return {
    readAccountKey: () => readOptional(join(root, 'account.key')),
    writeAccountKey(pem) {
      ensureDir(root);
      writeSecret(join(root, 'account.key'), pem);
    },
    readCertificate(domain) {
      const dir = domainDir(domain);
      const certPem = readOptional(join(dir, 'cert.pem'));
      const keyPem = readOptional(join(dir, 'key.pem'));
      return certPem === undefined || keyPem === undefined ? undefined : { certPem, keyPem };
    },
    writeCertificate(domain, pair) {
      const dir = domainDir(domain);
      ensureDir(root);
      ensureDir(join(root, 'certs'));
      ensureDir(dir);
      // Key first: a crash between the two renames leaves a new key with the
      // old certificate, which fails to load and is simply issued again.
      writeSecret(join(dir, 'key.pem'), pair.keyPem);
      writeSecret(join(dir, 'cert.pem'), pair.certPem);
    },
  };
}
