import { hypervisorDriverContract } from '../contracts/hypervisor-driver.contract.ts';
import { FakeDriver } from './fake-driver.ts';

hypervisorDriverContract('fake driver', async () => ({
  driver: new FakeDriver({ bootMs: 10 }), instanceId: 'fd1', close: async () => {},
}));
