// Types of scripts/node-version.mjs (plain JavaScript: it runs before any
// dependency is installed) for the TypeScript that imports it.
export function nodeVersionProblem(version: string, range: string): string | undefined;
