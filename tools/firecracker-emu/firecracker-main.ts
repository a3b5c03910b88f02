/**
 * The emulated Firecracker process: what the jailer runs after building the
 * jail. Takes Firecracker's own arguments, serves the API on `--api-sock`
 * (a path inside the jail), boots the configured VM with QEMU on
 * InstanceStart and exits when the VM ends — exit code 0 when the guest shut
 * down, as Firecracker does.
 *
 * The jail root, uid and gid reach it through FLINT_FC_EMU_* environment
 * variables set by the emulated jailer (the real Firecracker is chrooted and
 * needs none of them).
 */
import { appendFileSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { FirecrackerVmm } from './api.ts';
import { ArgError, parseArgs, single } from './args.ts';
import { createJailHost, resolveInJail } from './jail-host.ts';
import { serveApi } from './server.ts';
import type { ArgDef } from './args.ts';

/** Firecracker's exit codes (`FcExitCode`). */
export const FC_EXIT = { ok: 0, generic: 1, argParsing: 153 } as const;

const FIRECRACKER_ARGS: Record<string, ArgDef> = {
  'api-sock': { takesValue: true, defaultValue: '/run/firecracker.socket' },
  id: { takesValue: true, defaultValue: 'anonymous-instance' },
  'seccomp-filter': { takesValue: true },
  'no-seccomp': { takesValue: false },
  'start-time-us': { takesValue: true },
  'start-time-cpu-us': { takesValue: true },
  'parent-cpu-time-us': { takesValue: true },
  'config-file': { takesValue: true },
  'no-api': { takesValue: false },
  'log-path': { takesValue: true },
  level: { takesValue: true },
  module: { takesValue: true },
  'show-level': { takesValue: false },
  'show-log-origin': { takesValue: false },
  'metrics-path': { takesValue: true },
  'boot-timer': { takesValue: false },
  'http-api-max-payload-size': { takesValue: true },
  'mmds-size-limit': { takesValue: true },
  'enable-pci': { takesValue: false },
};

export async function runFirecracker(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(FIRECRACKER_ARGS, argv);
  } catch (err) {
    if (!(err instanceof ArgError)) throw err;
    process.stderr.write(`Arguments parsing error: ${err.message} \n\nFor more information try --help.\n`);
    return FC_EXIT.argParsing;
  }
  if (parsed.help || parsed.version) {
    process.stdout.write('Firecracker v1.10.1 (Flint emulator)\n');
    return FC_EXIT.ok;
  }
  if (parsed.flags.has('no-api') || parsed.values.has('config-file')) {
    process.stderr.write('This emulator serves the API only: --config-file and --no-api are not supported.\n');
    return FC_EXIT.generic;
  }
  const root = process.env['FLINT_FC_EMU_ROOT'];
  if (root === undefined) {
    process.stderr.write('The Firecracker emulator runs only under the emulated jailer (FLINT_FC_EMU_ROOT is not set).\n');
    return FC_EXIT.generic;
  }
  const uid = Number(process.env['FLINT_FC_EMU_UID'] ?? '0');
  const gid = Number(process.env['FLINT_FC_EMU_GID'] ?? '0');
  const id = single(parsed, 'id') ?? 'anonymous-instance';
  const apiSock = single(parsed, 'api-sock') ?? '/run/firecracker.socket';
  // The socket's directory must exist inside the jail (the jailer makes /run); the socket itself must not.
  const sockDir = resolveInJail(root, dirname(apiSock));
  const sockHost = `${sockDir}/${apiSock.split('/').pop() ?? 'firecracker.socket'}`;
  mkdirSync(sockDir, { recursive: true });
  // --log-path: Firecracker appends to an existing file (or named pipe) inside its jail.
  const logPath = single(parsed, 'log-path');
  let logFile: string | undefined;
  if (logPath !== undefined) {
    try {
      logFile = resolveInJail(root, logPath);
    } catch {
      process.stderr.write(`Failed to open the log file ${logPath}: No such file or directory (os error 2)\n`);
      return FC_EXIT.generic;
    }
  }

  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((ok) => {
    finish = ok;
  });
  const host = createJailHost({
    id,
    root,
    uid,
    gid,
    accel: process.env['FLINT_FC_EMU_ACCEL'] === 'kvm' ? 'kvm' : 'tcg',
    onVmExit: (code) => {
      finish(code === 0 ? FC_EXIT.ok : FC_EXIT.generic);
    },
  });
  const vmm = new FirecrackerVmm(id, host);
  let server;
  try {
    server = await serveApi(vmm, sockHost);
  } catch (err) {
    process.stderr.write(`Failed to open the API socket: ${(err as Error).message}\n`);
    return FC_EXIT.generic;
  }
  // The real Firecracker already runs as the jail's uid/gid when it creates the socket.
  chownSync(sockHost, uid, gid);
  // SIGTERM/SIGKILL end the process with the default action, as they end
  // Firecracker; QEMU follows through its parent-death signal.

  const code = await done;
  server.close();
  rmSync(sockHost, { force: true });
  if (logFile !== undefined) {
    // Firecracker's last log line names its exit code; the Flint driver reads it from here.
    const line = code === FC_EXIT.ok ? 'Firecracker exiting successfully. exit_code=0' : `Firecracker exiting with error. exit_code=${code}`;
    appendFileSync(logFile, `${new Date().toISOString()} [${id}:main] ${line}\n`);
  }
  return code;
}
