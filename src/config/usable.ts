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
  /**
   * Readable by the given uid/gid too: the VMM opens the kernel, initrd and
   * base image after dropping to the runner definition's uid/gid. `via`
   * says how it reaches the file: `jail`, a hard link (or copy) that root
   * puts into the jail, so only the file's own bits count; `path`, at the
   * path itself (QEMU), so every directory above it must let uid/gid pass.
   */
  | { readonly kind: 'read-as'; readonly uid: number; readonly gid: number; readonly via: 'jail' | 'path' }
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
    // Both VMMs open the shared images as the definition's uid/gid, not as
    // root: the jailer after its chroot, QEMU after setpriv (uid 0 reads anything).
    const opener = firecracker ? 'the jailer runs Firecracker' : 'QEMU runs';
    const shared = (key: string, path: string, what: string) => {
      const why = probe.check(path, { kind: 'read' });
      if (why !== undefined) {
        add('FLINT_ERR_CONFIG_PATH_UNUSABLE', [...base, key], `${what} ${path} ${why}`, hintFor(key));
        return;
      }
      if (r.uid === 0) return;
      const via = firecracker ? 'jail' : 'path';
      const denied = probe.check(path, { kind: 'read-as', uid: r.uid, gid: r.gid, via });
      if (denied !== undefined) add('FLINT_ERR_CONFIG_PATH_UNUSABLE', [...base, key], `${what} ${path} ${denied}, which ${opener} as`, readAsHint(path, r.uid, r.gid, via));
    };
    shared('kernel', r.kernel, 'kernel');
    if (r.initrd !== undefined) shared('initrd', r.initrd, 'initrd');
    shared('filesystem', r.filesystem, 'root filesystem');
    if (firecracker) {
      need('jailer', r.jailer, { kind: 'exec' }, 'jailer');
      need('firecracker', r.firecracker, { kind: 'exec' }, 'firecracker binary');
    } else if (r.qemu !== undefined && r.qemu.includes('/')) {
      need('qemu', r.qemu, { kind: 'exec' }, 'QEMU program');
    }
  });
  return problems;
}

/** How to let uid/gid read a shared image without handing it over (a hard link shares the inode: Flint never chmods it). */
function readAsHint(path: string, uid: number, gid: number, via: 'jail' | 'path'): string {
  const file = `make it readable by uid ${uid} / gid ${gid} without changing its owner: \`chmod o+r ${path}\`, or \`chgrp ${gid} ${path} && chmod g+r ${path}\``;
  return via === 'jail' ? file : `${file}; and let them through every directory above it: \`chmod o+x DIR\` (search only, no listing), or \`chgrp ${gid} DIR && chmod g+x DIR\``;
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
