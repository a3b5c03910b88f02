/** The QEMU and Firecracker drivers against the HypervisorDriver contract (its crash-recovery paths; no guest boots here). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hypervisorDriverContract } from '../../../test/contracts/hypervisor-driver.contract.ts';
import { createFirecrackerDriver } from './firecracker.ts';
import { createQemuDriver } from './qemu.ts';

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

hypervisorDriverContract('QEMU driver', async () => ({ driver: createQemuDriver({ logger: quiet }), instanceId: 'dq1', close: async () => {} }));

hypervisorDriverContract('Firecracker driver', async () => {
  const jails = mkdtempSync(join(tmpdir(), 'flint-jails-'));
  return {
    driver: createFirecrackerDriver({ chrootBaseDir: jails, logger: quiet }), instanceId: 'df1',
    close: async () => rmSync(jails, { recursive: true, force: true }),
  };
});
