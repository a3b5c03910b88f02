/**
 * "Valid, but is it usable on this host?" — the second family of checks of
 * `flint config check`, kept apart from structural validity (load.ts): a
 * file can be correct and meant for another machine. Problems here carry
 * their own codes (FLINT_ERR_CONFIG_PRIVATE_KEY_UNUSABLE, …_PATH_UNUSABLE,
 * …_APP_ID_UNUSABLE) and positions in the file like every other problem.
 *
 * The host is reached only through HostProbe, so the rules are tested with a
 * fake and the real probe (host-probe.ts) stays a few lines of fs calls.
 */
import { createPrivateKey } from 'node:crypto';
import type { ConfigProblem, PathSegment } from './problems.ts';
import { formatPath } from './problems.ts';
import type { ConfigLocator } from './locate.ts';
import type { FlintConfig } from './types.ts';

export type FileNeed =
  | { readonly kind: 'read' }
  /** Readable by the given uid/gid too (the jailer drops privileges before opening the drive). */
  | { readonly kind: 'read-as'; readonly uid: number; readonly gid: number }
  | { readonly kind: 'exec' };

export interface HostProbe {
  /** undefined when the file at `path` meets `need`; otherwise why not, e.g. "does not exist". */
  check(path: string, need: FileNeed): string | undefined;
}

/** GitHub App ids are numbers; newer apps may also be addressed by their client id (Iv1.…, Iv23…). */
const APP_ID = /^(\d+|Iv[0-9A-Za-z.]+)$/;

/** Why `pem` cannot sign GitHub App JWTs, or undefined when it can. Never returns key material. */
export function privateKeyProblem(pem: string): string | undefined {
  let key;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return pem.includes('...') ? 'is a placeholder ("..."), not a PEM private key' : 'does not parse as a PEM private key';
  }
  if (key.asymmetricKeyType !== 'rsa') return `is a ${key.asymmetricKeyType ?? 'non-RSA'} key; GitHub App keys are RSA`;
  return undefined;
}

export function checkUsable(
  config: FlintConfig,
  where: { readonly locate: ConfigLocator; readonly runnerPaths: readonly (readonly PathSegment[])[] },
  probe: HostProbe,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (code: ConfigProblem['code'], path: readonly PathSegment[], message: string, hint: string) => {
    problems.push({ code, file: config.source, ...where.locate.value(path), path: formatPath(path), message, hint });
  };

  const gh = config.github;
  if (!APP_ID.test(gh.appId)) {
    add('FLINT_ERR_CONFIG_APP_ID_UNUSABLE', ['github', 'appID'], `"${gh.appId}" is not a GitHub App id`, 'put the numeric App ID from the App\'s settings page here');
  }
  const keyProblem = privateKeyProblem(gh.privateKey);
  if (keyProblem !== undefined) {
    const path = gh.privateKeyFile !== undefined ? ['github', 'privateKeyFile'] : ['github', 'privateKey'];
    const what = gh.privateKeyFile !== undefined ? `the key in ${gh.privateKeyFile}` : 'the private key';
    add('FLINT_ERR_CONFIG_PRIVATE_KEY_UNUSABLE', path, `${what} ${keyProblem}`, 'generate a private key on the GitHub App settings page and point `privateKeyFile:` at the downloaded .pem');
  }

  config.runners.forEach((r, i) => {
    const base = where.runnerPaths[i] ?? ['runners', i];
    const need = (key: string, path: string, n: FileNeed, what: string) => {
      const why = probe.check(path, n);
      if (why !== undefined) add('FLINT_ERR_CONFIG_PATH_UNUSABLE', [...base, key], `${what} ${path} ${why}`, hintFor(key));
    };
    const firecracker = r.hypervisor === 'firecracker';
    need('kernel', r.kernel, { kind: 'read' }, 'kernel');
    if (r.initrd !== undefined) need('initrd', r.initrd, { kind: 'read' }, 'initrd');
    // Under the jailer the VMM opens the base image as uid/gid, not as root.
    need('filesystem', r.filesystem, firecracker ? { kind: 'read-as', uid: r.uid, gid: r.gid } : { kind: 'read' }, 'root filesystem');
    if (firecracker) {
      need('jailer', r.jailer, { kind: 'exec' }, 'jailer');
      need('firecracker', r.firecracker, { kind: 'exec' }, 'firecracker binary');
    } else if (r.qemu !== undefined && r.qemu.includes('/')) {
      need('qemu', r.qemu, { kind: 'exec' }, 'QEMU program');
    }
  });
  return problems;
}

function hintFor(key: string): string {
  switch (key) {
    case 'kernel':
    case 'initrd':
    case 'filesystem':
      return 'build it with `flint image build`, or correct the path';
    case 'jailer':
    case 'firecracker':
      return 'install Firecracker (both `firecracker` and `jailer` from its release archive), or set `hypervisor: qemu`';
    default:
      return 'install it or correct the path';
  }
}
