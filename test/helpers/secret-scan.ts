/**
 * Looks for secrets where none may be: every process's command line, the
 * environment of a process tree, texts (logs, status answers) and the files
 * of a directory that other users may read. Each finding says exactly
 * where (pid and what it runs, a path and its mode, a named text) with a
 * snippet around the match in which the secret itself is masked, so a
 * failing test never prints the secret it found.
 *
 *   const needles = secretNeedles({ privateKeyPem, webhookSecrets: [s], installationTokens, jitConfigs });
 *   const found = [...scanCommandLines(needles), ...scanEnvirons(processTree(child.pid), needles), ...scanText('log', log, needles)];
 *   assert.deepEqual(found.map(describeFinding), []);
 */
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** One value to look for, under a name that may be printed. */
export interface Needle {
  readonly name: string;
  readonly value: string;
}

export interface Finding {
  /** The needle's name (e.g. "installation token 2"). */
  readonly secret: string;
  /** Where: "cmdline of pid 123 (qemu-system-x86_64)", "environ of pid …", "file /x (mode 0644)", or the text's name. */
  readonly where: string;
  /** Up to 40 characters either side, the secret replaced by «name». */
  readonly snippet: string;
}

export function describeFinding(f: Finding): string {
  return `${f.secret} in ${f.where}: …${f.snippet}…`;
}

/** Shorter values are not searched: they would match by chance. */
const MIN_NEEDLE = 8;
/** A chunk of a long secret, enough to be distinctive, short enough to survive re-wrapping. */
const CHUNK = 40;

function pemBody(pem: string): string[] {
  return pem.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('-----'));
}

/** Distinctive chunks of a long value: its start, middle and end. */
function chunks(value: string): string[] {
  if (value.length <= CHUNK * 2) return [value];
  const mid = Math.floor(value.length / 2) - CHUNK / 2;
  return [value.slice(0, CHUNK), value.slice(mid, mid + CHUNK), value.slice(-CHUNK)];
}

/** The JIT config's decoded layers (a JSON of base64 files, each a JSON): their secret parts. */
function jitParts(encoded: string): string[] {
  try {
    const files = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Record<string, unknown>; // the JIT config layout (tools/github-sim/jit-config.ts)
    const out: string[] = [];
    for (const [name, b64] of Object.entries(files)) {
      if (typeof b64 !== 'string') continue;
      out.push(...chunks(b64).map((c) => `${name}:${c}`));
      const inner = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Record<string, unknown>;
      if (name === '.credentials') {
        const data = inner['data'] as { clientId?: unknown } | undefined;
        if (typeof data?.clientId === 'string') out.push(`clientId:${data.clientId}`);
      }
      if (name === '.credentials_rsaparams' && typeof inner['d'] === 'string') out.push(...chunks(inner['d']).map((c) => `rsa d:${c}`));
    }
    return out;
  } catch {
    return [];
  }
}

export interface Secrets {
  readonly privateKeyPem: string;
  readonly webhookSecrets: readonly string[];
  readonly installationTokens: readonly string[];
  readonly jitConfigs: readonly string[];
  /** Anything else, by name (e.g. a status page token). */
  readonly others?: Readonly<Record<string, string>>;
}

/** What to look for: each secret whole, and chunks of the long ones (a PEM body line, parts of a JIT config and of its decoded content). */
export function secretNeedles(s: Secrets): Needle[] {
  const out: Needle[] = [];
  const add = (name: string, value: string): void => {
    if (value.length >= MIN_NEEDLE && !out.some((n) => n.value === value)) out.push({ name, value });
  };
  const body = pemBody(s.privateKeyPem);
  add('private key (PEM body)', body.join('\n'));
  add('private key (PEM body, JSON-escaped)', body.join('\\n'));
  // Lines from the start, middle and end of the key: a copy re-wrapped or cut still shows one of them.
  for (const i of [1, Math.floor(body.length / 2), body.length - 2]) {
    const line = body[i];
    if (line !== undefined) add(`private key (line ${i + 1} of its body)`, line.slice(0, CHUNK));
  }
  s.webhookSecrets.forEach((w, i) => add(`webhook secret ${i + 1}`, w));
  s.installationTokens.forEach((t, i) => add(`installation token ${i + 1}`, t));
  s.jitConfigs.forEach((j, i) => {
    add(`JIT config ${i + 1}`, j);
    chunks(j).forEach((c, k) => add(`JIT config ${i + 1} (chunk ${k + 1})`, c));
    for (const part of jitParts(j)) {
      const at = part.indexOf(':');
      add(`JIT config ${i + 1} (decoded ${part.slice(0, at)})`, part.slice(at + 1));
    }
  });
  for (const [name, value] of Object.entries(s.others ?? {})) add(name, value);
  return out;
}

/**
 * Up to 40 characters either side of a match, the secret replaced by its
 * name. The context may hold more of it (the lines next to a PEM line):
 * every other needle there is masked too, and so is any long run of
 * base64-like characters, so the snippet never prints a secret.
 */
function snippetAt(text: string, at: number, needle: Needle, all: readonly Needle[]): string {
  const mask = (s: string): string => {
    let out = s;
    for (const n of all) out = out.split(n.value).join(`«${n.name}»`);
    return out.replace(/[A-Za-z0-9+/=_-]{20,}/g, '«…»');
  };
  const before = mask(text.slice(Math.max(0, at - 40), at));
  const after = mask(text.slice(at + needle.value.length, at + needle.value.length + 40));
  // Control characters (NULs of a command line, binary files) as visible escapes.
  const clean = (s: string): string => Array.from(s, (c) => {
    const code = c.charCodeAt(0);
    if (code === 0) return ' ';
    return code < 0x20 || code >= 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : c;
  }).join('');
  return `${clean(before)}«${needle.name}»${clean(after)}`;
}

/** The needles found in `text`, one finding per needle (its first match). */
export function scanText(where: string, text: string, needles: readonly Needle[]): Finding[] {
  const out: Finding[] = [];
  for (const n of needles) {
    const at = text.indexOf(n.value);
    if (at >= 0) out.push({ secret: n.name, where, snippet: snippetAt(text, at, n, needles) });
  }
  return out;
}

function pids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return undefined; // the process ended meanwhile, or is not ours to read
  }
}

function comm(pid: number): string {
  return (readProc(pid, 'comm') ?? '?').trim();
}

/** The parent pid from /proc/<pid>/stat (the field after the parenthesised name, which may hold spaces). */
function ppidOf(pid: number): number | undefined {
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return undefined;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** `root` and every process descended from it, now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of pids()) {
    const ppid = ppidOf(pid);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() ?? root;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Every process's command line (`/proc/<pid>/cmdline`), as any local user may read it. */
export function scanCommandLines(needles: readonly Needle[]): Finding[] {
  return pids().flatMap((pid) => {
    const cmdline = readProc(pid, 'cmdline');
    return cmdline === undefined ? [] : scanText(`cmdline of pid ${pid} (${comm(pid)})`, cmdline, needles);
  });
}

/** The environment of each of `pidList` (`/proc/<pid>/environ`). */
export function scanEnvirons(pidList: readonly number[], needles: readonly Needle[]): Finding[] {
  return pidList.flatMap((pid) => {
    const env = readProc(pid, 'environ');
    return env === undefined ? [] : scanText(`environ of pid ${pid} (${comm(pid)})`, env, needles);
  });
}

/** A file other users may read: read for others, or for a group other than root's. */
export function readableByOthers(mode: number, gid: number): boolean {
  return (mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && gid !== 0);
}

/** Files read in pieces this large, overlapping by the longest needle, so a large file costs no large buffer. */
const PIECE = 4 * 1024 * 1024;

function scanFile(path: string, where: string, needles: readonly Needle[]): Finding[] {
  const overlap = Math.max(...needles.map((n) => n.value.length), 1);
  const found = new Map<string, Finding>();
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(PIECE + overlap);
    let carry = 0;
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, carry, PIECE, pos);
      if (n === 0) break;
      pos += n;
      const len = carry + n;
      const text = buf.toString('latin1', 0, len);
      for (const f of scanText(where, text, needles.filter((x) => !found.has(x.name)))) found.set(f.secret, f);
      // The tail is kept for the next piece: a secret across the boundary is still found.
      carry = Math.min(overlap, len);
      buf.copyWithin(0, len - carry, len);
    }
  } finally {
    closeSync(fd);
  }
  return [...found.values()];
}

export interface FileScan {
  readonly findings: Finding[];
  /** Paths of the regular files scanned (those other users may read, or all with `all`). */
  readonly scanned: string[];
}

/**
 * The regular files under `dir` that other users may read (or every one,
 * with `all`), searched for the needles. Symbolic links are not followed;
 * a file that vanishes while scanned is skipped.
 */
export function scanTree(dir: string, needles: readonly Needle[], opts: { all?: boolean } = {}): FileScan {
  const findings: Finding[] = [];
  const scanned: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(d, name);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (st.isFile() && (opts.all === true || readableByOthers(st.mode, st.gid))) {
        try {
          findings.push(...scanFile(path, `file ${path} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, gid ${st.gid})`, needles));
          scanned.push(path);
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  walk(dir);
  return { findings, scanned };
}
