/**
 * Validation of the simulator's answers and webhook payloads against
 * GitHub's published descriptions: `@octokit/openapi` (REST, OpenAPI 3.0 —
 * `nullable`, `example` keywords) and `@octokit/openapi-webhooks` (OpenAPI
 * 3.1, i.e. JSON Schema 2020-12). Used by the contract test.
 *
 * Besides schema validity it reports *undeclared* fields: properties the
 * simulator sends that the schema does not name. GitHub's schemas rarely
 * forbid extra properties, so plain validation would let a private dialect
 * grow unnoticed.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);
/**
 * A JSON object. The `as Json` casts in this file walk the two spec documents,
 * whose structure (OpenAPI objects, JSON Schema nodes) is fixed by the
 * packages' versions in package-lock.json; a wrong assumption fails the
 * contract test loudly rather than passing it.
 */
type Json = Record<string, unknown>;
// ajv-formats is CommonJS with a default export; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv | Ajv2020) => void;

function load(spec: string): Json {
  return JSON.parse(readFileSync(require.resolve(spec), 'utf8')) as Json;
}

const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions'] as const;
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;
const SCHEMA_ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'] as const;

/** OpenAPI 3.0 schema → JSON Schema: `nullable: true` becomes a `null` alternative; `example` goes. */
function fromOpenApi30(s: unknown): unknown {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return s;
  const src = s as Json;
  const out: Json = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === 'nullable' || k === 'example') continue;
    if ((SCHEMA_MAPS as readonly string[]).includes(k) && typeof v === 'object' && v !== null) {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([n, sub]) => [n, fromOpenApi30(sub)]));
    } else if ((SCHEMA_LISTS as readonly string[]).includes(k) && Array.isArray(v)) {
      out[k] = v.map(fromOpenApi30);
    } else if ((SCHEMA_ONE as readonly string[]).includes(k)) {
      out[k] = fromOpenApi30(v);
    } else {
      out[k] = v;
    }
  }
  if (src.nullable !== true) return out;
  if (typeof out.type === 'string' && out.$ref === undefined && out.allOf === undefined && out.anyOf === undefined && out.oneOf === undefined) {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [{ type: 'null' }, out] };
}

export interface CheckResult { readonly errors: string[] }

export interface SpecChecker {
  /** The JSON schema of an operation's response (`undefined`: no body documented), or null when the status is undocumented. */
  responseSchema(method: string, pathTemplate: string, status: number): Json | undefined | null;
  documentedStatuses(method: string, pathTemplate: string): number[];
  check(schema: Json, value: unknown): CheckResult;
  webhookSchema(name: string): Json;
}

function pointer(...parts: string[]): string {
  return parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function makeChecker(ajv: Ajv | Ajv2020, doc: Json, id: string): Pick<SpecChecker, 'check'> & { resolve: (ref: string) => Json } {
  ajv.addSchema(doc, id);
  const cache = new Map<Json, ValidateFunction>();
  const resolve = (ref: string): Json => {
    let at: unknown = doc;
    for (const raw of ref.replace(/^[^#]*#\//, '').split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      at = (at as Json)[key];
    }
    return at as Json;
  };
  const undeclared = (schema: unknown, value: unknown, where: string, out: string[], depth: number): void => {
    if (depth > 40 || typeof schema !== 'object' || schema === null) return;
    let s = schema as Json;
    while (typeof s.$ref === 'string') s = resolve(s.$ref);
    // Union of everything declared by this node and its composed branches.
    const branches: Json[] = [];
    const collect = (n: Json): void => {
      let x = n;
      while (typeof x.$ref === 'string') x = resolve(x.$ref);
      branches.push(x);
      for (const k of SCHEMA_LISTS) if (Array.isArray(x[k])) for (const b of x[k] as Json[]) collect(b);
    };
    collect(s);
    if (Array.isArray(value)) {
      for (const b of branches) if (b.items !== undefined) value.forEach((v, i) => undeclared(b.items, v, `${where}[${i}]`, out, depth + 1));
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    const props = new Map<string, unknown>();
    let open = false;
    for (const b of branches) {
      if (typeof b.properties === 'object' && b.properties !== null) for (const [k, v] of Object.entries(b.properties as Json)) props.set(k, v);
      if (b.additionalProperties !== undefined && b.additionalProperties !== false) open = true;
      if (b.patternProperties !== undefined) open = true;
    }
    if (props.size === 0) return; // a free-form object (headers, payloads): nothing declared to hold to
    for (const [k, v] of Object.entries(value as Json)) {
      const sub = props.get(k);
      if (sub === undefined) {
        if (!open) out.push(`${where}.${k} is not declared by the schema`);
        continue;
      }
      undeclared(sub, v, `${where}.${k}`, out, depth + 1);
    }
  };
  return {
    resolve,
    check: (schema, value) => {
      let v = cache.get(schema);
      if (v === undefined) {
        v = ajv.compile(schema);
        cache.set(schema, v);
      }
      const errors: string[] = [];
      if (!v(value)) for (const e of v.errors ?? []) errors.push(`${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
      undeclared(schema, value, '$', errors, 0);
      return { errors };
    },
  };
}

export function loadSpecChecker(): SpecChecker {
  const restRaw = load('@octokit/openapi/generated/api.github.com.json');
  const hooksRaw = load('@octokit/openapi-webhooks/generated/api.github.com.json');
  if (!String(restRaw.openapi).startsWith('3.0.')) throw new Error(`@octokit/openapi is OpenAPI ${String(restRaw.openapi)}; this checker converts 3.0`);
  if (!String(hooksRaw.openapi).startsWith('3.1.')) throw new Error(`@octokit/openapi-webhooks is OpenAPI ${String(hooksRaw.openapi)}; expected 3.1`);
  // REST: components converted from OpenAPI 3.0; refs keep pointing at #/components/schemas/….
  const restComponents = restRaw.components as Json;
  const rest: Json = {
    components: {
      schemas: Object.fromEntries(Object.entries(restComponents.schemas as Json).map(([k, v]) => [k, fromOpenApi30(v)])),
    },
  };
  const restAjv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  addFormats(restAjv);
  const restCheck = makeChecker(restAjv, rest, 'rest.json');
  const hooksAjv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(hooksAjv);
  const hooks: Json = { components: hooksRaw.components };
  const hookCheck = makeChecker(hooksAjv, hooks, 'webhooks.json');

  const op = (method: string, path: string): Json => {
    const p = (restRaw.paths as Json)[path] as Json | undefined;
    const o = p?.[method.toLowerCase()] as Json | undefined;
    if (o === undefined) throw new Error(`no operation ${method} ${path} in @octokit/openapi`);
    return o;
  };
  const qualify = (schema: unknown, base: string): Json => {
    // Refs inside inline response schemas are document-relative: point them at the added document.
    const text = JSON.stringify(fromOpenApi30(schema)).replace(/"\$ref":"#\//g, `"$ref":"${base}#/`);
    return JSON.parse(text) as Json;
  };
  return {
    documentedStatuses: (method, path) => Object.keys(op(method, path).responses as Json).map(Number),
    responseSchema: (method, path, status) => {
      let r = (op(method, path).responses as Json)[String(status)] as Json | undefined;
      if (r === undefined) return null;
      if (typeof r.$ref === 'string') r = (restComponents.responses as Json)[r.$ref.split('/').pop() ?? ''] as Json;
      const schema = ((r.content as Json | undefined)?.['application/json'] as Json | undefined)?.schema;
      return schema === undefined ? undefined : qualify(schema, 'rest.json');
    },
    check: (schema, value) => (JSON.stringify(schema).includes('"webhooks.json#') ? hookCheck : restCheck).check(schema, value),
    webhookSchema: (name) => {
      const w = (hooksRaw.webhooks as Json)[name] as Json | undefined;
      const schema = (((w?.post as Json | undefined)?.requestBody as Json | undefined)?.content as Json | undefined)?.['application/json'] as Json | undefined;
      if (schema?.schema === undefined) throw new Error(`no webhook ${name} in @octokit/openapi-webhooks`);
      return JSON.parse(JSON.stringify(schema.schema).replace(/"\$ref":"#\//g, '"$ref":"webhooks.json#/')) as Json;
    },
  };
}

export const BASIC_ERROR: Json = { $ref: `rest.json#/${pointer('components', 'schemas', 'basic-error')}` };
