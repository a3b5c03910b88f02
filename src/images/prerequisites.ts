/**
 * What an image build needs from the host, from the one declaration of
 * Flint's system prerequisites (src/prerequisites.json, which the
 * development installers read too): checked before a build starts, and
 * installed through apt-get when `flint image build` runs as root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { FlintError } from '../core/errors/index.ts';
import declared from '../prerequisites.json' with { type: 'json' };

export type Purpose = keyof typeof declared.purposes;

export interface Prerequisite {
  /** The program or file, as declared. */
  readonly what: string;
  readonly package: string;
}

const searchPath = (): string => `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

function haveProgram(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore', env: { ...process.env, PATH: searchPath() } }).status === 0;
}

/** A path, or a pattern with one `*` in its last component. */
function haveFile(pattern: string): boolean {
  const name = basename(pattern);
  const star = name.indexOf('*');
  if (star === -1) return existsSync(pattern);
  const [head, tail] = [name.slice(0, star), name.slice(star + 1)];
  try {
    return readdirSync(dirname(pattern)).some((n) => n.startsWith(head) && n.endsWith(tail) && n.length >= head.length + tail.length);
  } catch {
    return false;
  }
}

/** What `purposes` need and this host lacks. */
export function missingPrerequisites(purposes: readonly Purpose[]): Prerequisite[] {
  return declared.prerequisites
    .filter((e) => e.for.some((p) => (purposes as readonly string[]).includes(p)))
    .filter((e) => (e.program !== undefined ? !haveProgram(e.program) : !haveFile(e.file ?? '')))
    .map((e) => ({ what: e.program ?? e.file ?? '?', package: e.package }));
}

export interface EnsureOptions {
  /** Install what is missing through apt-get (only as root, where apt-get exists). */
  readonly install: boolean;
  readonly progress?: (message: string) => void;
}

function describe(missing: readonly Prerequisite[]): { what: string; packages: string } {
  return { what: missing.map((m) => m.what).join(', '), packages: [...new Set(missing.map((m) => m.package))].join(' ') };
}

/**
 * Resolves when everything `purposes` need is on the host, after installing
 * it when allowed; throws FLINT_ERR_IMAGE_TOOL_MISSING naming the programs
 * and the Debian packages otherwise.
 */
export function ensurePrerequisites(purposes: readonly Purpose[], opts: EnsureOptions): void {
  let missing = missingPrerequisites(purposes);
  if (missing.length === 0) return;
  const canInstall = opts.install && process.getuid?.() === 0 && haveProgram('apt-get');
  if (canInstall) {
    const { what, packages } = describe(missing);
    opts.progress?.(`installing ${packages} (for ${what})`);
    const env = { ...process.env, PATH: searchPath(), DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update', '-q'], ['install', '-y', '-q', '--no-install-recommends', ...new Set(missing.map((m) => m.package))]]) {
      const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
      if (r.status !== 0) {
        throw new FlintError('FLINT_ERR_IMAGE_TOOL_MISSING', `apt-get ${args[0] ?? ''} failed (exit ${r.status ?? r.signal ?? '?'}) while installing ${packages} (for ${what})`);
      }
    }
    missing = missingPrerequisites(purposes);
    if (missing.length === 0) return;
  }
  const { what, packages } = describe(missing);
  throw new FlintError('FLINT_ERR_IMAGE_TOOL_MISSING',
    `${what} ${missing.length === 1 ? 'is' : 'are'} not installed (as root: apt-get install ${packages})${opts.install && !canInstall ? '; run the build as root to have it installed' : ''}`);
}
