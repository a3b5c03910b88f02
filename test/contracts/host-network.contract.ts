/**
 * The behaviour every HostNetwork (daemon/vm/ports.ts) must have, as the
 * supervisor relies on it: a lease per VM with an address of the
 * network's subnet that no other live VM has, the VM's tagged tap, a MAC
 * that follows the address; detach idempotent; the sweep removing exactly
 * this instance's VMs that are not live. Each implementation's test file
 * calls `hostNetworkContract` with a factory for a fresh network of a
 * fresh instance id, with a bridge name of its own and a way to see from
 * outside the port whether a tap exists.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkConfig } from '../../src/config/types.ts';
import { tapName, vmId } from '../../src/core/ids.ts';
import { addressPool, inPool, parseAddress } from '../../src/core/ipam.ts';
import { macFromIpv4 } from '../../src/core/mac.ts';
import type { HostNetwork, NetworkLease } from '../../src/daemon/vm/ports.ts';

export interface NetworkHarness {
  readonly network: HostNetwork;
  readonly instanceId: string;
  /** The network to use: a bridge that only this harness touches. */
  readonly config: NetworkConfig;
  hasTap(name: string): boolean;
  close(): Promise<void>;
}

export function hostNetworkContract(name: string, make: (t: TestContext) => Promise<NetworkHarness | undefined>): void {
  const setup = async (t: TestContext): Promise<NetworkHarness | undefined> => {
    const h = await make(t);
    if (h === undefined) return undefined;
    t.after(() => h.close());
    await h.network.ensureNetwork(h.config);
    return h;
  };

  test(`${name}: a lease carries the VM's tap, an address of the subnet that is not the gateway, the gateway, DNS and hostname`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const id = vmId(h.instanceId, 1);
    const lease = await h.network.attach(id, 'flint-runner-1', h.config);
    assert.equal(lease.vmId, id);
    assert.equal(lease.tap, tapName(id));
    assert.ok(h.hasTap(lease.tap), 'the tap exists');
    const { ipv4 } = lease.guest;
    assert.equal(lease.guest.hostname, 'flint-runner-1');
    assert.deepEqual(lease.guest.dns, h.config.dns);
    assert.equal(ipv4.gateway, h.config.v4.address);
    assert.equal(ipv4.prefixLength, h.config.v4.prefixLength);
    assert.notEqual(ipv4.address, h.config.v4.address);
    const pool = addressPool(h.config.v4.address, h.config.v4.prefixLength, 4, h.config.name);
    const parsed = parseAddress(ipv4.address);
    assert.ok(parsed?.family === 4 && inPool(pool, parsed.value), `${ipv4.address} is a guest address of the subnet`);
    assert.equal(lease.mac, macFromIpv4(ipv4.address));
  });

  test(`${name}: live VMs never share an address, a tap or a MAC`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const leases: NetworkLease[] = [];
    for (let i = 1; i <= 4; i++) leases.push(await h.network.attach(vmId(h.instanceId, i), `h${i}`, h.config));
    const keys: Array<(l: NetworkLease) => string> = [(l) => l.guest.ipv4.address, (l) => l.tap, (l) => l.mac];
    for (const key of keys) {
      assert.equal(new Set(leases.map(key)).size, leases.length);
    }
  });

  test(`${name}: detach removes the tap, again is no error, and a VM never attached detaches quietly`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const id = vmId(h.instanceId, 5);
    const lease = await h.network.attach(id, 'h', h.config);
    await h.network.detach(id);
    await h.network.detach(id);
    await h.network.detach(vmId(h.instanceId, 6));
    assert.ok(!h.hasTap(lease.tap));
    assert.deepEqual(await h.network.sweep(new Set()), [], 'nothing is left for the sweep');
  });

  test(`${name}: the sweep removes this instance's VMs that are not live, keeps the live ones, and says what it removed`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const [dead, live] = [vmId(h.instanceId, 7), vmId(h.instanceId, 8)];
    const deadLease = await h.network.attach(dead, 'h', h.config);
    const liveLease = await h.network.attach(live, 'h', h.config);
    const removed = await h.network.sweep(new Set([live]));
    assert.ok(removed.some((r) => r.includes(dead)), `the report names ${dead}: ${removed.join(', ')}`);
    assert.ok(!removed.some((r) => r.includes(live)), 'the live VM is not reported');
    assert.ok(!h.hasTap(deadLease.tap));
    assert.ok(h.hasTap(liveLease.tap));
    const again = await h.network.attach(vmId(h.instanceId, 9), 'h', h.config);
    assert.notEqual(again.guest.ipv4.address, liveLease.guest.ipv4.address, 'the live VM keeps its address');
  });
}
