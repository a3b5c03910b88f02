/**
 * "Does anything on the bridge already answer for this address?" — asked
 * before an address is handed to a guest, so that a device Flint did not
 * start (a veth of a container, a physical NIC's neighbours, another VM
 * manager's guest, a static host) never shares its address with a guest.
 *
 * Two sources, no extra packages:
 *   1. the host's neighbour table of the bridge (`ip -j neigh show dev BR`)
 *      and the bridge's own addresses: a reachable or static entry is taken;
 *      an old (STALE/DELAY/PROBE) entry is doubtful;
 *   2. an active probe of a doubtful address, or of any address when the
 *      bridge has ports that are not Flint taps: the old entry is flushed,
 *      one UDP datagram (port 9, discard) makes the kernel send an ARP
 *      request (IPv6: a neighbour solicitation), and the neighbour entry is
 *      read again for a short window. Something that answers is in use.
 *
 * When every port of the bridge is a Flint tap, the probe is skipped: every
 * Flint guest's address has a permanent neighbour entry from the moment its
 * tap exists (linux-network.ts), so the table alone is complete.
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { canonicalAddress } from '../../core/ipam.ts';
import type { CommandRunner } from './command.ts';

/** Flint tap names (src/core/ids.ts): f<instance>-<suffix>. */
const FLINT_TAP = /^f[a-z0-9]{1,6}-[a-z0-9]{1,6}$/;

export interface BridgeOccupancy {
  /** Canonical addresses something answers for: reachable or static neighbour entries, and the bridge's own addresses. */
  readonly taken: ReadonlySet<string>;
  /** Canonical addresses with an old neighbour entry: they answered once and may still. */
  readonly doubtful: ReadonlySet<string>;
  /** Names of bridge ports that are not Flint taps (veths, NICs, other taps). */
  readonly foreignPorts: readonly string[];
}

export interface AddressProbe {
  occupancy(bridge: string): Promise<BridgeOccupancy>;
  /** The link-layer address of whatever answers for `address` on `bridge` within the window, or undefined. */
  answerer(bridge: string, address: string): Promise<string | undefined>;
}

export interface AddressProbeDeps {
  readonly commands: CommandRunner;
  /** Total time to wait for an answer (default 250 ms; an answer on a local bridge takes well under 1 ms). */
  readonly windowMs?: number;
  /** Waits; injected so tests can drive it. Default: a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Sends one datagram to `address` (to make the kernel resolve it). Default: UDP to port 9. */
  readonly poke?: (address: string) => Promise<void>;
}

interface Neighbour {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

const TAKEN_STATES = new Set(['REACHABLE', 'PERMANENT', 'NOARP']);
const DOUBTFUL_STATES = new Set(['STALE', 'DELAY', 'PROBE']);
/** The states of entries the kernel learned (all but permanent, noarp and none), as `ip neigh … nud` spells them. */
const LEARNED_STATES = ['reachable', 'stale', 'delay', 'probe', 'failed', 'incomplete'];

function udpPoke(address: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    // A failure (no route, EHOSTUNREACH from an earlier failed resolution) only means no answer will come.
    socket.on('error', () => { socket.close(); resolve(); });
    socket.send(Buffer.from('flint'), 9, address, () => { socket.close(); resolve(); });
  });
}

export function createAddressProbe(deps: AddressProbeDeps): AddressProbe {
  const { commands } = deps;
  const windowMs = deps.windowMs ?? 250;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  const poke = deps.poke ?? udpPoke;
  const json = async <T>(args: readonly string[]): Promise<T[]> => {
    const { stdout } = await commands.run('ip', args);
    // `ip -j` prints one JSON array (empty output when there is nothing to show).
    return stdout.trim() === '' ? [] : (JSON.parse(stdout) as T[]);
  };

  async function neighbour(bridge: string, address: string): Promise<Neighbour | undefined> {
    const entries = await json<Neighbour>(['-j', 'neigh', 'show', 'to', address, 'dev', bridge]);
    return entries.find((e) => canonicalAddress(e.dst ?? '') === address);
  }

  return {
    async occupancy(bridge) {
      const [neigh, ports, addrs] = await Promise.all([
        json<Neighbour>(['-j', 'neigh', 'show', 'dev', bridge]),
        json<{ ifname?: string }>(['-j', 'link', 'show', 'master', bridge]),
        json<{ addr_info?: Array<{ local?: string }> }>(['-j', 'addr', 'show', 'dev', bridge]),
      ]);
      const taken = new Set<string>();
      const doubtful = new Set<string>();
      for (const e of neigh) {
        const dst = canonicalAddress(e.dst ?? '');
        if (dst === undefined || e.lladdr === undefined) continue;
        const states = e.state ?? [];
        if (states.some((s) => TAKEN_STATES.has(s))) taken.add(dst);
        else if (states.some((s) => DOUBTFUL_STATES.has(s))) doubtful.add(dst);
      }
      for (const a of addrs.flatMap((l) => l.addr_info ?? [])) {
        const local = canonicalAddress(a.local ?? '');
        if (local !== undefined) taken.add(local);
      }
      const foreignPorts = ports.map((p) => p.ifname ?? '').filter((n) => n !== '' && !FLINT_TAP.test(n));
      return { taken, doubtful, foreignPorts };
    },

    async answerer(bridge, address) {
      // Flush forgets a learned (never a permanent) entry, so the kernel
      // asks afresh instead of trusting an old answer or waiting out the
      // STALE → DELAY → PROBE timers (seconds).
      // (`ip neigh flush` without a nud filter would remove permanent entries too.)
      await commands.run('ip', ['neigh', 'flush', 'to', address, 'dev', bridge, ...LEARNED_STATES.flatMap((s) => ['nud', s])]).catch(() => undefined);
      await poke(address);
      // Short steps first: the answer on a local bridge is usually there at once.
      let waited = 0;
      for (let step = 5; waited < windowMs; step *= 2) {
        const ms = Math.min(step, windowMs - waited);
        await sleep(ms);
        waited += ms;
        const e = await neighbour(bridge, address);
        const states = e?.state ?? [];
        if (e?.lladdr !== undefined && !states.includes('FAILED') && !states.includes('INCOMPLETE')) return e.lladdr;
        if (states.includes('FAILED')) return undefined;
      }
      return undefined;
    },
  };
}
