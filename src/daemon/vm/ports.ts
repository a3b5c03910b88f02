/**
 * The narrow interfaces the VM supervisor uses to reach the host: a
 * hypervisor driver, host networking, per-VM disks and the host's files.
 * Adapters implement them (src/adapters/hypervisor, network, disks, host);
 * fakes implement the same interfaces for tests of the supervisor's logic,
 * and the contract suites in test/contracts hold both to the same rules.
 */
import type { Readable, Writable } from 'node:stream';
import type { GuestNetwork } from '../../core/guest-contract.ts';
import type { NetworkConfig, RateLimits } from '../../config/types.ts';

/** Everything a driver needs to boot one VM. Paths are on the host. */
export interface VmSpec {
  /** Tagged id: `<instanceId>-<seq>`; appears in tap, jail and runner names. */
  readonly id: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly smt: boolean;
  readonly kernel: string;
  readonly initrd?: string;
  /** Complete kernel command line (the caller adds the network part). */
  readonly kernelArgs: string;
  /** Attached in this order: vda rootfs (read-only), vdb scratch (rw), vdc config drive (read-only). */
  readonly drives: { readonly rootfs: string; readonly scratch: string; readonly config: string };
  readonly net: { readonly tap: string; readonly mac: string };
  /** Per-VM working directory under the state directory; the driver may put sockets and logs here. */
  readonly workDir: string;
  /** uid/gid the VMM runs as (Firecracker's jailer drops to them; QEMU may ignore). */
  readonly uid: number;
  readonly gid: number;
  /** Most tasks (threads and processes) the VMM's cgroup allows; the driver's default when absent. */
  readonly pidsMax?: number;
  /** Per-VM device rate limits (the Firecracker driver passes them to Firecracker's rate limiters). */
  readonly rateLimits?: RateLimits;
  /** Firecracker binaries (Firecracker driver only). */
  readonly firecracker?: { readonly jailer: string; readonly binary: string };
}

export interface VmExit {
  /** Exit code of the VMM process, or null when it was killed by a signal. */
  readonly code: number | null;
  readonly signal: string | null;
}

/**
 * What finds a running VMM again after Flint itself died: persisted in the
 * VM's record once the VMM runs. The VMM does not depend on Flint's process
 * (own session, console to a file), so it outlives a crash of Flint.
 */
export interface VmmHandle {
  /** Host pid of the VMM. */
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: with the pid, names the process across pid reuse. */
  readonly startTime: string;
  /** QMP socket (QEMU) or API socket (Firecracker). */
  readonly controlSocket: string;
  /** The file the VMM writes the serial console to. */
  readonly consoleFile: string;
}

export interface RunningVm {
  readonly id: string;
  /** Host pid of the VMM (or of the jailer that became it). */
  readonly pid: number;
  /** How to find this VMM again after a restart of Flint. */
  readonly handle: VmmHandle;
  /** The guest's serial console, raw bytes. */
  readonly console: Readable;
  /** Keystrokes to the serial console (interactive mode). */
  readonly consoleInput: Writable;
  /** Settles when the VMM process has ended, for whatever reason. */
  readonly exited: Promise<VmExit>;
  /** Ask the guest to shut down (Ctrl-Alt-Del / ACPI); after graceMs, kill. Resolves when the VMM is gone. */
  stop(graceMs: number): Promise<VmExit>;
}

export interface HypervisorDriver {
  readonly kind: 'firecracker' | 'qemu';
  start(spec: VmSpec): Promise<RunningVm>;
  /**
   * Takes over a VMM a previous Flint process started (found by `handle`):
   * a RunningVm whose `exited` watches the process, or null when that VMM
   * is gone (its pid ended or now names another process). `consoleOffset`:
   * where in the console file to resume reading.
   */
  adopt(id: string, workDir: string, handle: VmmHandle, consoleOffset?: number): Promise<RunningVm | null>;
  /** Removes what the driver keeps for a VM (jail directory, sockets). Idempotent; safe after a crash. */
  cleanup(id: string, workDir: string): Promise<void>;
}

/** What one VM got from host networking. */
export interface NetworkLease {
  readonly vmId: string;
  readonly tap: string;
  readonly mac: string;
  readonly guest: GuestNetwork;
}

export interface HostNetwork {
  /** Checks (or, with `create`, creates) the bridge, its address and NAT. */
  ensureNetwork(net: NetworkConfig): Promise<void>;
  /**
   * Allocates an address (persisted), creates the tap on the bridge. `owner`
   * (the VM's uid/gid) owns the tap, so that a VMM that dropped its
   * privileges (Firecracker under the jailer) can still open it.
   */
  attach(vmId: string, hostname: string, net: NetworkConfig, owner?: { uid: number; gid: number }): Promise<NetworkLease>;
  /** Removes the tap and releases the address. Idempotent. */
  detach(vmId: string): Promise<void>;
  /** Removes taps and leases tagged with this instance whose VM is not in `live`. Returns what it removed. */
  sweep(live: ReadonlySet<string>): Promise<string[]>;
}

export interface VmDisks {
  readonly scratch: string;
  readonly config: string;
}

export interface DiskProvisioner {
  /** Creates the sparse ext4 scratch disk and the config drive in `workDir`. */
  prepare(vmId: string, workDir: string, sizeBytes: number, config: Readonly<Record<string, string>>, owner: { uid: number; gid: number }): Promise<VmDisks>;
  /** Deletes the VM's disks. Idempotent. */
  remove(vmId: string, workDir: string): Promise<void>;
}

/** An open file that takes bytes: writes are best effort (a full disk never throws), `close()` is idempotent. */
export interface FileSink {
  write(chunk: Buffer): void;
  close(): void;
}

/**
 * The host's file system as the supervisor uses it: VM work dirs, console
 * logs, the sweep's stray dirs. Paths are absolute. Every removal is
 * idempotent (an absent path is not an error), so teardown and the sweep
 * can run it again.
 */
export interface VmFiles {
  /** Creates `dir` and its missing parents; an existing dir is kept as it is. */
  makeDir(dir: string, mode: number): Promise<void>;
  /** Removes `dir` with everything in it (cheap when it is already empty). */
  removeDir(dir: string): Promise<void>;
  /** The names in `dir`; none when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** The last modification of a file (epoch ms), or undefined when it does not exist. */
  modifiedAt(path: string): Promise<number | undefined>;
  removeFile(path: string): Promise<void>;
  /**
   * Creates (or truncates) a file readable as `mode` says, making its
   * directory (as `dirMode`) when that is missing, and opens it for writing.
   */
  create(path: string, mode: number, dirMode: number): Promise<FileSink>;
}
