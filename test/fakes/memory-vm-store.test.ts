import { vmStoreContract } from '../contracts/vm-store.contract.ts';
import { MemoryVmStore } from './memory-vm-store.ts';

vmStoreContract('memory VM store', async () => ({ store: new MemoryVmStore(), close: async () => {} }));
