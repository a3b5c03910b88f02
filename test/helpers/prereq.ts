/**
 * Prerequisites of tests that need the host: root, programs, devices.
 *
 * Outside CI a missing prerequisite skips the test with a message that says
 * what to install. Under CI (`CI=true`) it fails the test instead: CI
 * installs everything, so a missing prerequisite there is a broken CI, not
 * a reason to pass quietly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';

export interface Prerequisite {
  readonly what: string;
  readonly ok: () => boolean;
  readonly install: string;
}

export function program(name: string, debianPackage: string): Prerequisite {
  return {
    what: `program ${name}`,
    ok: () => {
      try {
        execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
        return true;
      } catch {
        return false;
      }
    },
    install: `apt-get install ${debianPackage}`,
  };
}

export function file(path: string, install: string): Prerequisite {
  return { what: `file ${path}`, ok: () => existsSync(path), install };
}

export const root: Prerequisite = {
  what: 'root privileges',
  ok: () => process.getuid?.() === 0,
  install: 'run the tests as root (sudo npm test)',
};

/** True when every prerequisite is present; otherwise skips (or, under CI, fails) `t`. */
export function requirePrereqs(t: TestContext, ...prereqs: Prerequisite[]): boolean {
  const missing = prereqs.filter((p) => !p.ok());
  if (missing.length === 0) return true;
  const msg = missing.map((p) => `${p.what} is missing (${p.install})`).join('; ');
  if (process.env.CI === 'true') {
    throw new Error(`prerequisite missing under CI: ${msg}`);
  }
  t.skip(msg);
  return false;
}
