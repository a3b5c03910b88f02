/**
 * Firecracker's HTTP API as a pure request handler: method + path + body in,
 * status + JSON body out. Mirrors Firecracker's two layers:
 *
 *   1. parsing at the edge (`api_server/parsed_request.rs`): routing, resource
 *      ids, body deserialisation — failures are 400 with a `fault_message`;
 *   2. the VMM's state rules (`vmm/src/rpc_interface.rs`): before
 *      InstanceStart only configuration actions are allowed (SendCtrlAltDel is
 *      "not supported before starting the microVM"); after it, every
 *      pre-boot action (machine-config, boot-source, drives,
 *      network-interfaces, InstanceStart) is "not supported after starting
 *      the microVM".
 *
 * Host effects (opening files inside the jail, checking the tap, booting)
 * are injected, so the rules are unit-tested without a VM.
 */
import {
  BootSource, Drive, InstanceActionInfo, MachineConfiguration, NetworkInterface, parseStruct, position, SchemaError,
} from './schema.ts';
import type { StructSchema } from './schema.ts';

export const VMM_VERSION = '1.10.1';
export const NOT_SUPPORTED_PRE_BOOT = 'The requested operation is not supported before starting the microVM.';
export const NOT_SUPPORTED_POST_BOOT = 'The requested operation is not supported after starting the microVM.';
/** Firecracker's kernel command line when boot_args is absent (`vmm_config/boot_source.rs`). */
export const DEFAULT_KERNEL_CMDLINE = 'reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd';
const MAX_SUPPORTED_VCPUS = 32;

/** A TokenBucket as accepted (`vmm_config/mod.rs`): refill_time in ms. */
export interface TokenBucketState {
  readonly size: number;
  readonly oneTimeBurst?: number;
  readonly refillTimeMs: number;
}

/** A RateLimiter as accepted: either bucket may be absent. */
export interface RateLimiterState {
  readonly bandwidth?: TokenBucketState;
  readonly ops?: TokenBucketState;
}

function rateLimiterState(v: unknown): RateLimiterState | undefined {
  if (v === undefined) return undefined;
  const r = v as Record<string, Record<string, number> | undefined>; // shape checked by the RateLimiter schema
  const bucket = (b: Record<string, number> | undefined): TokenBucketState | undefined =>
    b === undefined ? undefined : { size: b['size']!, refillTimeMs: b['refill_time']!, ...(b['one_time_burst'] !== undefined ? { oneTimeBurst: b['one_time_burst'] } : {}) }; // required by the schema
  const bandwidth = bucket(r['bandwidth']);
  const ops = bucket(r['ops']);
  return { ...(bandwidth ? { bandwidth } : {}), ...(ops ? { ops } : {}) };
}

export interface DriveState {
  readonly id: string;
  /** Host path (resolved inside the jail). */
  readonly hostPath: string;
  readonly readOnly: boolean;
  readonly root: boolean;
  readonly partuuid?: string;
  readonly rateLimiter?: RateLimiterState;
}

export interface NetState {
  readonly id: string;
  readonly tap: string;
  readonly mac?: string;
  /** Traffic into the guest. */
  readonly rxRateLimiter?: RateLimiterState;
  /** Traffic out of the guest. */
  readonly txRateLimiter?: RateLimiterState;
}

/** Everything InstanceStart hands to the booter. */
export interface BootPlan {
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly smt: boolean;
  readonly kernel: string;
  readonly initrd?: string;
  /** boot_args (or the default) plus what Firecracker appends for the root device. */
  readonly kernelArgs: string;
  /** Firecracker's order: the root device first, then the others in insertion order. */
  readonly drives: readonly DriveState[];
  readonly nets: readonly NetState[];
}

export interface VmmHost {
  /**
   * Resolves a path the way the jailed Firecracker sees it (inside the
   * chroot) and opens it with the given access; returns the host path or
   * throws an error with an `errno`-style `code`.
   */
  openInJail(path: string, write: boolean): string;
  /** undefined when the tap can be opened; otherwise the OS error text. */
  checkTap(name: string): string | undefined;
  boot(plan: BootPlan): Promise<void>;
  ctrlAltDel(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly body?: unknown;
}

/** Rust's io::Error display for the errors the emulator can meet. */
export function osErrorText(err: unknown): string {
  const code = (err as { code?: string } | null)?.code; // errors thrown by node:fs carry a string code
  const table: Record<string, [string, number]> = {
    ENOENT: ['No such file or directory', 2],
    EACCES: ['Permission denied', 13],
    EPERM: ['Operation not permitted', 1],
    EISDIR: ['Is a directory', 21],
    ENOTDIR: ['Not a directory', 20],
    EROFS: ['Read-only file system', 30],
    ENODEV: ['No such device', 19],
    EBUSY: ['Device or resource busy', 16],
  };
  const hit = code === undefined ? undefined : table[code];
  return hit ? `${hit[0]} (os error ${hit[1]})` : String((err as Error | null)?.message ?? err);
}

/**
 * Resources real Firecracker serves that Flint never uses. The emulator
 * answers them with a 400 that names itself, rather than pretend they do not
 * exist (Firecracker's "Invalid request method and/or path") or pretend to
 * implement them.
 */
const FIRECRACKER_ONLY_PUT = ['balloon', 'cpu-config', 'entropy', 'hotplug', 'logger', 'metrics', 'mmds', 'pmem', 'serial', 'snapshot', 'vsock'];
const unsupported = (method: string, resource: string): ApiResponse =>
  fault(400, `The Flint Firecracker emulator does not implement ${method} /${resource} (Flint does not use it).`);

const fault = (status: number, message: string): ApiResponse => ({ status, body: { fault_message: message } });
const bad = (message: string): ApiResponse => fault(400, message);
const serdeFault = (msg: string): ApiResponse => bad(`An error occurred when deserializing the json body of a request: ${msg}.`);

/** `checked_id` in parsed_request.rs. */
function checkId(id: string | undefined): ApiResponse | undefined {
  if (id === undefined || id === '') return bad('The ID cannot be empty.');
  if (!/^[\p{L}\p{N}_]+$/u.test(id)) return bad('API Resource IDs can only contain alphanumeric characters and underscores.');
  return undefined;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; res: ApiResponse };

function parseBody(schema: StructSchema, raw: string): Parsed<Record<string, unknown>> {
  try {
    return { ok: true, value: parseStruct(schema, raw) };
  } catch (err) {
    if (err instanceof SchemaError) return { ok: false, res: serdeFault(`${err.message} ${position(raw, err.at)}`) };
    throw err;
  }
}

export class FirecrackerVmm {
  readonly id: string;
  private readonly host: VmmHost;
  private started = false;
  private machine = { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' as string, cpu_template: undefined as string | undefined };
  private bootSource: { kernel: string; initrd?: string; bootArgs?: string } | undefined;
  private drives: DriveState[] = [];
  private nets: NetState[] = [];
  /** Every request the VMM accepted, in order (tests check the driver's sequence). */
  readonly log: Array<{ method: string; path: string; status: number }> = [];

  constructor(id: string, host: VmmHost) {
    this.id = id;
    this.host = host;
  }

  get state(): 'Not started' | 'Running' {
    return this.started ? 'Running' : 'Not started';
  }

  async handle(method: string, rawPath: string, body: string | undefined): Promise<ApiResponse> {
    const res = await this.route(method, rawPath, body);
    this.log.push({ method, path: rawPath, status: res.status });
    return res;
  }

  private async route(method: string, rawPath: string, body: string | undefined): Promise<ApiResponse> {
    const tokens = rawPath.split('?')[0]!.replace(/^\/+/, '').split('/').filter((t, i, a) => i < a.length - 1 || t !== ''); // split_terminator drops one trailing empty token
    const resource = tokens[0] ?? '';
    const sub = tokens[1];
    const hasBody = body !== undefined && body.length > 0;

    if (method === 'GET') {
      if (hasBody) return bad('GET request cannot have a body.');
      if (resource === '') return { status: 200, body: { id: this.id, state: this.state, vmm_version: VMM_VERSION, app_name: 'Firecracker' } };
      if (resource === 'version') return { status: 200, body: { firecracker_version: VMM_VERSION } };
      if (resource === 'machine-config') return { status: 200, body: this.machineConfigBody() };
      if (['balloon', 'vm', 'mmds', 'hotplug'].includes(resource)) return unsupported('GET', resource);
      return bad(`Invalid request method and/or path: GET ${resource}.`);
    }
    if (method === 'PUT') {
      const known = ['actions', 'boot-source', 'drives', 'machine-config', 'network-interfaces'];
      if (!hasBody) {
        // Firecracker answers "Empty PUT request." for any path when the body is missing.
        return bad('Empty PUT request.');
      }
      if (FIRECRACKER_ONLY_PUT.includes(resource)) return unsupported('PUT', resource);
      if (!known.includes(resource)) return bad(`Invalid request method and/or path: PUT ${resource}.`);
      switch (resource) {
        case 'actions':
          return this.putActions(body);
        case 'boot-source':
          return this.putBootSource(body);
        case 'drives':
          return this.putDrive(body, sub);
        case 'machine-config':
          return this.putMachineConfig(body);
        case 'network-interfaces':
          return this.putNet(body, sub);
      }
    }
    if (method === 'PATCH' && ['balloon', 'drives', 'machine-config', 'mmds', 'network-interfaces', 'vm', 'hotplug'].includes(resource)) {
      return unsupported('PATCH', resource);
    }
    return bad(`Invalid request method and/or path: ${method} ${resource}.`);
  }

  private machineConfigBody(): Record<string, unknown> {
    const m = this.machine;
    const out: Record<string, unknown> = { vcpu_count: m.vcpu_count, mem_size_mib: m.mem_size_mib, smt: m.smt };
    if (m.cpu_template !== undefined) out['cpu_template'] = m.cpu_template;
    out['track_dirty_pages'] = m.track_dirty_pages;
    out['huge_pages'] = m.huge_pages;
    return out;
  }

  private putMachineConfig(body: string): ApiResponse {
    const p = parseBody(MachineConfiguration, body);
    if (!p.ok) return p.res;
    if (this.started) return bad(NOT_SUPPORTED_POST_BOOT);
    const v = p.value;
    const vcpus = v['vcpu_count'] as number; // checked as u8 by the schema
    const mem = v['mem_size_mib'] as number; // checked as usize by the schema
    const smt = (v['smt'] as boolean | undefined) ?? false;
    const huge = (v['huge_pages'] as string | undefined) ?? 'None';
    if (vcpus === 0 || vcpus > MAX_SUPPORTED_VCPUS || (smt && vcpus > 1 && vcpus % 2 === 1)) {
      return bad(`Machine config error: The number of vCPUs must be greater than 0, less than ${MAX_SUPPORTED_VCPUS} and must be 1 or an even number if SMT is enabled.`);
    }
    if (mem === 0 || (huge === '2M' && mem % 2 !== 0)) {
      return bad('Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.');
    }
    this.machine = {
      vcpu_count: vcpus,
      mem_size_mib: mem,
      smt,
      track_dirty_pages: (v['track_dirty_pages'] as boolean | undefined) ?? false,
      huge_pages: huge,
      cpu_template: v['cpu_template'] === 'None' ? undefined : (v['cpu_template'] as string | undefined),
    };
    return { status: 204 };
  }

  private putBootSource(body: string): ApiResponse {
    const p = parseBody(BootSource, body);
    if (!p.ok) return p.res;
    if (this.started) return bad(NOT_SUPPORTED_POST_BOOT);
    const kernelPath = p.value['kernel_image_path'] as string;
    const initrdPath = p.value['initrd_path'] as string | undefined;
    let kernel: string;
    let initrd: string | undefined;
    try {
      kernel = this.host.openInJail(kernelPath, false);
    } catch (err) {
      return bad(`Boot source error: The kernel file cannot be opened: ${osErrorText(err)}`);
    }
    if (initrdPath !== undefined) {
      try {
        initrd = this.host.openInJail(initrdPath, false);
      } catch (err) {
        return bad(`Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. ${osErrorText(err)}`);
      }
    }
    const bootArgs = p.value['boot_args'] as string | undefined;
    if (bootArgs !== undefined && (bootArgs.length >= 2048 || bootArgs.includes('\n'))) {
      return bad('Boot source error: The kernel command line is invalid: String is too long or contains invalid characters');
    }
    this.bootSource = { kernel, ...(initrd !== undefined ? { initrd } : {}), ...(bootArgs !== undefined ? { bootArgs } : {}) };
    return { status: 204 };
  }

  private putDrive(body: string, idFromPath: string | undefined): ApiResponse {
    const idErr = checkId(idFromPath);
    if (idErr) return idErr;
    const p = parseBody(Drive, body);
    if (!p.ok) return p.res;
    if (p.value['drive_id'] !== idFromPath) return bad('The id from the path does not match the id from the body!');
    if (this.started) return bad(NOT_SUPPORTED_POST_BOOT);
    const id = p.value['drive_id'] as string;
    const root = p.value['is_root_device'] as boolean;
    const readOnly = (p.value['is_read_only'] as boolean | undefined) ?? false;
    const path = p.value['path_on_host'] as string | undefined;
    if (p.value['socket'] !== undefined) {
      return bad('Drive config error: Unable to create the virtio block device: vhost-user block devices are not supported by this emulator');
    }
    if (path === undefined) {
      return bad('Drive config error: Unable to create the virtio block device: Virtio backend error: path_on_host is required');
    }
    if (root && this.drives.some((d) => d.root && d.id !== id)) return bad('Drive config error: A root block device already exists!');
    let hostPath: string;
    try {
      hostPath = this.host.openInJail(path, !readOnly);
    } catch (err) {
      return bad(`Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: ${osErrorText(err)} ${path}`);
    }
    const partuuid = p.value['partuuid'] as string | undefined;
    const rateLimiter = rateLimiterState(p.value['rate_limiter']);
    const drive: DriveState = { id, hostPath, readOnly, root, ...(partuuid !== undefined ? { partuuid } : {}), ...(rateLimiter ? { rateLimiter } : {}) };
    // Updating an existing id replaces it in place; the root device always leads the list.
    const rest = this.drives.filter((d) => d.id !== id);
    const existing = this.drives.findIndex((d) => d.id === id);
    if (existing !== -1 && !root) {
      this.drives[existing] = drive;
    } else if (root) {
      this.drives = [drive, ...rest];
    } else {
      this.drives = [...rest, drive];
    }
    return { status: 204 };
  }

  private putNet(body: string, idFromPath: string | undefined): ApiResponse {
    const idErr = checkId(idFromPath);
    if (idErr) return idErr;
    const p = parseBody(NetworkInterface, body);
    if (!p.ok) return p.res;
    if (p.value['iface_id'] !== idFromPath) return bad('The id from the path does not match the id from the body!');
    const mac = p.value['guest_mac'] as string | undefined; // format checked by the schema
    if (this.started) return bad(NOT_SUPPORTED_POST_BOOT);
    const id = p.value['iface_id'] as string;
    const tap = p.value['host_dev_name'] as string;
    const others = this.nets.filter((n) => n.id !== id);
    if (others.some((n) => n.tap === tap)) return bad(`Network config error: The host device name ${tap} is already in use.`);
    if (mac !== undefined && others.some((n) => n.mac?.toLowerCase() === mac.toLowerCase())) {
      return bad(`Network config error: The guest MAC address ${mac} is already in use.`);
    }
    const tapErr = this.host.checkTap(tap);
    if (tapErr !== undefined) {
      return bad(`Network config error: Could not create the network device: Open tap device failed: Error while creating ifreq structure: ${tapErr}. Invalid TUN/TAP Backend provided by ${tap}. Check our documentation on setting up the network devices.`);
    }
    const rx = rateLimiterState(p.value['rx_rate_limiter']);
    const tx = rateLimiterState(p.value['tx_rate_limiter']);
    this.nets = [...others, { id, tap, ...(mac !== undefined ? { mac } : {}), ...(rx ? { rxRateLimiter: rx } : {}), ...(tx ? { txRateLimiter: tx } : {}) }];
    return { status: 204 };
  }

  private async putActions(body: string): Promise<ApiResponse> {
    const p = parseBody(InstanceActionInfo, body);
    if (!p.ok) return p.res;
    const action = p.value['action_type'] as string;
    if (action === 'InstanceStart') {
      if (this.started) return bad(NOT_SUPPORTED_POST_BOOT);
      if (this.bootSource === undefined) return bad('Start microvm error: Cannot start microvm without kernel configuration.');
      const plan = this.plan(this.bootSource);
      try {
        await this.host.boot(plan);
      } catch (err) {
        return bad(`Start microvm error: ${(err as Error).message}`);
      }
      this.started = true;
      return { status: 204 };
    }
    if (action === 'SendCtrlAltDel') {
      if (!this.started) return bad(NOT_SUPPORTED_PRE_BOOT);
      try {
        await this.host.ctrlAltDel();
      } catch (err) {
        return bad(`Internal VMM error: ${(err as Error).message}`);
      }
      return { status: 204 };
    }
    // FlushMetrics: not allowed before boot; after boot it needs a metrics sink this emulator never has.
    if (!this.started) return bad(NOT_SUPPORTED_PRE_BOOT);
    return bad('Metrics error: Cannot flush metrics: metrics were not configured.');
  }

  private plan(boot: { kernel: string; initrd?: string; bootArgs?: string }): BootPlan {
    // builder.rs: with a root block device Firecracker appends root= and ro/rw.
    let args = boot.bootArgs ?? DEFAULT_KERNEL_CMDLINE;
    const root = this.drives.find((d) => d.root);
    if (root) {
      args += root.partuuid !== undefined ? ` root=PARTUUID=${root.partuuid}` : ' root=/dev/vda';
      args += root.readOnly ? ' ro' : ' rw';
    }
    return {
      vcpus: this.machine.vcpu_count,
      memoryMib: this.machine.mem_size_mib,
      smt: this.machine.smt,
      kernel: boot.kernel,
      ...(boot.initrd !== undefined ? { initrd: boot.initrd } : {}),
      kernelArgs: args,
      drives: [...this.drives],
      nets: [...this.nets],
    };
  }
}
