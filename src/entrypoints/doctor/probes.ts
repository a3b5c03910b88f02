/** The real DoctorProbes: this host's files, programs, /proc, /sys, KVM, clock and GitHub. */
import { statSync, statfsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { nodeHostProbe } from '../../config/host-probe.ts';
import type { FlintConfig } from '../../config/types.ts';
import { systemCommandRunner } from '../../adapters/network/command.ts';
import { createGitHubClient } from '../../adapters/github/client.ts';
import { kvmDeviceUsable, probeKvm } from '../../adapters/hypervisor/qemu-host.ts';
import type { DoctorProbes } from './checks.ts';

export function hostDoctorProbes(): DoctorProbes {
  return {
    files: nodeHostProbe,
    commands: systemCommandRunner({ timeoutMs: 15_000 }),
    readText(path) {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    fileMode(path) {
      try {
        return statSync(path).mode;
      } catch {
        return undefined;
      }
    },
    freeBytes(path) {
      // The state dir may not exist yet: Flint makes it; its file system is the nearest existing parent's.
      for (let p = path; ; p = dirname(p)) {
        try {
          const s = statfsSync(p);
          return s.bavail * s.bsize;
        } catch {
          if (dirname(p) === p) return undefined;
        }
      }
    },
    async kvm(kernel) {
      const device = await kvmDeviceUsable();
      if (!device || kernel === undefined) return { device };
      return { device, runs: await probeKvm(kernel, { timeoutMs: 10_000 }) };
    },
    now: Date.now,
    fetch: globalThis.fetch,
    // One attempt per call, short timeouts: a doctor reports, it does not wait out an outage.
    github: (config: FlintConfig) => createGitHubClient({ github: config.github, retries: 0, requestTimeoutMs: 10_000, maxRateLimitRetries: 0 }),
  };
}
