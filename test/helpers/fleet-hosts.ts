/**
 * Several Flint hosts, each in a network namespace of its own, for fleet
 * end-to-end tests. The test's (private) namespace is the hosts' LAN: a
 * router between them and "the internet" of test/helpers/topology.ts.
 *
 *   guests ── br-fleetN 198.19.(211+2N).1/24 ┐ host N's namespace
 *             (Flint's bridge, NAT)          └ eth0 198.19.(201+2N).2/30 ═══ veth ═══ fleet-hN 198.19.(201+2N).1/30 ┐ the test's namespace
 *                                                                                  forwarding, webhook forwarder on up-0 ┘
 *                                                                                     ═══ veth ═══ the internet (simulator)
 *
 * Each host namespace belongs to a holder process (`unshare -n cat`, which
 * ends with its stdin, so with the test process whatever kills it); Flint
 * runs in it through `nsenter`. Killing a host kills every process in its
 * namespace, holder included: the namespace goes, and with it the host's
 * bridge, taps, nft tables and its end of the veth — as a machine that
 * loses power. Nothing is named in /run/netns. Addresses come from
 * 198.18.0.0/15 (RFC 2544, benchmarking) and exist only in the test's
 * namespaces; the internet learns a route back to the hosts' links.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostCgroupLayout, vmCgroupDirs } from '../../src/adapters/hypervisor/vm-cgroup.ts';
import type { Scope } from './prereq.ts';
import { inPrivateNetns, run } from './netns.ts';
import { exited } from './child-flint.ts';



export interface HostNamespace {
  readonly index: number;
  /** The holder's pid: `nsenter -t <pid> -n` runs in the host's namespace. */
  readonly pid: number;
  /** The host's address on its link to the LAN: where its Flint listens. */
  readonly address: string;
  /** The LAN (the test's namespace) side of the link: the host's default gateway. */
  readonly gateway: string;
  /** The host's guest bridge address in CIDR form (its Flint's network `v4`). */
  readonly bridgeV4: string;
  /** Every process in the namespace now (the holder included). */
  processes(): number[];
  /** SIGKILL to every process in the namespace until none is left: the namespace and everything in it go. Idempotent. */
  kill(): Promise<void>;
}

/** The network namespace's identity of a process (`net:[inode]`), or undefined once it is gone. */
function netnsOf(pid: number | string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

function processesIn(ns: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (netnsOf(entry) === ns) pids.push(Number(entry));
  }
  return pids;
}

/** Makes host namespaces; see `hostNamespaces`. */
export type HostNamespaceFactory = (index: number, internet: { readonly pid: number; readonly hostAddress: string }) => Promise<HostNamespace>;

/**
 * Checks that this process runs in a private network namespace — before the
 * topology gives it a default route, which the check counts as a sign of
 * the machine's own namespace — and returns the factory of host namespaces.
 */
export async function hostNamespaces(t: Scope): Promise<HostNamespaceFactory> {
  if (!(await inPrivateNetns())) {
    throw new Error('refusing to build host namespaces in the machine\'s network namespace: run the test through scripts/test.mjs (as root it uses `unshare -n`)');
  }
  return (index, internet) => hostNamespace(t, index, internet);
}

/**
 * Host namespace number `index` (0…9), linked to the test's namespace and
 * routed to the internet whose simulator runs as `internet.pid`. The test's
 * namespace forwards between them. Removed after the test.
 */
async function hostNamespace(t: Scope, index: number, internet: { readonly pid: number; readonly hostAddress: string }): Promise<HostNamespace> {
  if (!Number.isInteger(index) || index < 0 || index > 9) throw new RangeError(`host index ${index}: 0…9`);
  const link = 201 + 2 * index;
  const gateway = `198.19.${link}.1`;
  const address = `198.19.${link}.2`;
  const bridgeV4 = `198.19.${211 + 2 * index}.1/24`;
  const outside = `fleet-h${index}`;

  const holder: ChildProcess = spawn('unshare', ['-n', '--', 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    holder.once('spawn', resolve);
    holder.once('error', reject);
  });
  const pid = holder.pid;
  if (pid === undefined) throw new Error('the namespace holder has no pid');
  // unshare execs cat once the namespace is made: wait until the pid's namespace is no longer ours.
  const ours = netnsOf('self');
  const deadline = Date.now() + 10_000;
  while (netnsOf(pid) === ours) {
    if (Date.now() > deadline) throw new Error('the namespace holder never left the test\'s namespace');
    await new Promise((r) => setTimeout(r, 10));
  }
  const ns = netnsOf(pid);
  if (ns === undefined) throw new Error('the namespace holder ended at once');

  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => (killing ??= (async () => {
    holder.stdin?.destroy();
    for (let round = 0; ; round++) {
      const left = processesIn(ns);
      if (left.length === 0) break;
      if (round > 200) throw new Error(`processes stay in host namespace ${index}: ${left.join(' ')}`);
      for (const p of left) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone meanwhile */ }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await exited(holder);
    // Its end of the veth went with the namespace; this matters only when setup stopped half way.
    await run('ip', ['link', 'del', outside]).catch(() => undefined);
  })());
  t.after(kill);

  const inside = (...args: string[]): Promise<void> => run('nsenter', ['-t', String(pid), '-n', 'ip', ...args]);
  // The LAN routes between the hosts and the internet (this namespace's own setting: the test's namespace is private).
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  await run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  await run('ip', ['addr', 'add', `${gateway}/30`, 'dev', outside]);
  await run('ip', ['link', 'set', outside, 'up']);
  await inside('link', 'set', 'lo', 'up');
  await inside('addr', 'add', `${address}/30`, 'dev', 'eth0');
  await inside('link', 'set', 'eth0', 'up');
  await inside('route', 'add', 'default', 'via', gateway, 'dev', 'eth0');
  // The internet answers the host (its Flint, and its guests behind its NAT) through the LAN.
  await run('nsenter', ['-t', String(internet.pid), '-n', 'ip', 'route', 'replace', `198.19.${link}.0/30`, 'via', internet.hostAddress]);

  return { index, pid, address, gateway, bridgeV4, processes: () => processesIn(ns), kill };
}

/**
 * Removes the cgroups of a killed host's VMs (QEMU made `<cgroup>/flint/<vmId>`
 * for each; a Flint that is killed never removes them). Only directories
 * named after `instanceId`'s VMs, and only empty ones (rmdir).
 */
export async function removeVmCgroupsOf(instanceId: string): Promise<void> {
  const layout = await hostCgroupLayout();
  if (layout === undefined) return;
  const probe = vmCgroupDirs(layout, `${instanceId}-00000`);
  for (const example of probe) {
    const parent = example.slice(0, example.lastIndexOf('/'));
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.startsWith(`${instanceId}-`))) {
      try { rmdirSync(`${parent}/${name}`); } catch { /* in use or gone */ }
    }
  }
}
