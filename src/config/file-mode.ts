/**
 * "Can other users of this host read the secrets in this file?" — asked by
 * `flint config check`, `flint serve` and `flint doctor`. The host's other
 * local users are untrusted (docs/architecture.md, trust zones), so a
 * configuration that holds the App's private key or webhook secret inline
 * must be readable by its owner alone (and root).
 *
 * The same goes for the files the configuration names that hold secrets:
 * `github.privateKeyFile` and `tls.keyFile` (`referencedFileWarnings`).
 *
 * The rule is pure (`secretFileWarning`); `configFileWarning` only reads
 * the file's mode and text.
 */
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import { isRecord } from './locate.ts';
import type { FlintConfig } from './types.ts';

/** The keys of `github:` that hold a secret when written as a plain string (not `{env: NAME}`). */
const SECRET_KEYS = ['webhookSecret', 'previousWebhookSecret', 'privateKey'] as const;

/** The secrets written inline in a parsed configuration document, as key paths. */
export function inlineSecrets(raw: unknown): string[] {
  const github = isRecord(raw) ? raw['github'] : undefined;
  const status = isRecord(raw) ? raw['status'] : undefined;
  const inGithub = isRecord(github) ? SECRET_KEYS.filter((k) => typeof github[k] === 'string' && github[k] !== '').map((k) => `github.${k}`) : [];
  // The status page's token is a secret too.
  const inStatus = isRecord(status) && typeof status['token'] === 'string' && status['token'] !== '' ? ['status.token'] : [];
  return [...inGithub, ...inStatus];
}

/**
 * The warning for a file with permission bits `mode` that holds `secrets`,
 * or undefined when only its owner may read it (or it holds no secret).
 */
export interface FileWarning {
  readonly code: 'FLINT_ERR_CONFIG_READABLE_BY_OTHERS';
  readonly message: string;
  readonly hint: string;
}

/** "flint: warning: CODE: message" and the hint, as the commands print it. */
export function formatFileWarning(w: FileWarning): string {
  return `flint: warning: ${w.code}: ${w.message}\n  hint: ${w.hint}\n`;
}

export function secretFileWarning(file: string, mode: number, secrets: readonly string[]): FileWarning | undefined {
  if (secrets.length === 0) return undefined;
  const others = [(mode & 0o040) !== 0 ? 'its group' : undefined, (mode & 0o004) !== 0 ? 'every user of this host' : undefined].filter((w) => w !== undefined);
  if (others.length === 0) return undefined;
  const perms = (mode & 0o777).toString(8).padStart(3, '0');
  return {
    code: 'FLINT_ERR_CONFIG_READABLE_BY_OTHERS',
    message: `${file} holds ${secrets.join(', ')} and ${others.join(' and ')} may read it (mode ${perms})`,
    hint: `chmod 600 ${file} (owned by the user Flint runs as), or move the secrets out: \`privateKeyFile:\` (mode 0600) for the key, {env: VARIABLE} for the webhook secret and the status token`,
  };
}

/** Reads the file's mode and text; undefined when there is nothing to warn about or the file cannot be read. */
export function configFileWarning(file: string): FileWarning | undefined {
  try {
    const { mode } = statSync(file);
    if ((mode & 0o044) === 0) return undefined; // nothing else may read it: no need to parse
    return secretFileWarning(file, mode, inlineSecrets(parse(readFileSync(file, 'utf8'))));
  } catch {
    return undefined; // an unreadable or unparsable file is reported by the loader, not here
  }
}

/** The files a configuration names that hold secrets, with what each holds. */
export function referencedSecretFiles(config: Pick<FlintConfig, 'github' | 'tls'>): Array<{ file: string; holds: string }> {
  return [
    ...(config.github.privateKeyFile === undefined ? [] : [{ file: config.github.privateKeyFile, holds: 'the App\'s private key' }]),
    ...(config.tls === undefined ? [] : [{ file: config.tls.keyFile, holds: 'the TLS private key' }]),
  ];
}

/**
 * Warnings for the secret files the configuration names (private key file,
 * TLS key) that others may read. `modeOf` gives a file's mode, undefined
 * when it cannot be examined (the loader reports an unreadable file).
 */
export function referencedFileWarnings(config: Pick<FlintConfig, 'github' | 'tls'>, modeOf: (file: string) => number | undefined = statMode): FileWarning[] {
  return referencedSecretFiles(config).flatMap(({ file, holds }) => {
    const mode = modeOf(file);
    const w = mode === undefined ? undefined : secretFileWarning(file, mode, [holds]);
    return w === undefined ? [] : [{ ...w, hint: `chmod 600 ${file} (owned by the user Flint runs as)` }];
  });
}

function statMode(file: string): number | undefined {
  try {
    return statSync(file).mode;
  } catch {
    return undefined;
  }
}
