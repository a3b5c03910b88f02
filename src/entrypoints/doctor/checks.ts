/**
 * `flint doctor`'s checks: every host prerequisite of `flint serve` for one
 * configuration, each with what was found and how to fix it.
 *
 * A check's status says what it means for `flint serve`:
 *   ok    fine
 *   warn  Flint runs, but worse or less safely (software emulation, a
 *         world-readable secret, little disk, a skewed clock)
 *   fail  Flint would not start, or could start no VM of some runner
 *         definition, or could not talk to GitHub
 *   skip  not applicable to this configuration, or not checkable yet
 *
 * Every contact with the host or GitHub goes through DoctorProbes, so the
 * rules are tested against a temporary configuration, fake /proc and /sys
 * text and the GitHub simulator; probes.ts holds the real ones.
 */
import { createHmac } from 'node:crypto';
import declared from '../../prerequisites.json' with { type: 'json' };
import type { FlintConfig, PostgresStoreConfig } from '../../config/types.ts';
import { checkUsable, type HostProbe } from '../../config/usable.ts';
import type { ConfigProblem, PathSegment } from '../../config/problems.ts';
import { formatPath } from '../../config/problems.ts';
import type { ConfigLocator } from '../../config/locate.ts';
import { secretFileWarning, inlineSecrets } from '../../config/file-mode.ts';
import { catalogue, isFlintError } from '../../core/errors/index.ts';
import type { CommandRunner } from '../../adapters/network/command.ts';
import type { AppWebhookConfig } from '../../adapters/github/client.ts';
import type { FleetHostRecord } from '../../daemon/ports/fleet.ts';
import { withoutPassword } from '../../core/url-password.ts';
// The migrations' list only (it loads no driver): the schema version this Flint knows.
import { MIGRATIONS } from '../../adapters/store/postgres/migrations.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found. Never a secret. */
  readonly detail: string;
  /** What to do about it (empty when ok). */
  readonly hint: string;
}

export interface KvmFacts {
  /** /dev/kvm exists and may be opened read-write. */
  readonly device: boolean;
  /** When a kernel was available to try: whether KVM actually ran it (some hosts expose /dev/kvm but reject stock guests). */
  readonly runs?: { readonly ok: boolean; readonly reason: string };
}

/** The GitHub calls doctor makes (a subset of the GitHub client). */
export interface DoctorGitHub {
  installationId(): Promise<number>;
  runnerGroupId(name: string): Promise<number>;
  webhookConfig(): Promise<AppWebhookConfig>;
  close(): void;
}

/** What doctor reads of a PostgreSQL store (probes.ts connects, reads, disconnects). */
export interface PostgresFacts {
  /** `server_version`, e.g. "16.4 (Debian 16.4-1)". */
  readonly serverVersion: string;
  /** The newest version in `schema_migrations`; undefined when Flint has not made its tables yet. */
  readonly schemaVersion: number | undefined;
  /** The fleet's hosts with their latest heartbeat; undefined before the fleet's table exists. */
  readonly hosts: readonly FleetHostRecord[] | undefined;
}

export interface DoctorProbes {
  /** Files: exists, readable, executable, readable by the jailer's uid/gid (config/host-probe.ts). */
  readonly files: HostProbe;
  /** Runs programs without a shell (ip, nft, `--version`). */
  readonly commands: CommandRunner;
  /** The text of a file such as /proc/mounts, or undefined when it cannot be read. */
  readText(path: string): string | undefined;
  /** Permission bits of a file, or undefined when it cannot be examined. */
  fileMode(path: string): number | undefined;
  /** Bytes free to an unprivileged user on the file system holding `path` (or its nearest existing parent). */
  freeBytes(path: string): number | undefined;
  kvm(kernel: string | undefined): Promise<KvmFacts>;
  readonly now: () => number;
  readonly fetch: typeof fetch;
  github(config: FlintConfig): DoctorGitHub;
  /**
   * Connects to the store as Flint would (the password given apart from the
   * URL), reads its facts and disconnects. Rejects as the driver does: a
   * server error carries its SQLSTATE in `code`, a socket error Node's code.
   */
  postgres(store: PostgresStoreConfig): Promise<PostgresFacts>;
}

export interface DoctorInput {
  readonly config: FlintConfig;
  readonly locate: ConfigLocator;
  readonly runnerPaths: readonly (readonly PathSegment[])[];
  /** The parsed YAML document (to see which secrets the file holds inline). */
  readonly raw: unknown;
}

export interface DoctorOptions {
  /** Skip the checks that call GitHub or the webhook endpoint. */
  readonly offline?: boolean;
}

/** A host silent for longer than this has stopped (three heartbeats missed; daemon/fleet.ts beats every 10 s). */
export const HEARTBEAT_SILENT_MS = 30_000;

/** Clock skew beyond which GitHub rejects App JWTs (it accepts `iat` up to 60 s in the future). */
export const SKEW_FAIL_MS = 60_000;
export const SKEW_WARN_MS = 5_000;
/** Free space below which VMs' scratch disks and logs are about to fill the disk. */
export const DISK_FAIL_BYTES = 512 * 1024 * 1024;
/** Controllers the jailer writes limits to (`cpu.max`, `memory.max`). */
export const CGROUP_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

const CREDENTIALS = 'github: credentials in config';

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail, hint: '' });
const result = (name: string, status: CheckStatus, detail: string, hint: string): CheckResult => ({ name, status, detail, hint });

/** "apt-get install PACKAGE" for a program Flint declares in src/prerequisites.json. */
export function installHint(program: string): string {
  const entry = declared.prerequisites.find((e) => e.program === program);
  return entry === undefined ? `install ${program}` : `apt-get install ${entry.package}`;
}

export async function runDoctor(input: DoctorInput, probes: DoctorProbes, options: DoctorOptions = {}): Promise<CheckResult[]> {
  const { config } = input;
  const knownSchema = Math.max(0, ...MIGRATIONS.map((m) => m.version));
  const results: CheckResult[] = [];
  results.push(configFileCheck(config.source, input.raw, probes));
  if (config.github.privateKeyFile !== undefined) results.push(keyFileCheck(config.github.privateKeyFile, probes));
  results.push(...await programChecks(config, probes));
  const files = await hypervisorChecks(input, probes);
  results.push(...files);
  results.push(await kvmCheck(config, probes));
  results.push(cgroupCheck(config, probes));
  results.push(...await bridgeChecks(config, probes));
  results.push(await nftablesCheck(probes));
  results.push(...diskChecks(config, probes));
  if (config.store?.postgres !== undefined) results.push(...await postgresChecks(config.store.postgres, config.instanceId, probes, knownSchema));
  if (options.offline === true) {
    results.push(result('github: clock', 'skip', 'not checked (--offline)', ''), result('github: app', 'skip', 'not checked (--offline)', ''), result('webhook', 'skip', 'not checked (--offline)', ''));
  } else {
    const clock = await clockCheck(config, probes);
    results.push(clock);
    if (files.some((r) => r.name === CREDENTIALS && r.status === 'fail')) {
      results.push(result('github: app installation', 'skip', 'not checked: the credentials in the configuration are not usable (above)', ''));
    } else if (clock.status === 'fail' && clock.detail.startsWith('cannot reach')) {
      results.push(result('github: app installation', 'skip', `not checked: ${config.github.apiUrl} cannot be reached (above)`, ''));
    } else {
      results.push(...await githubChecks(config, probes));
    }
    results.push(scaleSetsOnly(config) ? result('webhook', 'skip', NO_WEBHOOK, '') : await webhookCheck(config, probes));
  }
  return results;
}

function configFileCheck(file: string, raw: unknown, probes: DoctorProbes): CheckResult {
  const name = 'config file';
  const mode = probes.fileMode(file);
  if (mode === undefined) return result(name, 'skip', `cannot examine ${file}`, '');
  const secrets = inlineSecrets(raw);
  const w = secretFileWarning(file, mode, secrets);
  if (w !== undefined) return result(name, 'warn', w.message, w.hint);
  return ok(name, secrets.length === 0 ? `${file} holds no secret inline` : `${file} (mode ${(mode & 0o777).toString(8)}) is readable by its owner only`);
}

function keyFileCheck(file: string, probes: DoctorProbes): CheckResult {
  const name = 'private key file';
  const mode = probes.fileMode(file);
  if (mode === undefined) return result(name, 'skip', `cannot examine ${file}`, '');
  const w = secretFileWarning(file, mode, ['the App\'s private key']);
  return w === undefined ? ok(name, `${file} is readable by its owner only`) : result(name, 'warn', w.message, `chmod 600 ${file} (owned by the user Flint runs as)`);
}

async function which(probes: DoctorProbes, program: string): Promise<string | undefined> {
  try {
    const { stdout } = await probes.commands.run('sh', ['-c', 'command -v "$1"', 'sh', program]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function programChecks(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult[]> {
  const programs = ['ip', 'nft', 'mkfs.ext4', 'dumpe2fs', 'fsck.ext4', 'setpriv'];
  // QEMU runners name their program (a path is checked with the runner's files).
  for (const r of config.runners) if (r.hypervisor === 'qemu' && r.qemu !== undefined && !r.qemu.includes('/')) programs.push(r.qemu);
  const out: CheckResult[] = [];
  for (const p of [...new Set(programs)]) {
    const at = await which(probes, p);
    out.push(at === undefined ? result(`program ${p}`, 'fail', `${p} is not on PATH (nor in /usr/sbin, /sbin)`, installHint(p)) : ok(`program ${p}`, at));
  }
  return out;
}

/** The first line of `program --version`, or why it could not be run. */
async function versionOf(probes: DoctorProbes, program: string): Promise<{ ok: boolean; text: string }> {
  try {
    const { stdout, stderr } = await probes.commands.run(program, ['--version']);
    return { ok: true, text: (stdout.trim() || stderr.trim()).split('\n')[0] ?? '' };
  } catch (err) {
    return { ok: false, text: err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err) };
  }
}

/**
 * Per runner definition: kernel, initrd, rootfs (readable by the
 * definition's uid/gid, which the jailer and QEMU alike run the VMM as),
 * firecracker and jailer (with versions) or the QEMU program, through the
 * same rules as `flint config check`.
 */
async function hypervisorChecks(input: DoctorInput, probes: DoctorProbes): Promise<CheckResult[]> {
  const { config } = input;
  const problems = checkUsable(config, input, probes.files);
  const out: CheckResult[] = [];
  const github = problems.filter((p) => p.path.startsWith('github.'));
  out.push(github.length === 0 ? ok(CREDENTIALS, `App ${config.github.appId}, private key parses`) : fromProblems(CREDENTIALS, github));
  const seen = new Set<string>();
  for (const [i, r] of config.runners.entries()) {
    const base = formatPath(input.runnerPaths[i] ?? ['runners', i]);
    const vmm: (readonly [string, string | undefined])[] = r.hypervisor === 'firecracker' ? [['jailer', r.jailer], ['firecracker', r.firecracker]] : [['qemu', r.qemu]];
    const files: (readonly [string, string | undefined])[] = [['kernel', r.kernel], ['initrd', r.initrd], ['filesystem', r.filesystem], ...vmm];
    for (const [key, path] of files) {
      if (path === undefined || path === '' || (key === 'qemu' && !path.includes('/'))) continue;
      const name = `runner ${r.name}: ${key}`;
      const mine = problems.filter((p) => p.path === `${base}.${key}`);
      if (mine.length > 0) {
        out.push(fromProblems(name, mine));
        continue;
      }
      let detail = path;
      if ((key === 'kernel' || key === 'initrd' || key === 'filesystem') && r.uid !== 0) detail += ` (readable by uid ${r.uid} / gid ${r.gid})`;
      if ((key === 'firecracker' || key === 'jailer') && !seen.has(path)) {
        seen.add(path);
        const v = await versionOf(probes, path);
        if (!v.ok) {
          out.push(result(name, 'fail', `${path} does not run: ${v.text}`, 'install the matching Firecracker release (firecracker and jailer of the same version, from its release archive)'));
          continue;
        }
        detail += `: ${v.text}`;
      }
      out.push(ok(name, detail));
    }
  }
  return out;
}

function fromProblems(name: string, problems: readonly ConfigProblem[]): CheckResult {
  return result(name, 'fail', problems.map((p) => p.message).join('; '), [...new Set(problems.map((p) => p.hint))].join('; '));
}

async function kvmCheck(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult> {
  const name = 'kvm';
  const needsKvm = config.runners.some((r) => r.hypervisor === 'firecracker');
  // A kernel to try under KVM: the first QEMU runner's that exists (the probe boots it to a panic, under a second).
  const kernel = config.runners.find((r) => r.hypervisor === 'qemu' && probes.files.check(r.kernel, { kind: 'read' }) === undefined)?.kernel;
  const facts = await probes.kvm(kernel);
  const tcgNote = 'QEMU runners fall back to software emulation (TCG): boots take seconds and jobs run several times slower';
  if (!facts.device) {
    return result(name, needsKvm ? 'fail' : 'warn', `/dev/kvm is missing or not usable by this user${needsKvm ? '; Firecracker needs it' : `; ${tcgNote}`}`,
      'enable virtualisation in the firmware (VT-x/AMD-V) and load kvm_intel or kvm_amd (`modprobe kvm_intel`); run Flint as root or in group kvm' + (needsKvm ? ', or set `hypervisor: qemu` on the runners' : ''));
  }
  if (facts.runs !== undefined && !facts.runs.ok) {
    return result(name, needsKvm ? 'fail' : 'warn', `/dev/kvm exists but KVM did not run ${kernel ?? 'the kernel'}: ${facts.runs.reason}; only software emulation works${needsKvm ? '' : `. ${tcgNote}`}`,
      'this host (often a nested or restricted VM) accepts only special guest kernels under KVM: run Flint on bare metal or a host with full nested virtualisation' + (needsKvm ? ', or use `hypervisor: qemu`' : ''));
  }
  return ok(name, facts.runs === undefined ? '/dev/kvm is usable (no QEMU runner kernel to try a boot with)' : `/dev/kvm is usable and booted ${kernel ?? 'the kernel'}`);
}

function cgroupCheck(config: FlintConfig, probes: DoctorProbes): CheckResult {
  const name = 'cgroup v2';
  const needed = config.runners.some((r) => r.hypervisor === 'firecracker');
  const bad = needed ? 'fail' : 'warn';
  const mounts = probes.readText('/proc/mounts') ?? '';
  const mount = mounts.split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  if (mount === undefined) {
    return result(name, needed ? 'fail' : 'skip', 'no cgroup2 file system is mounted' + (needed ? '; the jailer limits each VM\'s CPU and memory through cgroup v2' : ''),
      needed ? 'boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1, the default since Debian 11)' : '');
  }
  const controllers = (probes.readText(`${mount}/cgroup.controllers`) ?? '').trim().split(/\s+/).filter((c) => c !== '');
  const missing = CGROUP_CONTROLLERS.filter((c) => !controllers.includes(c));
  if (missing.length > 0) {
    // A hybrid layout mounts cgroup2 beside v1 hierarchies, which keep the controllers.
    const hybrid = mount !== '/sys/fs/cgroup';
    const v1 = mounts.split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'cgroup');
    if (CGROUP_CONTROLLERS.every((c) => v1.some((f) => (f[3] ?? '').split(',').includes(c)))) {
      // The driver then passes the same limits as cgroup v1 files (docs/firecracker.md, "Limits").
      return result(name, 'warn', `${mount} lacks the controller(s) ${missing.join(', ')}; the host mounts cgroup v1 beside v2 (hybrid), and the jailer will put each VM's limits in the v1 hierarchies`,
        'works as is; to move to cgroup v2 boot with systemd.unified_cgroup_hierarchy=1 (the default since Debian 11)');
    }
    return result(name, bad, `${mount} lacks the controller(s) ${missing.join(', ')} (has: ${controllers.join(' ') || 'none'})${hybrid ? '; the host mounts cgroup v1 beside v2 (hybrid), and v1 holds them' : ''}`,
      hybrid
        ? 'boot with the unified hierarchy only: kernel command line systemd.unified_cgroup_hierarchy=1 (the default since Debian 11), then reboot; the jailer writes cpu.max, memory.max and pids.max'
        : 'enable them in the root cgroup\'s cgroup.subtree_control (run Flint as root); the jailer writes cpu.max, memory.max and pids.max');
  }
  return ok(name, `${mount}: ${CGROUP_CONTROLLERS.join(', ')} available`);
}

async function bridgeChecks(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const n of config.networks) {
    const name = `bridge ${n.name}`;
    const want = `${n.v4.address}/${n.v4.prefixLength}`;
    let addrs: { family: string; local: string; prefixlen: number }[];
    try {
      const { stdout } = await probes.commands.run('ip', ['-j', 'addr', 'show', 'dev', n.name]);
      const parsed = JSON.parse(stdout) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[]; // ip -j's documented output
      addrs = parsed[0]?.addr_info ?? [];
    } catch {
      out.push(n.create
        ? ok(name, `missing; Flint creates it with ${want} and NAT (create: true)`)
        : result(name, 'fail', `bridge ${n.name} does not exist`, `create it: ip link add ${n.name} type bridge && ip addr add ${want} dev ${n.name} && ip link set ${n.name} up (and NAT for guests), or set \`create: true\` on the network (docs/networking.md)`));
      continue;
    }
    const has = addrs.some((a) => a.family === 'inet' && a.local === n.v4.address && a.prefixlen === n.v4.prefixLength);
    const v6ok = n.v6 === undefined || addrs.some((a) => a.family === 'inet6' && a.local === n.v6?.address && a.prefixlen === n.v6.prefixLength);
    if (!has || !v6ok) {
      const found = addrs.map((a) => `${a.local}/${a.prefixlen}`).join(', ') || 'no address';
      out.push(result(name, 'fail', `${n.name} exists with ${found}; the configuration expects ${want}${n.v6 === undefined ? '' : ` and ${n.v6.address}/${n.v6.prefixLength}`}`,
        `ip addr add ${want} dev ${n.name}, or correct \`networks[].v4\` to the bridge's address`));
    } else {
      out.push(ok(name, `${n.name} has ${want}${n.v6 === undefined ? '' : ` and ${n.v6.address}/${n.v6.prefixLength}`}`));
    }
  }
  return out;
}

async function nftablesCheck(probes: DoctorProbes): Promise<CheckResult> {
  try {
    await probes.commands.run('nft', ['list', 'tables']);
    return ok('nftables', 'nft can read the ruleset');
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
    return result('nftables', 'fail', `nft list tables failed: ${why}`, `${installHint('nft')}; run Flint as root (or with CAP_NET_ADMIN); load nf_tables (modprobe nf_tables)`);
  }
}

function diskChecks(config: FlintConfig, probes: DoctorProbes): CheckResult[] {
  const biggest = Math.max(0, ...config.runners.map((r) => r.diskSize));
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
  // The jail base is <stateDir>/jail (adapters/hypervisor/index.ts), on the same file system unless mounted apart.
  const dirs = [['state dir', config.stateDir], ['jail dir', `${config.stateDir}/jail`]] as const;
  return dirs.map(([what, dir]) => {
    const name = `disk: ${what}`;
    const free = probes.freeBytes(dir);
    if (free === undefined) return result(name, 'warn', `cannot examine ${dir} or any parent`, `create ${dir}, or correct \`stateDir\``);
    if (free < DISK_FAIL_BYTES) return result(name, 'fail', `${gib(free)} free under ${dir}`, 'free space there or move `stateDir`: VMs\' scratch disks, console logs and the database live there');
    if (free < biggest) {
      return result(name, 'warn', `${gib(free)} free under ${dir}, less than one scratch disk (${gib(biggest)}) if a job fills it`,
        'scratch disks are sparse, so VMs start; but a job that writes its whole disk fails: free space or lower `diskSize`');
    }
    return ok(name, `${gib(free)} free under ${dir}`);
  });
}

async function clockCheck(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult> {
  const name = 'github: clock';
  const sent = probes.now();
  let date: string | null;
  try {
    const res = await probes.fetch(config.github.apiUrl, { method: 'GET', headers: { accept: 'application/vnd.github+json' }, signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    date = res.headers.get('date');
  } catch (err) {
    return result(name, 'fail', `cannot reach ${config.github.apiUrl}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`,
      'check DNS, the proxy and the firewall towards the API (`github.apiUrl`)');
  }
  const at = date === null ? NaN : Date.parse(date);
  if (Number.isNaN(at)) return result(name, 'skip', `${config.github.apiUrl} sent no Date header`, '');
  // The header has 1 s resolution and the request took some time: compare with the middle of the request, allow 1 s.
  const local = (sent + probes.now()) / 2;
  const skew = local - at;
  const abs = Math.max(0, Math.abs(skew) - 1000);
  const text = `this host's clock is ${(Math.abs(skew) / 1000).toFixed(1)} s ${skew >= 0 ? 'ahead of' : 'behind'} GitHub's`;
  const hint = 'synchronise the clock (systemd-timesyncd or chrony: `timedatectl set-ntp true`)';
  if (abs > SKEW_FAIL_MS) return result(name, 'fail', `${text}: GitHub rejects the App's tokens beyond 60 s`, hint);
  if (abs > SKEW_WARN_MS) return result(name, 'warn', text, hint);
  return ok(name, text);
}

const NO_WEBHOOK = 'not needed: every runner definition takes its jobs from a scale set\'s message queue, not from webhooks';

/**
 * True when no runner definition is in webhook mode: jobs then come from
 * scale sets' message queues, and the App's webhook URL and secret (and
 * Flint's /webhook endpoint) play no part.
 */
function scaleSetsOnly(config: Pick<FlintConfig, 'runners'>): boolean {
  return config.runners.length > 0 && config.runners.every((r) => r.scaleSet !== undefined);
}

async function githubChecks(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult[]> {
  const gh = probes.github(config);
  const fromError = (name: string, err: unknown): CheckResult =>
    isFlintError(err) ? result(name, 'fail', `${err.code}: ${err.message}`, err.hint) : result(name, 'fail', err instanceof Error ? err.message : String(err), 'see the message');
  try {
    let installation: number;
    try {
      installation = await gh.installationId();
    } catch (err) {
      return [fromError('github: app installation', err)];
    }
    const out = [ok('github: app installation', `App ${config.github.appId} is installed on ${config.github.organization} (installation ${installation}) with the permissions Flint needs`)];
    // A scale set's runners join the scale set's group (by default the definition's).
    for (const group of [...new Set(config.runners.map((r) => r.scaleSet?.runnerGroup ?? r.group))]) {
      try {
        out.push(ok(`github: runner group ${group}`, `id ${await gh.runnerGroupId(group)}`));
      } catch (err) {
        out.push(fromError(`github: runner group ${group}`, err));
      }
    }
    if (scaleSetsOnly(config)) {
      out.push(result('github: webhook URL', 'skip', NO_WEBHOOK, ''));
    } else {
      try {
        out.push(webhookUrlCheck(config, await gh.webhookConfig()));
      } catch (err) {
        out.push(fromError('github: webhook URL', err));
      }
    }
    return out;
  } finally {
    gh.close();
  }
}

/**
 * Where GitHub sends the App's webhooks, against where Flint listens. None
 * of these stops Flint: without webhooks the missed-jobs scan still finds
 * queued jobs, a minute late. So they warn.
 */
export function webhookUrlCheck(config: Pick<FlintConfig, 'address' | 'tls'>, hook: AppWebhookConfig): CheckResult {
  const name = 'github: webhook URL';
  const late = 'GitHub\'s deliveries cannot reach Flint; queued jobs are found only by the missed-jobs scan, up to a minute late';
  const where = 'the App\'s settings page → General → Webhook';
  if (hook.url === '') return result(name, 'warn', `the App has no webhook URL: ${late}`, `set Webhook URL to ${publicWebhookHint(config)} and Webhook secret to \`github.webhookSecret\` (${where})`);
  let url: URL;
  try {
    url = new URL(hook.url);
  } catch {
    return result(name, 'warn', `the App's webhook URL "${hook.url}" is not a URL: ${late}`, `set it to ${publicWebhookHint(config)} (${where})`);
  }
  const shown = `${url.origin}${url.pathname}`; // never a query string or credentials someone put in the URL
  if (url.pathname !== '/webhook' && !url.pathname.startsWith('/webhook/')) {
    return result(name, 'warn', `GitHub sends to ${shown}, but Flint answers only /webhook (and paths under it): ${late}`, `end the URL in /webhook (${where})`);
  }
  if (!hook.hasSecret) return result(name, 'warn', `the App's webhook has no secret: Flint refuses unsigned deliveries, so ${late}`, `set Webhook secret to \`github.webhookSecret\` (${where})`);
  const i = config.address.lastIndexOf(':');
  const host = config.address.slice(0, i);
  const acme = config.tls === undefined && config.address.slice(i + 1) === '443';
  if (acme && (url.protocol !== 'https:' || url.hostname !== host || (url.port !== '' && url.port !== '443'))) {
    return result(name, 'warn', `GitHub sends to ${shown}, but Flint serves HTTPS for ${host} (address ${config.address}; its certificate names ${host} only)`, `set Webhook URL to https://${host}/webhook (${where})`);
  }
  if (hook.insecureSsl) return result(name, 'warn', `GitHub sends to ${shown} without checking its TLS certificate (SSL verification disabled)`, `enable SSL verification (${where})`);
  return ok(name, `GitHub sends to ${shown}, signed`);
}

function publicWebhookHint(config: Pick<FlintConfig, 'address' | 'tls'>): string {
  const i = config.address.lastIndexOf(':');
  const host = config.address.slice(0, i);
  return config.tls === undefined && config.address.slice(i + 1) === '443' ? `https://${host}/webhook` : 'https://<this host\'s public name>/webhook (your proxy in front of Flint)';
}

/** Where this host reaches its own webhook endpoint: `address`, with a wildcard host replaced by loopback. */
export function localWebhookUrl(config: Pick<FlintConfig, 'address' | 'tls'>): string {
  const i = config.address.lastIndexOf(':');
  let host = config.address.slice(0, i);
  const port = Number(config.address.slice(i + 1));
  if (host === '' || host === '0.0.0.0' || host === '[::]' || host === '::') host = '127.0.0.1';
  const https = config.tls !== undefined || port === 443;
  return `${https ? 'https' : 'http'}://${host}${(https && port === 443) ? '' : `:${port}`}/webhook`;
}

/**
 * Sends a signed `ping` (the event GitHub sends when a webhook is set up)
 * to the configured address. A 200 proves a Flint listens there and shares
 * the webhook secret; it says nothing of the path from GitHub to this host
 * (NAT, firewall, DNS), which only GitHub's "Recent deliveries" page shows.
 */
async function webhookCheck(config: FlintConfig, probes: DoctorProbes): Promise<CheckResult> {
  const name = 'webhook';
  const url = localWebhookUrl(config);
  const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 0, hook: { type: 'App', events: ['workflow_job'] } });
  const secret = config.github.webhookSecrets[0] ?? '';
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const beyond = 'This checks from this host only; GitHub\'s view is on the App\'s settings page → Advanced → Recent deliveries.';
  let status: number;
  try {
    const res = await probes.fetch(url, {
      method: 'POST', body, signal: AbortSignal.timeout(10_000),
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': `flint-doctor-${probes.now()}`, 'x-hub-signature-256': signature, 'user-agent': 'flint-doctor' },
    });
    await res.arrayBuffer();
    status = res.status;
  } catch (err) {
    const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    // Nothing listening is the normal state before `flint serve` runs: it is what serve will start.
    return result(name, 'skip', `nothing answered at ${url} (${why}); not checked`, `start \`flint serve\` and run \`flint doctor\` again to check the endpoint. ${beyond}`);
  }
  if (status === 200) return ok(name, `${url} took a signed ping (the webhook secret matches). ${beyond}`);
  if (status === 401) return result(name, 'fail', `${url} refused the ping's signature: the server there has another webhook secret`, 'make `github.webhookSecret` the secret set on the App (and restart Flint)');
  return result(name, 'warn', `${url} answered the ping with HTTP ${status}; is it Flint?`, `check what listens on ${config.address}. ${beyond}`);
}

/** SQLSTATEs of a refused login: wrong password, or no such role / not allowed by pg_hba.conf. */
const AUTH_STATES = new Set(['28P01', '28000']);

/**
 * The PostgreSQL store: can this host log in, which server is it, is its
 * schema one this Flint can run on, and which hosts of the fleet have
 * heartbeat there. The password is never in a result: the URL is shown
 * without it and the driver's messages do not carry it.
 */
async function postgresChecks(store: PostgresStoreConfig, instanceId: string, probes: DoctorProbes, known: number): Promise<CheckResult[]> {
  const name = 'store: postgres';
  const url = withoutPassword(store.url);
  let facts: PostgresFacts;
  try {
    facts = await probes.postgres(store);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code; // pg's DatabaseError and Node's system errors both carry `code`
    const why = err instanceof Error ? (err.message || (err as { code?: string }).code || err.name) : String(err);
    if (typeof code === 'string' && AUTH_STATES.has(code)) {
      return [result(name, 'fail', `${url} refused the login: ${why}`,
        `check the user in store.postgres.url and the password (passwordFile or passwordEnv, as \`flint serve\` gets it), and that pg_hba.conf lets this host in as that user`)];
    }
    if (code === '3D000') return [result(name, 'fail', `${url}: ${why}`, 'create the database (`createdb -O USER NAME`) or correct the database in store.postgres.url')];
    return [result(name, 'fail', `FLINT_ERR_STORE_UNREACHABLE: cannot reach the PostgreSQL store at ${url}: ${why}`, catalogue.FLINT_ERR_STORE_UNREACHABLE.hint)];
  }
  const server = `PostgreSQL ${facts.serverVersion} at ${url}`;
  const out: CheckResult[] = [];
  const v = facts.schemaVersion;
  if (v === undefined) out.push(ok(name, `${server}: no Flint tables yet; \`flint serve\` creates them (schema version ${known})`));
  else if (v > known) {
    out.push(result(name, 'fail', `FLINT_ERR_STORE_SCHEMA_NEWER: ${server}: schema version ${v}, newer than this Flint knows (${known})`, catalogue.FLINT_ERR_STORE_SCHEMA_NEWER.hint));
  } else if (v < known) out.push(ok(name, `${server}: schema version ${v}; \`flint serve\` migrates it to ${known} at start`));
  else out.push(ok(name, `${server}: schema version ${v} (current)`));
  if (facts.hosts !== undefined) out.push(fleetCheck(facts.hosts, instanceId, probes.now()));
  return out;
}

function fleetCheck(hosts: readonly FleetHostRecord[], instanceId: string, now: number): CheckResult {
  const name = 'store: fleet';
  if (hosts.length === 0) return ok(name, 'no host has heartbeat yet');
  const age = (ms: number): string => (ms < 120_000 ? `${Math.max(0, Math.round(ms / 1000))} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 3_600_000)} h`);
  const shown = hosts.map((h) => {
    const since = now - h.lastHeartbeatAt;
    const self = h.id === instanceId ? ', this configuration\'s instanceId' : '';
    return `${h.id} (heartbeat ${age(since)} ago${since > HEARTBEAT_SILENT_MS ? ', silent: stopped or gone' : ''}${self})`;
  });
  const live = hosts.filter((h) => now - h.lastHeartbeatAt <= HEARTBEAT_SILENT_MS).length;
  return ok(name, `${hosts.length} host(s) on record, ${live} heartbeating: ${shown.join(', ')}`);
}
