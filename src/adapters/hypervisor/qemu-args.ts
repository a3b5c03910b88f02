/**
 * The QEMU command line for one VM of the guest contract
 * (docs/guest-contract.md). Pure: the same spec always gives the same
 * arguments, so the QEMU driver and the Firecracker emulator
 * (tools/firecracker-emu) boot byte-for-byte the same machine.
 *
 * Machine: x86_64 uses `-M microvm` (no PCI, no firmware, virtio-mmio only,
 * like Firecracker); aarch64 uses `-M virt`, which also offers virtio-mmio
 * transports. Invariants the guest relies on:
 *   - block devices appear as vda (rootfs, read-only), vdb (scratch, rw),
 *     vdc (config drive, read-only), in that order;
 *   - one virtio-net device on the given tap with the given MAC;
 *   - the serial console (ttyS0 on x86_64, ttyAMA0 on aarch64) is on the
 *     process's stdin/stdout, or with `console` on a unix socket plus a file;
 *   - `-no-reboot`: a guest reboot or power-off ends the QEMU process, so
 *     the VM's end is always visible as the process's exit;
 *   - QMP listens on `qmpSocket` (graceful stop, status);
 *   - on x86_64 an i8042 controller exists so that QMP `send-key
 *     ctrl-alt-del` reaches the guest, as Firecracker's SendCtrlAltDel does.
 *
 * TCG on x86_64: microvm has no HPET, no PM timer and no speaker port, so a
 * stock kernel cannot calibrate the TSC and hangs right after "tsc: Unable
 * to calibrate against PIT" (KVM guests get the frequency from kvmclock).
 * Under TCG the guest's TSC is the host's, so `tsc_early_khz=<host TSC kHz>`
 * is appended to the kernel command line (unless the spec already sets it).
 * When the caller knows the real frequency (`tscKhz`), `tsc=reliable` goes
 * with it: the host TSC is steady wall-clock time, while the kernel's
 * watchdog reference (timer ticks) lags whenever the emulated CPU is
 * descheduled on a busy host and would wrongly condemn the TSC. With the
 * default guess the watchdog stays on, so a wrong guess cannot make the
 * guest's clock run fast or slow for long.
 */
import type { VmSpec } from '../../daemon/vm/ports.ts';

export type QemuAccel = 'kvm' | 'tcg';
export type QemuArch = 'x86_64' | 'aarch64';

export interface QemuArgsOptions {
  readonly accel: QemuAccel;
  /** Path of the QMP unix socket QEMU listens on (created by QEMU). */
  readonly qmpSocket: string;
  /** Serial console on this unix socket, its output appended to `file` (default: stdio). */
  readonly console?: { readonly socket: string; readonly file: string };
  /** Guest architecture; defaults to x86_64. */
  readonly arch?: QemuArch;
  /** Optional path where QEMU writes its pid. */
  readonly pidFile?: string;
  /**
   * Host TSC frequency in kHz, handed to a TCG x86_64 guest as
   * `tsc_early_khz` (see above). Default: a 2 GHz guess, enough to boot.
   * `hostTscKhz()` / `hostTscKhzSync()` in qemu-host.ts read the real value.
   */
  readonly tscKhz?: number;
  /** QEMU's seccomp filter: the value of `-sandbox` (e.g. `on,spawn=deny`); none when absent. */
  readonly sandbox?: string;
}

export const DEFAULT_TCG_TSC_KHZ = 2_000_000;

export interface QemuCommand {
  readonly binary: string;
  readonly args: string[];
}

/**
 * QEMU's option parser splits on commas; a literal comma in a value is
 * written as two commas. Paths with commas are rare but legal.
 */
function optValue(value: string): string {
  return value.replaceAll(',', ',,');
}

function checkSpec(spec: VmSpec): void {
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) throw new RangeError(`vcpus must be a positive integer, got ${spec.vcpus}`);
  if (!Number.isInteger(spec.memoryMib) || spec.memoryMib < 16) throw new RangeError(`memoryMib must be an integer ≥ 16, got ${spec.memoryMib}`);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(spec.net.mac)) throw new RangeError(`bad MAC address: ${spec.net.mac}`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(spec.net.tap)) throw new RangeError(`bad tap name: ${spec.net.tap}`);
}

/** `-smp`: with SMT two threads per core (when the count allows it), like Firecracker's smt flag. */
function smp(spec: VmSpec): string {
  const threads = spec.smt && spec.vcpus % 2 === 0 ? 2 : 1;
  return `${spec.vcpus},sockets=1,cores=${spec.vcpus / threads},threads=${threads}`;
}

export function qemuArgs(spec: VmSpec, opts: QemuArgsOptions): QemuCommand {
  checkSpec(spec);
  const arch = opts.arch ?? 'x86_64';
  const args: string[] = [];

  if (arch === 'x86_64') {
    // microvm: no option ROMs, no PCI; ISA serial for the console. The
    // virtio-mmio devices are added to the kernel command line by QEMU
    // itself (auto-kernel-cmdline, on by default) when it loads the kernel.
    args.push('-M', 'microvm,x-option-roms=off,pcie=off,rtc=on,isa-serial=on');
    // KVM: the host's CPU model; TCG: everything the emulator offers.
    args.push('-cpu', opts.accel === 'kvm' ? 'host' : 'max');
  } else {
    args.push('-M', 'virt,gic-version=max');
    args.push('-cpu', opts.accel === 'kvm' ? 'host' : 'max');
  }
  args.push('-accel', opts.accel === 'kvm' ? 'kvm' : 'tcg,thread=multi');
  args.push('-smp', smp(spec), '-m', String(spec.memoryMib));

  // Nothing implicit: no default NIC, no VGA, no monitor on stdio, no
  // user config file that could change the machine behind Flint's back.
  args.push('-nodefaults', '-no-user-config', '-nographic', '-no-reboot');

  // Serial console on stdio; signal=off so a byte 0x03 from the console
  // input is passed to the guest instead of killing QEMU.
  // With `console`, the serial console is a unix socket (input) whose output
  // QEMU also appends to a file: neither depends on the process that started
  // QEMU, so the VM outlives it and a successor reads the console on.
  if (opts.console !== undefined) {
    args.push('-chardev', `socket,id=console,path=${optValue(opts.console.socket)},server=on,wait=off,logfile=${optValue(opts.console.file)},logappend=on`);
  } else {
    args.push('-chardev', 'stdio,id=console,signal=off');
  }
  args.push('-serial', 'chardev:console');
  if (arch === 'x86_64') {
    // Keyboard controller: the only way to deliver Ctrl-Alt-Del on microvm
    // (used by stop(); the guest's ACPI stack may lack a power-button handler).
    args.push('-device', 'i8042');
  }

  args.push('-kernel', spec.kernel);
  if (spec.initrd !== undefined) args.push('-initrd', spec.initrd);
  let append = spec.kernelArgs;
  if (arch === 'x86_64' && opts.accel === 'tcg' && !/(^|\s)tsc_early_khz=/.test(append)) {
    const khz = opts.tscKhz ?? DEFAULT_TCG_TSC_KHZ;
    if (!Number.isInteger(khz) || khz <= 0) throw new RangeError(`tscKhz must be a positive integer, got ${khz}`);
    append = `${append} tsc_early_khz=${khz}${opts.tscKhz === undefined ? '' : ' tsc=reliable'}`;
  }
  args.push('-append', append);

  // Drive order is the contract: the guest sees them as vda, vdb, vdc.
  const drives: Array<{ id: string; file: string; readonly: boolean }> = [
    { id: 'vda', file: spec.drives.rootfs, readonly: true },
    { id: 'vdb', file: spec.drives.scratch, readonly: false },
    { id: 'vdc', file: spec.drives.config, readonly: true },
  ];
  for (const d of drives) {
    const ro = d.readonly ? ',readonly=on' : '';
    // cache=none is not used: it needs O_DIRECT, which tmpfs (tests) lacks.
    args.push('-drive', `id=${d.id},file=${optValue(d.file)},format=raw,if=none${ro}`);
    args.push('-device', `virtio-blk-device,drive=${d.id}`);
  }

  args.push('-netdev', `tap,id=net0,ifname=${spec.net.tap},script=no,downscript=no`);
  args.push('-device', `virtio-net-device,netdev=net0,mac=${spec.net.mac.toLowerCase()}`);

  args.push('-qmp', `unix:${optValue(opts.qmpSocket)},server=on,wait=off`);
  if (opts.pidFile !== undefined) args.push('-pidfile', opts.pidFile);
  if (opts.sandbox !== undefined) args.push('-sandbox', opts.sandbox);

  return { binary: arch === 'x86_64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64', args };
}
