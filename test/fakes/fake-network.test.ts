import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostNetworkContract } from '../contracts/host-network.contract.ts';
import { FakeNetwork } from './fake-network.ts';
import { testNetwork } from './rig.ts';

hostNetworkContract('fake network', async () => {
  const network = new FakeNetwork('fk1');
  return {
    network, instanceId: 'fk1', config: testNetwork,
    hasTap: (name) => [...network.leases.values()].some((l) => l.tap === name),
    close: async () => {},
  };
});

test('fake network: a detached VM\'s address is handed out again, so a host runs more VMs over time than its subnet holds at once', async () => {
  const network = new FakeNetwork('fk2');
  const seen = new Set<string>();
  for (let i = 1; i <= 600; i++) {
    const id = `fk2-${String(i).padStart(5, '0')}`;
    const lease = await network.attach(id, id, testNetwork);
    seen.add(lease.guest.ipv4.address);
    await network.detach(id);
  }
  assert.deepEqual([...seen], [`${testNetwork.v4.address.split('.').slice(0, 3).join('.')}.2`], 'one VM at a time: always the first free address');
  assert.equal(network.leases.size, 0);
});
