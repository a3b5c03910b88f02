/**
 * An in-memory HostNetwork: hands out addresses from the network's subnet,
 * remembers leases and "taps", and can be told to fail. Tests assert on
 * `leases` to prove nothing leaked. Held to the same contract as the Linux
 * network (test/contracts/host-network.contract.ts).
 */
import { tapName, parseVmId } from '../../src/core/ids.ts';
import { macFromIpv4 } from '../../src/core/mac.ts';
import type { NetworkConfig } from '../../src/config/types.ts';
import type { HostNetwork, NetworkLease } from '../../src/daemon/vm/ports.ts';

export class FakeNetwork implements HostNetwork {
  readonly leases = new Map<string, NetworkLease>();
  readonly ensured: string[] = [];
  failAttach = false;
  /** Makes attach slow (a busy `ip`), to expose races with teardown. */
  attachDelayMs = 0;
  private readonly instanceId: string;
  /** Host numbers in use, per network (its first three octets): a detached VM's address is handed out again, as the real network's leases are. */
  private readonly used = new Map<string, Set<number>>();

  constructor(instanceId: string) {
    this.instanceId = instanceId;
  }

  async ensureNetwork(net: NetworkConfig): Promise<void> {
    this.ensured.push(net.name);
  }

  async attach(vmId: string, hostname: string, net: NetworkConfig): Promise<NetworkLease> {
    if (this.attachDelayMs > 0) await new Promise((r) => setTimeout(r, this.attachDelayMs));
    if (this.failAttach) throw new Error('fake network: no address left');
    const base = net.v4.address.split('.').slice(0, 3).join('.');
    let used = this.used.get(base);
    if (used === undefined) this.used.set(base, used = new Set());
    let host = 2;
    while (used.has(host)) host++;
    if (host > 254) throw new Error('fake network: no address left');
    used.add(host);
    const address = `${base}.${host}`;
    // The MAC follows the address, as the real network's does (core/mac.ts).
    const lease: NetworkLease = {
      vmId, tap: tapName(vmId), mac: macFromIpv4(address),
      guest: { hostname, ipv4: { address, prefixLength: net.v4.prefixLength, gateway: net.v4.address }, dns: net.dns },
    };
    this.leases.set(vmId, lease);
    return lease;
  }

  async detach(vmId: string): Promise<void> {
    this.release(vmId);
  }

  private release(vmId: string): void {
    const address = this.leases.get(vmId)?.guest.ipv4.address;
    this.leases.delete(vmId);
    if (address === undefined) return;
    const dot = address.lastIndexOf('.');
    this.used.get(address.slice(0, dot))?.delete(Number(address.slice(dot + 1)));
  }

  async sweep(live: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const id of [...this.leases.keys()]) {
      if (parseVmId(id)?.instanceId === this.instanceId && !live.has(id)) {
        this.release(id);
        removed.push(id);
      }
    }
    return removed;
  }
}
