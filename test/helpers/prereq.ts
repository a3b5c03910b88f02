/**
 * Prerequisites of tests that need the host: root, programs, devices.
 *
 * Outside CI a missing prerequisite skips the test with a message that says
 * what to install. Under CI (`CI=true`) it fails the test instead: CI
 * installs everything, so a missing prerequisite there is a broken CI, not
 * a reason to pass quietly.
 *
 * Programs come from the one declaration of Flint's system prerequisites,
 * src/prerequisites.json, which the installers read too: a test cannot ask
 * for a program that `npm test` and `.ci/run` do not install.
 */
import { existsSync } from 'node:fs';
import declared from '../../src/prerequisites.json' with { type: 'json' };
import { haveFile, haveProgram } from '../../scripts/ensure.mjs';

/**
 * What a helper needs of its caller's lifetime: a test's context, or a
 * benchmark's own (closers run at its end; a missing prerequisite is fatal).
 */
export interface Scope {
  after(fn: () => unknown): void;
  skip(message?: string): void;
}

export interface Prerequisite {
  readonly what: string;
  readonly ok: () => boolean;
  readonly install: string;
}

/** A program the tests install (its `for` includes "tests"); throws when it is not declared so. */
export function program(name: string): Prerequisite {
  const entry = declared.prerequisites.find((e) => e.program === name);
  if (entry === undefined || !entry.for.includes('tests')) {
    throw new Error(`program ${name} is not declared for "tests" in src/prerequisites.json: add it there, so npm test and .ci/run install it`);
  }
  return { what: `program ${name}`, ok: () => haveProgram(name), install: `apt-get install ${entry.package}` };
}

/**
 * Every prerequisite declared for `purpose` (e.g. 'kernel-source': Debian's
 * kernel source and the headers a real kernel compile needs).
 */
export function declaredFor(purpose: keyof typeof declared.purposes): Prerequisite[] {
  return declared.prerequisites.filter((e) => e.for.includes(purpose)).map((e) => {
    const install = `apt-get install ${e.package}`;
    const { program: name, file: path } = e;
    if (name !== undefined) return { what: `program ${name}`, ok: () => haveProgram(name), install };
    return { what: `file ${path ?? '?'}`, ok: () => path !== undefined && haveFile(path), install };
  });
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
export function requirePrereqs(t: Scope, ...prereqs: Prerequisite[]): boolean {
  const missing = prereqs.filter((p) => !p.ok());
  if (missing.length === 0) return true;
  const msg = missing.map((p) => `${p.what} is missing (${p.install})`).join('; ');
  if (process.env.CI === 'true') {
    throw new Error(`prerequisite missing under CI: ${msg}`);
  }
  t.skip(msg);
  return false;
}
