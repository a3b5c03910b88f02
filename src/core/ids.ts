/**
 * Names of the things Flint creates, all carrying the instance tag so that
 * a sweeper touches only what this Flint instance made (and never what a
 * second Flint on the same host made).
 *
 *   instance id   [a-z0-9]{1,6}                     e.g. "h7k2"
 *   VM id         <instance>-<suffix>, suffix [a-z0-9]{1,6}, e.g. "h7k2-0001a"
 *   tap device    f<instance>-<suffix>  (≤ 14 characters; Linux allows 15)
 *   runner name   flint-<vm id>
 */

const INSTANCE = /^[a-z0-9]{1,6}$/;
const SUFFIX = /^[a-z0-9]{1,6}$/;

export function isInstanceId(s: string): boolean {
  return INSTANCE.test(s);
}

/** The VM id for the n-th VM of an instance (n ≥ 0); base36, zero-padded to 5. */
export function vmId(instanceId: string, n: number): string {
  if (!INSTANCE.test(instanceId)) throw new RangeError(`bad instance id: ${instanceId}`);
  if (!Number.isSafeInteger(n) || n < 0 || n >= 36 ** 6) throw new RangeError(`VM sequence out of range: ${n}`);
  return `${instanceId}-${n.toString(36).padStart(5, '0')}`;
}

export function parseVmId(id: string): { instanceId: string; suffix: string } | undefined {
  const dash = id.indexOf('-');
  if (dash === -1) return undefined;
  const instanceId = id.slice(0, dash);
  const suffix = id.slice(dash + 1);
  return INSTANCE.test(instanceId) && SUFFIX.test(suffix) ? { instanceId, suffix } : undefined;
}

export function tapName(id: string): string {
  const p = parseVmId(id);
  if (!p) throw new RangeError(`bad VM id: ${id}`);
  return `f${p.instanceId}-${p.suffix}`;
}

/** The prefix every tap of an instance starts with. */
export function tapPrefix(instanceId: string): string {
  return `f${instanceId}-`;
}

export function vmIdFromTap(tap: string, instanceId: string): string | undefined {
  const prefix = tapPrefix(instanceId);
  if (!tap.startsWith(prefix)) return undefined;
  const id = `${instanceId}-${tap.slice(prefix.length)}`;
  return parseVmId(id) ? id : undefined;
}

const RUNNER_PREFIX = 'flint-';

export function runnerName(id: string): string {
  return `${RUNNER_PREFIX}${id}`;
}

/**
 * The VM id behind a runner name, when the name is one Flint gives
 * (`flint-<vm id>`); undefined for any other runner. GitHub reports which
 * runner took a job only by this name, so this is how a job finds its VM.
 */
export function vmIdFromRunnerName(name: string): string | undefined {
  if (!name.startsWith(RUNNER_PREFIX)) return undefined;
  const id = name.slice(RUNNER_PREFIX.length);
  return parseVmId(id) ? id : undefined;
}
