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
