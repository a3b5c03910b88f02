/** Per-VM disks: the scratch disk and the config drive (see provisioner.ts). */
export { createDiskProvisioner, SCRATCH_FILE, CONFIG_FILE, TEMPLATES_DIR } from './provisioner.ts';
export type { DiskProvisionerDeps, LocalDiskProvisioner, DiskLogger } from './provisioner.ts';
export { configDriveImage, encodeEnvFile, writeConfigDrive } from './config-drive.ts';
export type { ScratchStrategy } from './scratch.ts';
