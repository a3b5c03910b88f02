import { vmFilesContract } from '../contracts/vm-files.contract.ts';
import { MemoryVmFiles } from './memory-vm-files.ts';

vmFilesContract('memory VM files', async () => {
  const files = new MemoryVmFiles();
  const root = '/state';
  await files.makeDir(root, 0o755);
  return {
    files, root, read: (p) => files.read(p), modeOf: (p) => files.modeOf(p), touch: (p, ms) => files.touch(p, ms), close: async () => {},
  };
});
