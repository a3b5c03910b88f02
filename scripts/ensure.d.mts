// Types of scripts/ensure.mjs (plain JavaScript: it runs before any
// dependency is installed) for the TypeScript that imports it.
export interface DeclaredPrerequisite {
  readonly program?: string;
  readonly file?: string;
  readonly package: string;
  readonly for: readonly string[];
}
export const PREREQUISITES: { readonly purposes: Readonly<Record<string, string>>; readonly prerequisites: readonly DeclaredPrerequisite[] };
export function haveProgram(program: string): boolean;
export function haveFile(pattern: string): boolean;
export function missingPrerequisites(purposes: readonly string[]): DeclaredPrerequisite[];
export function ensureSystemPackages(purposes: readonly string[]): void;
export function localNodeHeaders(execPath?: string, version?: string): string | undefined;
export function ensureNodeModules(dir?: string): void;
