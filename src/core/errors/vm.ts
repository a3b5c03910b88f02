import type { CatalogueEntry } from './entry.ts';

/** Error codes of the vm area. Keys are stable; never rename or reuse one. */
export const vmErrors = {
  // --- VM lifecycle (state machine, supervisor, console logs, interactive mode) ---
  FLINT_ERR_VM_ILLEGAL_TRANSITION: {
    title: 'A VM was asked to change to a state its current state does not allow',
    hint: 'This is a bug in Flint: keep the log lines around it (they name the VM, both states and the trigger) and report them.',
  },
  FLINT_ERR_VM_STATE_CONFLICT: {
    title: 'The stored state of a VM changed under Flint',
    hint: 'Two Flint processes are probably using the same state directory and instance id. Give each Flint its own `stateDir` or `instanceId`, then restart it.',
  },
  FLINT_ERR_VM_PREPARE_FAILED: {
    title: 'Flint could not prepare the host side of a VM (disks, network, work directory)',
    hint: 'Read the cause in the message; check free space in the state directory and that the runner\'s bridge exists. Nothing of the VM is left behind.',
  },
  FLINT_ERR_VM_START_FAILED: {
    title: 'The hypervisor did not start the VM',
    hint: 'Check the runner\'s kernel, initrd and filesystem paths and the hypervisor binaries; the VM\'s console log under `<stateDir>/consoles/` and the log lines say more.',
  },
  FLINT_ERR_VM_BOOT_TIMEOUT: {
    title: 'The guest did not report that it booted in time',
    hint: 'Read the VM\'s console log under `<stateDir>/consoles/`: the image must print `FLINT-MARKER booted`. Raise the boot timeout if the host is slow.',
  },
  FLINT_ERR_VM_UNKNOWN_RUNNER: {
    title: 'No runner definition has this name',
    hint: 'Use one of the `name`s under `runners:` or `static_runners:` in the configuration file (`flint config check` lists them).',
  },
  FLINT_ERR_VM_UNKNOWN_NETWORK: {
    title: 'A runner refers to a network that is not configured',
    hint: 'Set the runner\'s `network` to the `name` of one entry under `networks:` in the configuration file.',
  },
  FLINT_ERR_VM_SUPERVISOR_CLOSED: {
    title: 'The VM supervisor is shutting down and starts no more VMs',
    hint: 'Nothing to do: Flint is stopping. Start Flint again to run more jobs.',
  },
  // --- Firecracker driver (jailer, API, jail files) ---
  FLINT_ERR_VM_IMAGE_NOT_READABLE: {
    title: 'A shared image (kernel, initrd or base rootfs) is not readable by the jailer\'s uid/gid',
    hint: 'Make the file readable by the runner\'s jailer uid/gid (default 123/100) without changing its owner, e.g. `chmod o+r <file>`; Flint never changes a shared image\'s permissions.',
  },
  FLINT_ERR_VM_JAILER_FAILED: {
    title: 'Firecracker\'s jailer refused to start the VM',
    hint: 'Read the jailer\'s own message (quoted in the error): check the runner\'s `jailer` and `firecracker` paths (the binary\'s name must contain "firecracker"), cgroup v2 with the cpu and memory controllers, and docs/firecracker.md.',
  },
  FLINT_ERR_VM_FIRECRACKER_API: {
    title: 'Firecracker rejected or did not answer an API request',
    hint: 'The message quotes Firecracker\'s fault_message. Check the runner\'s cpuCount (1–32, even with smt), memorySize, kernel and image files and the tap device; the VM\'s console log may say more.',
  },
  // --- Runner launches (scheduler: back-off per definition) ---
  FLINT_ERR_VM_NO_RUNNER: {
    title: 'A runner VM ended before its runner started',
    hint: 'Read the VM\'s console log under `<stateDir>/consoles/`: the guest must start the runner and print `FLINT-MARKER runner-started`. Check the definition\'s kernel, initrd, kernelArgs and filesystem (`flint run --interactive NAME` boots one VM on the terminal).',
  },
  FLINT_ERR_RUNNER_UNHEALTHY: {
    title: 'A runner definition\'s launches keep failing; Flint retries it slowly',
    hint: 'Fix the cause named by the last error (its code and hint are in the same log line), e.g. the kernel or image path, or the App\'s permissions. Flint probes the definition every few minutes and serves its queue again as soon as one runner comes online: a fix to the files themselves needs no restart; a change to the configuration file needs one.',
  },
} as const satisfies Record<string, CatalogueEntry>;
