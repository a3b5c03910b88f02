/**
 * The environment a VMM process (QEMU and its wrapper shell, the jailer and
 * Firecracker) starts with: PATH and nothing else. Flint's own environment
 * may hold secrets (an operator's `{env: VARIABLE}` for the webhook secret
 * or the private key, a systemd EnvironmentFile); a VMM runs next to a
 * hostile guest, possibly under another uid, and its /proc/<pid>/environ
 * must not carry them.
 *
 *   spawn(binary, args, { env: vmmEnvironment(process.env) });
 */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function vmmEnvironment(from: Readonly<Record<string, string | undefined>>, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { PATH: from['PATH'] ?? DEFAULT_PATH, ...extra };
}
