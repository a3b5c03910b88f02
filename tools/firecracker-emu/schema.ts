/**
 * The request bodies of the Firecracker API resources Flint uses, checked
 * the way Firecracker checks them: Firecracker deserialises each body with
 * serde into a struct marked `deny_unknown_fields`, so an unknown field, a
 * missing required field, a value of the wrong JSON type, an integer out of
 * its Rust type's range or an unknown enum variant is a 400 with serde's
 * wording. Field lists and types follow Firecracker's swagger
 * (`src/firecracker/swagger/firecracker.yaml`) and the Rust structs behind it.
 *
 * serde also reports "at line L column C"; this checker leaves the position
 * out (the message up to that point is the same).
 */

export type FieldType =
  | { readonly kind: 'string' }
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

const TokenBucket: StructSchema = {
  name: 'TokenBucketConfig',
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
    guest_mac: opt(str),
    rx_rate_limiter: opt({ kind: 'struct', schema: RateLimiter }),
    tx_rate_limiter: opt({ kind: 'struct', schema: RateLimiter }),
  },
};

export const InstanceActionInfo: StructSchema = {
  name: 'ActionBody',
  fields: { action_type: req({ kind: 'enum', variants: ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] }) },
};

const MAX: Record<'u8' | 'u32' | 'u64' | 'usize', number> = {
  u8: 255,
  u32: 4294967295,
  u64: Number.MAX_SAFE_INTEGER,
  usize: Number.MAX_SAFE_INTEGER,
};

/** How serde names an unexpected JSON value in "invalid type: …". */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return `boolean \`${value}\``;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value < 0 ? `integer \`${value}\`` : `integer \`${value}\``;
    return `floating point \`${value}\``;
  }
  if (Array.isArray(value)) return 'sequence';
  return 'map';
}

function expected(type: FieldType): string {
  switch (type.kind) {
    case 'string':
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

export class SchemaError extends Error {}

function checkValue(type: FieldType, value: unknown): unknown {
  switch (type.kind) {
    case 'string':
      if (typeof value !== 'string') throw new SchemaError(`invalid type: ${describe(value)}, expected ${expected(type)}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new SchemaError(`invalid type: ${describe(value)}, expected ${expected(type)}`);
      return value;
    case 'uint':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw new SchemaError(`invalid type: ${describe(value)}, expected ${expected(type)}`);
      }
      if (value < 0 || value > MAX[type.rust]) throw new SchemaError(`invalid value: integer \`${value}\`, expected ${type.rust}`);
      return value;
    case 'enum':
      if (typeof value !== 'string') throw new SchemaError(`invalid type: ${describe(value)}, expected ${expected(type)}`);
      if (!type.variants.includes(value)) {
        throw new SchemaError(`unknown variant \`${value}\`, expected one of ${type.variants.map((v) => `\`${v}\``).join(', ')}`);
      }
      return value;
    case 'struct':
      return checkStruct(type.schema, value);
  }
}

/**
 * Checks `value` against `schema` and returns it with absent optional
 * fields removed (null on an Option field counts as absent). Throws a
 * SchemaError carrying serde's message.
 */
export function checkStruct(schema: StructSchema, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SchemaError(`invalid type: ${describe(value)}, expected struct ${schema.name}`);
  }
  const names = Object.keys(schema.fields);
  const out: Record<string, unknown> = {};
  // serde reports the first offending field in document order.
  for (const [key, v] of Object.entries(value)) {
    const spec = schema.fields[key];
    if (spec === undefined) {
      throw new SchemaError(`unknown field \`${key}\`, expected one of ${names.map((n) => `\`${n}\``).join(', ')}`);
    }
    if (v === null && spec.nullable === true) continue;
    out[key] = checkValue(spec.type, v);
  }
  for (const [key, spec] of Object.entries(schema.fields)) {
    if (spec.required && !(key in out)) throw new SchemaError(`missing field \`${key}\``);
  }
  return out;
}
