/**
 * The request bodies of the Firecracker API resources Flint uses, checked
 * the way Firecracker checks them: Firecracker deserialises each body with
 * serde into a struct marked `deny_unknown_fields`, so an unknown field, a
 * missing required field, a value of the wrong JSON type, an integer out of
 * its Rust type's range or an unknown enum variant is a 400 with serde's
 * wording. Field lists and types follow Firecracker's swagger
 * (`src/firecracker/swagger/firecracker.yaml`) and the Rust structs behind it.
 *
 * Like serde_json, the body is read as a stream and checked as it is read:
 * the first problem in document order wins, and the message ends with
 * serde_json's "at line L column C" (the column of the last character read).
 */

export type FieldType =
  | { readonly kind: 'string' }
  | { readonly kind: 'mac' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'uint'; readonly rust: 'u8' | 'u32' | 'u64' | 'usize' }
  | { readonly kind: 'enum'; readonly variants: readonly string[] }
  | { readonly kind: 'struct'; readonly schema: StructSchema };

export interface FieldSpec {
  readonly type: FieldType;
  /** Required fields have no serde default; optional ones are `Option<…>` or `#[serde(default)]`. */
  readonly required: boolean;
  /** `Option<…>` fields accept JSON null as "absent". */
  readonly nullable?: boolean;
}

export interface StructSchema {
  readonly name: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /**
   * A struct without `deny_unknown_fields`: serde reads an unknown field's
   * value (it must still be valid JSON) and drops it.
   */
  readonly ignoreUnknown?: boolean;
}

const str: FieldType = { kind: 'string' };
const bool: FieldType = { kind: 'bool' };
const u8: FieldType = { kind: 'uint', rust: 'u8' };
const u64: FieldType = { kind: 'uint', rust: 'u64' };
const usize: FieldType = { kind: 'uint', rust: 'usize' };
const opt = (type: FieldType): FieldSpec => ({ type, required: false, nullable: true });
const req = (type: FieldType): FieldSpec => ({ type, required: true });
/** `#[serde(default)]` without Option: may be left out, but null is a type error. */
const dflt = (type: FieldType): FieldSpec => ({ type, required: false });

// TokenBucketConfig is the one struct here without deny_unknown_fields (vmm_config/mod.rs).
const TokenBucket: StructSchema = {
  name: 'TokenBucketConfig',
  ignoreUnknown: true,
  fields: { size: req(u64), one_time_burst: opt(u64), refill_time: req(u64) },
};
const RateLimiter: StructSchema = {
  name: 'RateLimiterConfig',
  fields: { bandwidth: opt({ kind: 'struct', schema: TokenBucket }), ops: opt({ kind: 'struct', schema: TokenBucket }) },
};

export const MachineConfiguration: StructSchema = {
  name: 'MachineConfig',
  fields: {
    vcpu_count: req(u8),
    mem_size_mib: req(usize),
    smt: dflt(bool),
    cpu_template: opt({ kind: 'enum', variants: ['C3', 'T2', 'T2S', 'T2CL', 'T2A', 'V1N1', 'None'] }),
    track_dirty_pages: dflt(bool),
    huge_pages: dflt({ kind: 'enum', variants: ['None', '2M'] }),
  },
};

export const BootSource: StructSchema = {
  name: 'BootSourceConfig',
  fields: { kernel_image_path: req(str), initrd_path: opt(str), boot_args: opt(str) },
};

export const Drive: StructSchema = {
  name: 'BlockDeviceConfig',
  fields: {
    drive_id: req(str),
    partuuid: opt(str),
    is_root_device: req(bool),
    cache_type: dflt({ kind: 'enum', variants: ['Unsafe', 'Writeback'] }),
    is_read_only: opt(bool),
    path_on_host: opt(str),
    rate_limiter: opt({ kind: 'struct', schema: RateLimiter }),
    io_engine: opt({ kind: 'enum', variants: ['Sync', 'Async'] }),
    socket: opt(str),
  },
};

export const NetworkInterface: StructSchema = {
  name: 'NetworkInterfaceConfig',
  fields: {
    iface_id: req(str),
    host_dev_name: req(str),
    guest_mac: opt({ kind: 'mac' }),
    rx_rate_limiter: opt({ kind: 'struct', schema: RateLimiter }),
    tx_rate_limiter: opt({ kind: 'struct', schema: RateLimiter }),
  },
};

export const InstanceActionInfo: StructSchema = {
  name: 'ActionBody',
  fields: { action_type: req({ kind: 'enum', variants: ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] }) },
};

const MAX: Record<'u8' | 'u32' | 'u64' | 'usize', bigint> = {
  u8: 255n,
  u32: 4294967295n,
  u64: 18446744073709551615n,
  usize: 18446744073709551615n,
};

/** A problem in a body: serde's message and the offset (exclusive) where serde_json noticed it. */
export class SchemaError extends Error {
  readonly at: number;
  constructor(message: string, at: number) {
    super(message);
    this.at = at;
  }
}

/** serde_json's "at line L column C" for an error noticed after reading `text[0..at)`. */
export function position(text: string, at: number): string {
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const col = at - (before.lastIndexOf('\n') + 1);
  return `at line ${line} column ${col}`;
}

function expected(type: FieldType): string {
  switch (type.kind) {
    case 'string':
    case 'mac':
      return 'a string';
    case 'bool':
      return 'a boolean';
    case 'uint':
      return type.rust;
    case 'enum':
      return 'variant identifier';
    case 'struct':
      return `struct ${type.schema.name}`;
  }
}

type Scalar = { kind: 'string'; value: string } | { kind: 'number'; text: string } | { kind: 'bool'; value: boolean } | { kind: 'null' };

/** serde's list of expected names: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
function oneOf(names: readonly string[]): string {
  const q = names.map((n) => `\`${n}\``);
  if (q.length === 1) return q[0]!; // one name
  if (q.length === 2) return `${q[0]!} or ${q[1]!}`; // two names
  return `one of ${q.join(', ')}`;
}

/** A schema-directed JSON reader: serde's deserialisation, one pass, first error wins. */
class Reader {
  i = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  ws(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i]!)) this.i++;
  }

  peek(): string | undefined {
    return this.text[this.i];
  }

  /** A syntax error at the current character (serde_json counts it as read). */
  syntax(msg: string): never {
    if (this.i >= this.text.length) throw new SchemaError(msg.startsWith('EOF') ? msg : 'EOF while parsing a value', this.text.length);
    throw new SchemaError(msg, this.i + 1);
  }

  string(): string {
    // At the opening quote.
    let j = this.i + 1;
    let out = '';
    for (;;) {
      if (j >= this.text.length) {
        this.i = j;
        throw new SchemaError('EOF while parsing a string', this.text.length);
      }
      const c = this.text[j]!;
      if (c === '"') break;
      if (c === '\\') {
        const esc = this.text.slice(j, j + 6);
        const m = /^\\(["\\/bfnrt]|u[0-9a-fA-F]{4})/.exec(esc);
        if (!m) {
          this.i = j + 1;
          this.syntax('invalid escape');
        }
        out += JSON.parse(`"${m![0]}"`) as string; // a single valid JSON escape
        j += m![0].length;
        continue;
      }
      if (c < ' ') {
        this.i = j;
        this.syntax('control character (\\u0000-\\u001F) found while parsing a string');
      }
      out += c;
      j++;
    }
    this.i = j + 1;
    return out;
  }

  /** Any scalar, or the start of a container (not consumed); undefined at a container. */
  scalar(): Scalar | undefined {
    this.ws();
    const c = this.peek();
    if (c === '"') return { kind: 'string', value: this.string() };
    if (c === '{' || c === '[') return undefined;
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(lit, this.i)) {
        this.i += lit.length;
        return v === null ? { kind: 'null' } : { kind: 'bool', value: v };
      }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.i));
    if (m && m[0] !== '-') {
      this.i += m[0].length;
      return { kind: 'number', text: m[0] };
    }
    const lit = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : undefined;
    if (lit !== undefined) {
      // serde_json matches true/false/null letter by letter and fails at the first wrong one.
      let k = 0;
      while (this.text[this.i + k] === lit[k]) k++;
      this.i += k;
      this.syntax('expected ident');
    }
    return this.syntax('expected value');
  }

  /** serde_json's name for an unexpected value ("invalid type: <this>, expected …"). */
  unexpected(v: Scalar): string {
    switch (v.kind) {
      case 'string':
        return `string ${JSON.stringify(v.value)}`;
      case 'bool':
        return `boolean \`${v.value}\``;
      case 'null':
        return 'null';
      case 'number':
        return /[.eE]/.test(v.text) || BigInt(v.text.replace(/^-/, '')) > MAX.u64 ? `floating point \`${Number(v.text)}\`` : `integer \`${v.text}\``;
    }
  }

  /** Reads a value of `type`; `nullable` fields take null as absent (returns undefined). */
  value(type: FieldType, nullable: boolean): unknown {
    this.ws();
    const c = this.peek();
    if (type.kind === 'struct') {
      if (c === '{') return this.struct(type.schema);
      if (c === '[') throw new SchemaError(`invalid type: sequence, expected ${expected(type)}`, this.i + 1);
      const v = this.scalar()!; // not a container: checked above
      if (v.kind === 'null' && nullable) return undefined;
      throw new SchemaError(`invalid type: ${this.unexpected(v)}, expected ${expected(type)}`, this.i);
    }
    if (c === '{' || c === '[') {
      throw new SchemaError(`invalid type: ${c === '{' ? 'map' : 'sequence'}, expected ${expected(type)}`, this.i + 1);
    }
    const v = this.scalar()!; // not a container: checked above
    if (v.kind === 'null' && nullable) return undefined;
    const wrong = (): never => {
      throw new SchemaError(`invalid type: ${this.unexpected(v)}, expected ${expected(type)}`, this.i);
    };
    switch (type.kind) {
      case 'string':
        return v.kind === 'string' ? v.value : wrong();
      case 'mac':
        if (v.kind !== 'string') return wrong();
        // Firecracker's MacAddr: six colon-separated pairs of hex digits.
        if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v.value)) throw new SchemaError('The provided MAC address is not valid.', this.i);
        return v.value;
      case 'bool':
        return v.kind === 'bool' ? v.value : wrong();
      case 'uint': {
        if (v.kind !== 'number' || /[.eE]/.test(v.text)) return wrong();
        const n = BigInt(v.text);
        if (n > MAX.u64) return wrong(); // beyond u64 serde_json reads a float
        if (n < 0n || n > MAX[type.rust]) throw new SchemaError(`invalid value: integer \`${v.text}\`, expected ${type.rust}`, this.i);
        return Number(n);
      }
      case 'enum':
        if (v.kind !== 'string') return wrong();
        if (!type.variants.includes(v.value)) {
          throw new SchemaError(`unknown variant \`${v.value}\`, expected one of ${type.variants.map((x) => `\`${x}\``).join(', ')}`, this.i);
        }
        return v.value;
    }
  }

  /** After a member: true at the closing '}' (consumed), false after a ',' (consumed). */
  endOfMember(): boolean {
    this.ws();
    const c = this.peek();
    if (c === ',') {
      this.i++;
      this.ws();
      if (this.peek() === '}') this.syntax('trailing comma');
      return false;
    }
    if (c === '}') {
      this.i++;
      return true;
    }
    return this.syntax('expected `,` or `}`');
  }

  /** Reads and drops any JSON value (serde's IgnoredAny). */
  skip(): void {
    this.ws();
    const open = this.peek();
    if (open !== '{' && open !== '[') {
      this.scalar();
      return;
    }
    const close = open === '{' ? '}' : ']';
    this.i++;
    this.ws();
    if (this.peek() === close) {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (open === '{') {
        if (this.peek() !== '"') this.syntax('key must be a string');
        this.string();
        this.ws();
        if (this.peek() !== ':') this.syntax('expected `:`');
        this.i++;
      }
      this.skip();
      this.ws();
      const c = this.peek();
      if (c === ',') {
        this.i++;
        this.ws();
        if (this.peek() === close) this.syntax('trailing comma');
        continue;
      }
      if (c === close) {
        this.i++;
        return;
      }
      this.syntax(open === '{' ? 'expected `,` or `}`' : 'expected `,` or `]`');
    }
  }

  struct(schema: StructSchema): Record<string, unknown> {
    // At '{'.
    this.i++;
    const names = Object.keys(schema.fields);
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.ws();
    if (this.peek() === '}') {
      this.i++;
    } else {
      for (;;) {
        this.ws();
        if (this.peek() !== '"') this.syntax('key must be a string');
        const key = this.string();
        const spec = schema.fields[key];
        if (spec === undefined && schema.ignoreUnknown === true) {
          this.ws();
          if (this.peek() !== ':') this.syntax('expected `:`');
          this.i++;
          this.skip();
          if (this.endOfMember()) break;
          continue;
        }
        if (spec === undefined) {
          throw new SchemaError(`unknown field \`${key}\`, expected ${oneOf(names)}`, this.i);
        }
        if (seen.has(key)) throw new SchemaError(`duplicate field \`${key}\``, this.i);
        seen.add(key);
        this.ws();
        if (this.peek() !== ':') this.syntax('expected `:`');
        this.i++;
        const v = this.value(spec.type, spec.nullable === true);
        if (v !== undefined) out[key] = v;
        if (this.endOfMember()) break;
      }
    }
    for (const [key, spec] of Object.entries(schema.fields)) {
      if (spec.required && !(key in out)) throw new SchemaError(`missing field \`${key}\``, this.i);
    }
    return out;
  }
}

/**
 * Reads the body `text` as serde_json would deserialise it into `schema`'s
 * struct. Returns the fields present (null on an Option field counts as
 * absent); throws a SchemaError with serde's message and position.
 */
export function parseStruct(schema: StructSchema, text: string): Record<string, unknown> {
  const r = new Reader(text);
  r.ws();
  if (r.peek() === undefined) throw new SchemaError('EOF while parsing a value', text.length);
  const out = r.value({ kind: 'struct', schema }, false) as Record<string, unknown>; // a struct value is a record
  r.ws();
  if (r.i < text.length) r.syntax('trailing characters');
  return out;
}
