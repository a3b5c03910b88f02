/**
 * The emulated jailer (`tools/firecracker-emu/jailer` runs this). Invoked
 * exactly as Firecracker's jailer is, it checks the arguments the way the
 * jailer does (`src/jailer/src/main.rs`, `env.rs`), with the same messages
 * and exit codes — 1 for an argument-parsing error, 101 (a Rust panic,
 * "Jailer error: …") for an invalid value — builds the same jail:
 *
 *   <chroot-base>/<exec-file name>/<id>/root/            owned uid:gid, 0700
 *   <chroot-base>/<exec-file name>/<id>/root/<exec-file name>   (a copy)
 *   …/root/dev/kvm (c 10 232), …/root/dev/net/tun (c 10 200)   owned uid:gid, 0600
 *   …/root/run/                                          owned uid:gid, 0700
 *   …/root/<exec-file name>.pid                          with --new-pid-ns
 *
 * and then runs the emulated Firecracker (firecracker-main.ts) with
 * `--id <id> --start-time-us … --start-time-cpu-us …` plus everything after
 * `--`. With --new-pid-ns the jailer forks it, writes its pid file and exits
 * 0, leaving Firecracker running — as the real jailer's parent does.
 *
 * Before it runs Firecracker it applies `--resource-limit`s and `--cgroup`
 * values for real (jail-limits.ts): Firecracker, and the QEMU it starts,
 * run under the limits the command line asks for.
 *
 * Deliberate differences: no chroot/pivot_root, no mount or pid namespace,
 * --netns is checked for existence only.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, openSync, realpathSync, statSync, writeSync, closeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgError, parseArgs, single } from './args.ts';
import type { ArgDef } from './args.ts';
import { osErrorText } from './api.ts';
import { runFirecracker } from './firecracker-main.ts';
import { applyCgroups, applyResourceLimits, DEFAULT_NO_FILE, LimitError } from './jail-limits.ts';
import type { ResourceLimits } from './jail-limits.ts';

export const JAILER_ARGS: Record<string, ArgDef> = {
  id: { takesValue: true, required: true },
  'exec-file': { takesValue: true, required: true },
  uid: { takesValue: true, required: true },
  gid: { takesValue: true, required: true },
  'chroot-base-dir': { takesValue: true, defaultValue: '/srv/jailer' },
  netns: { takesValue: true },
  daemonize: { takesValue: false },
  'new-pid-ns': { takesValue: false },
  cgroup: { takesValue: true, multiple: true },
  'resource-limit': { takesValue: true, multiple: true },
  'cgroup-version': { takesValue: true, defaultValue: '1' },
  'parent-cgroup': { takesValue: true },
};

/** Exit codes: a returned Err from main (argument parsing) and a Rust panic. */
export const JAILER_EXIT = { ok: 0, argParsing: 1, panic: 101 } as const;

class JailerError extends Error {}

/** `validators::validate_instance_id`. */
export function validateInstanceId(id: string): string | undefined {
  if (id.length < 1 || id.length > 64) return `invalid len (${id.length});  the length must be between 1 and 64`;
  for (let i = 0; i < id.length; i++) {
    const c = id[i]!;
    if (!/^[A-Za-z0-9-]$/.test(c)) return `invalid char (${c}) at position ${i}`;
  }
  return undefined;
}

function canonicalize(path: string): string {
  try {
    return realpathSync(path);
  } catch (err) {
    throw new JailerError(`Failed to canonicalize path ${path}: ${osErrorText(err)}`);
  }
}

function u32(value: string, what: 'uid' | 'gid'): number {
  if (!/^\d+$/.test(value) || Number(value) > 4294967295) throw new JailerError(`Invalid ${what}: ${value}`);
  return Number(value);
}

export interface JailPlan {
  readonly id: string;
  readonly execFile: string;
  readonly execName: string;
  readonly chrootDir: string;
  readonly uid: number;
  readonly gid: number;
  readonly newPidNs: boolean;
  readonly daemonize: boolean;
  readonly cgroupVersion: 1 | 2;
  readonly parentCgroup: string;
  readonly cgroups: ReadonlyArray<{ file: string; value: string }>;
  readonly resourceLimits: ResourceLimits;
  readonly extra: readonly string[];
}

/** Env::new: every check the jailer makes before touching the file system. */
export function planJail(argv: readonly string[]): JailPlan | 'help' {
  const p = parseArgs(JAILER_ARGS, argv);
  if (p.help || p.version) return 'help';
  const id = single(p, 'id')!; // required by the parser
  const idErr = validateInstanceId(id);
  if (idErr !== undefined) throw new JailerError(`Invalid instance ID: ${idErr}`);

  const execFile = canonicalize(single(p, 'exec-file')!); // required by the parser
  if (!statSync(execFile).isFile()) throw new JailerError(`${execFile} is not a file`);
  const execName = basename(execFile);
  if (!execName.includes('firecracker')) {
    throw new JailerError(`Invalid filename. The filename of \`--exec-file\` option must contain "firecracker": ${execName}`);
  }
  const base = canonicalize(single(p, 'chroot-base-dir')!); // has a default
  if (!statSync(base).isDirectory()) throw new JailerError(`${base} is not a directory`);

  const uid = u32(single(p, 'uid')!, 'uid'); // required by the parser
  const gid = u32(single(p, 'gid')!, 'gid'); // required by the parser

  const parent = single(p, 'parent-cgroup') ?? execName;
  if (parent.startsWith('/') || parent.split('/').some((c) => c === '.' || c === '..')) {
    throw new JailerError("Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'");
  }
  const versionText = single(p, 'cgroup-version')!; // has a default
  const version = /^\d+$/.test(versionText) && Number(versionText) <= 255 ? Number(versionText) : undefined;
  if (version === undefined) throw new JailerError(`${versionText} is an invalid cgroup version specifier`);
  const cgroups: Array<{ file: string; value: string }> = [];
  for (const cg of p.values.get('cgroup') ?? []) {
    if (version !== 1 && version !== 2) throw new JailerError(`${versionText} is an invalid cgroup version specifier`);
    const parts = cg.split('=');
    if (parts.length !== 2 || parts[1] === '') throw new JailerError(`Invalid format for cgroups: ${cg}`);
    const file = parts[0]!;
    if (!/^[a-z_0-9]+\.[a-z_0-9.]+$/.test(file)) throw new JailerError(`Cgroup invalid file: ${file}`);
    cgroups.push({ file, value: parts[1]! });
  }
  let fsize: string | undefined;
  let noFile = DEFAULT_NO_FILE;
  for (const rl of p.values.get('resource-limit') ?? []) {
    const eq = rl.indexOf('=');
    if (eq === -1) throw new JailerError(`Invalid format for resources limits: ${rl}`);
    const name = rl.slice(0, eq);
    const value = rl.slice(eq + 1);
    if (!/^\d+$/.test(value) || BigInt(value) > 18446744073709551615n) throw new JailerError(`Invalid limit value for resource: ${value}: invalid digit found in string`);
    if (name === 'fsize') fsize = value;
    else if (name === 'no-file') noFile = value;
    else throw new JailerError(`Invalid resource argument: ${name}`);
  }
  const netns = single(p, 'netns');
  if (netns !== undefined && !existsSync(netns)) {
    throw new JailerError(`Failed to open file ${netns}: No such file or directory (os error 2)`);
  }
  return {
    id,
    execFile,
    execName,
    chrootDir: join(base, execName, id, 'root'),
    uid,
    gid,
    newPidNs: p.flags.has('new-pid-ns'),
    daemonize: p.flags.has('daemonize'),
    // Validated above: 1 or 2 whenever a --cgroup is given; unused otherwise.
    cgroupVersion: version === 1 ? 1 : 2,
    parentCgroup: parent,
    cgroups,
    resourceLimits: { noFile, ...(fsize !== undefined ? { fsize } : {}) },
    extra: p.extra,
  };
}

function mknod(path: string, major: number, minor: number, uid: number, gid: number): void {
  try {
    execFileSync('mknod', ['-m', '0600', path, 'c', String(major), String(minor)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new JailerError(`Failed to create ${path.slice(path.indexOf('/dev/'))} via mknod inside the jail: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  chownSync(path, uid, gid);
}

/** Builds the jail on disk (Env::run up to the exec). */
export function buildJail(plan: JailPlan): void {
  mkdirSync(plan.chrootDir, { recursive: true });
  const inJail = join(plan.chrootDir, plan.execName);
  try {
    copyFileSync(plan.execFile, inJail);
    chmodSync(inJail, statSync(plan.execFile).mode & 0o7777);
  } catch (err) {
    throw new JailerError(`Failed to copy ${plan.execFile} to ${inJail}: ${osErrorText(err)}`);
  }
  for (const folder of ['', 'dev', 'dev/net', 'run']) {
    const path = join(plan.chrootDir, folder);
    mkdirSync(path, { recursive: true });
    chmodSync(path, 0o700);
    chownSync(path, plan.uid, plan.gid);
  }
  mknod(join(plan.chrootDir, 'dev/net/tun'), 10, 200, plan.uid, plan.gid);
  mknod(join(plan.chrootDir, 'dev/kvm'), 10, 232, plan.uid, plan.gid);
}

function firecrackerArgv(plan: JailPlan, startUs: number, startCpuUs: number): string[] {
  return ['--id', plan.id, '--start-time-us', String(startUs), '--start-time-cpu-us', String(startCpuUs), ...plan.extra];
}

export async function runJailer(argv: readonly string[]): Promise<number> {
  const startUs = Math.floor(performance.now() * 1000);
  let plan: JailPlan | 'help';
  try {
    plan = planJail(argv);
    if (plan !== 'help') {
      buildJail(plan);
      // The real jailer's order: rlimits, then cgroups, then the fork; Firecracker inherits both.
      applyResourceLimits(plan.resourceLimits);
      applyCgroups(plan.cgroupVersion, plan.parentCgroup, plan.id, plan.cgroups);
    }
  } catch (err) {
    if (err instanceof ArgError) {
      process.stderr.write(`Failed to parse arguments: ${err.message}\nError: ArgumentParsing(${JSON.stringify(err.message)})\n`);
      return JAILER_EXIT.argParsing;
    }
    if (err instanceof JailerError || err instanceof LimitError) {
      process.stderr.write(`thread 'main' panicked at src/jailer/src/main.rs:\nJailer error: ${err.message}\nnote: run with \`RUST_BACKTRACE=1\` environment variable to display a backtrace\n`);
      return JAILER_EXIT.panic;
    }
    throw err;
  }
  if (plan === 'help') {
    process.stdout.write('Jailer v1.10.1 (Flint emulator)\n\nAny arguments after the -- separator will be supplied to the jailed binary.\n');
    return JAILER_EXIT.ok;
  }
  const fcArgs = firecrackerArgv(plan, startUs, Math.floor(process.cpuUsage().user));
  // The real jailer clears its environment before exec; the emulator passes only what it needs itself.
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    FLINT_FC_EMU_ROOT: plan.chrootDir,
    FLINT_FC_EMU_UID: String(plan.uid),
    FLINT_FC_EMU_GID: String(plan.gid),
  };
  if (process.env['FLINT_FC_EMU_ACCEL'] !== undefined) env['FLINT_FC_EMU_ACCEL'] = process.env['FLINT_FC_EMU_ACCEL'];

  if (!plan.newPidNs && !plan.daemonize) {
    // "exec": the same process becomes Firecracker.
    Object.assign(process.env, env);
    process.chdir(plan.chrootDir);
    return runFirecracker(fcArgs);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const loader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
  const child = spawn(process.execPath, ['--import', loader, join(here, 'firecracker-child.ts'), ...fcArgs], {
    cwd: plan.chrootDir,
    env,
    stdio: plan.daemonize ? 'ignore' : 'inherit',
    detached: plan.daemonize,
  });
  await new Promise<void>((ok, fail) => {
    child.once('spawn', ok);
    child.once('error', fail);
  });
  if (!plan.newPidNs) {
    // --daemonize alone: the jailer itself would become Firecracker; wait for it.
    return new Promise((ok) => child.once('exit', (code) => ok(code ?? 1)));
  }
  const pidFile = join(plan.chrootDir, `${plan.execName}.pid`);
  const fd = openSync(pidFile, 'wx');
  writeSync(fd, String(child.pid));
  closeSync(fd);
  child.unref();
  return JAILER_EXIT.ok;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runJailer(process.argv.slice(2)).then(
    (code) => {
      // Explicit exit: after --new-pid-ns the forked Firecracker must not keep this process alive.
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`jailer emulator: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = JAILER_EXIT.panic;
    },
  );
}
