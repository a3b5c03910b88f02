/**
 * zod issues → ConfigProblems: a catalogue code, the file position of the
 * key or value, a message that names what was expected (never a string's
 * content, which may be a secret) and a hint (did-you-mean, where a key
 * belongs, or what the key is for).
 */
import type { z } from 'zod';
import { didYouMean } from './did-you-mean.ts';
import type { ConfigLocator } from './locate.ts';
import { getRaw, isRecord } from './locate.ts';
import type { ConfigProblem, PathSegment } from './problems.ts';
import { formatPath } from './problems.ts';
import type { IssueParams } from './schema.ts';
import { KEY_HINTS, KNOWN_KEYS } from './schema.ts';

export function kindOf(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value lines)',
};

/**
 * YAML reads `secret: 0123` or `label: yes` as a number or boolean. Flint
 * never converts those back to text (0123 would silently become "123"), it
 * asks for quotes.
 */
function quoteHint(wantsString: boolean, value: unknown): string | undefined {
  return wantsString && (typeof value === 'number' || typeof value === 'boolean') ? 'YAML read this as a number or true/false; put the value in quotes' : undefined;
}

/** Which kind of object sits at `path`, for the list of keys it may have. */
function knownKeysAt(path: readonly PathSegment[], raw: unknown): readonly string[] {
  const v = getRaw(raw, path);
  if (path.length === 0) return KNOWN_KEYS.file;
  if (path.length === 1 && path[0] === 'github') return KNOWN_KEYS.github;
  if (path.length === 1 && path[0] === 'acme') return KNOWN_KEYS.acme;
  if (path.length === 1 && path[0] === 'tls') return KNOWN_KEYS.tls;
  if (path.length === 1 && path[0] === 'admin') return KNOWN_KEYS.admin;
  if (path.length === 1 && path[0] === 'status') return KNOWN_KEYS.status;
  if (path.length === 1 && path[0] === 'store') return KNOWN_KEYS.store;
  if (path.length === 2 && path[0] === 'store' && path[1] === 'postgres') return KNOWN_KEYS.postgres;
  if (path.length === 2 && path[0] === 'networks') return KNOWN_KEYS.network;
  if (path.length === 2 && (path[0] === 'runners' || path[0] === 'static_runners')) return KNOWN_KEYS.runner;
  if (path.length === 3 && (path[0] === 'runners' || path[0] === 'static_runners') && path[2] === 'rateLimits') return KNOWN_KEYS.rateLimits;
  if (path.length === 3 && (path[0] === 'runners' || path[0] === 'static_runners') && path[2] === 'egress') return KNOWN_KEYS.egress;
  if (path.length === 3 && (path[0] === 'runners' || path[0] === 'static_runners') && path[2] === 'scaleSet') return KNOWN_KEYS.scaleSet;
  if (v !== null && typeof v === 'object' && 'env' in v) return KNOWN_KEYS.env;
  return [];
}

/** Where each top-level key of another section belongs, for "this key goes elsewhere" hints. */
function homeOf(key: string): string | undefined {
  if (KNOWN_KEYS.runner.includes(key)) return 'a runner under `runners:`';
  if (KNOWN_KEYS.github.includes(key)) return '`github:`';
  if (KNOWN_KEYS.network.includes(key)) return 'a network under `networks:`';
  if (KNOWN_KEYS.acme.includes(key)) return '`acme:`';
  if (KNOWN_KEYS.tls.includes(key)) return '`tls:`';
  if (KNOWN_KEYS.file.includes(key)) return 'the top level of the file';
  return undefined;
}

export function issueToProblems(issue: z.core.$ZodIssue, raw: unknown, file: string, locate: ConfigLocator): ConfigProblem[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
  const last = path[path.length - 1];
  const keyHint = typeof last === 'string' ? (KEY_HINTS[last] ?? '') : '';
  const at = (p: readonly PathSegment[], where: 'key' | 'value') => (where === 'key' ? locate.key(p) : locate.value(p));
  const problem = (code: ConfigProblem['code'], p: readonly PathSegment[], where: 'key' | 'value', message: string, hint: string): ConfigProblem => ({
    code, file, ...at(p, where), path: formatPath(p), message, hint,
  });

  if (issue.code !== 'unrecognized_keys' && path.length > 0 && getRaw(raw, path) === undefined && isRecord(getRaw(raw, path.slice(0, -1)))) {
    return [problem('FLINT_ERR_CONFIG_MISSING_KEY', path, 'value', `required key \`${String(last)}\` is missing`, `add \`${String(last)}:\`${keyHint ? ` — ${keyHint}` : ''}`)];
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(path, raw);
      return issue.keys.map((k) => {
        const guess = didYouMean(k, known);
        const home = homeOf(k);
        const hint = guess !== undefined ? `did you mean \`${guess}\`?`
          : home !== undefined ? `\`${k}\` belongs in ${home}`
            : known.length > 0 ? `known keys here: ${known.join(', ')}` : 'remove it';
        return problem('FLINT_ERR_CONFIG_UNKNOWN_KEY', [...path, k], 'key', `unknown key \`${k}\``, hint);
      });
    }
    case 'invalid_type': {
      const value = getRaw(raw, path);
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      // Only type names and numbers are echoed, never a string's content: it may be a secret.
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', `expected ${expected}, got ${kindOf(value)}`, quoteHint(issue.expected === 'string', value) ?? keyHint)];
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'at least' : 'at most';
      let message: string;
      if (issue.origin === 'array') message = Number(bound) <= 1 && issue.code === 'too_small' ? 'must not be empty' : `must have ${word} ${String(bound)} entries`;
      else if (issue.origin === 'string') message = `must have ${word} ${String(bound)} characters`;
      else message = issue.message.startsWith('must') ? issue.message : `must be ${word} ${String(bound)}`;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', message, keyHint)];
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      const value = getRaw(raw, path);
      const guess = typeof value === 'string' ? didYouMean(value, values) : undefined;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', `must be one of ${values.join(', ')}`, guess ? `did you mean "${guess}"?` : keyHint)];
    }
    case 'custom': {
      const params = (issue.params ?? {}) as IssueParams; // our own custom issues always carry IssueParams (schema.ts fail())
      return [problem(params.flintCode ?? 'FLINT_ERR_CONFIG_VALUE', path, 'value', issue.message, params.hint ?? keyHint)];
    }
    default: {
      // invalid_union, invalid_format and the rest: schema.ts gives each a readable message.
      const message = issue.message.startsWith('Invalid') ? `is not valid (${issue.message})` : issue.message;
      return [problem('FLINT_ERR_CONFIG_VALUE', path, 'value', message, quoteHint(issue.code === 'invalid_union' && message.startsWith('expected a string'), getRaw(raw, path)) ?? keyHint)];
    }
  }
}
