/**
 * DiskProvisioner: the scratch disk and the config drive of one VM, both in
 * the VM's work directory, both owned by the VM's uid/gid.
 *
 *   <workDir>/scratch.ext4   sparse ext4 of diskSize, mode 0600 (vdb, read-write)
 *   <workDir>/config.tar     ustar config drive, mode 0400 (vdc, read-only)
 *
 * `prepare` either returns both or leaves neither behind; `remove` is
 * idempotent and safe on a directory a crash left half-made.
 */
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DiskProvisioner, VmDisks } from '../../daemon/vm/ports.ts';
import { FlintError, isFlintError } from '../../core/errors/index.ts';
import { systemCommandRunner } from '../network/command.ts';
import type { CommandRunner } from '../network/command.ts';
import { writeConfigDrive } from './config-drive.ts';
import { checkScratchSize, cloneScratch, mkfsScratch, scratchTemplates } from './scratch.ts';
import type { ScratchStrategy } from './scratch.ts';

export const SCRATCH_FILE = 'scratch.ext4';
export const CONFIG_FILE = 'config.tar';
export const TEMPLATES_DIR = 'disk-templates';

/** The subset of a pino logger this adapter uses. */
export interface DiskLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface DiskProvisionerDeps {
  /** Flint's state directory; scratch templates are cached in `<stateDir>/disk-templates`. */
  readonly stateDir: string;
  /** Overrides the template cache directory. */
  readonly templatesDir?: string;
  /** Default "clone" (measured faster, see docs/disks.md). */
  readonly strategy?: ScratchStrategy;
  readonly commands?: CommandRunner;
  readonly log?: DiskLogger;
}

export interface LocalDiskProvisioner extends DiskProvisioner {
  /** Makes the template of this size now (e.g. at start-up, so that the first VM does not pay for it). */
  warm(sizeBytes: number): Promise<void>;
}

export function createDiskProvisioner(deps: DiskProvisionerDeps): LocalDiskProvisioner {
  const commands = deps.commands ?? systemCommandRunner();
  const strategy = deps.strategy ?? 'clone';
  const templates = scratchTemplates(commands, deps.templatesDir ?? join(deps.stateDir, TEMPLATES_DIR), () => randomBytes(6).toString('hex'));

  async function makeScratch(path: string, sizeBytes: number): Promise<void> {
    if (strategy === 'mkfs') return mkfsScratch(commands, path, sizeBytes);
    try {
      await cloneScratch(commands, await templates.get(sizeBytes), path);
    } catch (err) {
      // The template could not be made or copied (deleted under us, disk
      // full, no cp): this VM still gets a disk the slower way.
      deps.log?.warn({ err: err instanceof Error ? err.message : String(err), path }, 'scratch template unusable, formatting the disk directly');
      await mkfsScratch(commands, path, sizeBytes);
    }
  }

  return {
    async prepare(vmId, workDir, sizeBytes, config, owner): Promise<VmDisks> {
      const disks = { scratch: join(workDir, SCRATCH_FILE), config: join(workDir, CONFIG_FILE) };
      try {
        checkScratchSize(sizeBytes);
        await mkdir(workDir, { recursive: true, mode: 0o700 });
        // Both at once; allSettled, not all: the cleanup below must not run
        // while the other half is still writing its file.
        const results = await Promise.allSettled([
          (async () => {
            await makeScratch(disks.scratch, sizeBytes);
            await chown(disks.scratch, owner.uid, owner.gid);
            await chmod(disks.scratch, 0o600);
          })(),
          writeConfigDrive(disks.config, config, owner),
        ]);
        for (const r of results) if (r.status === 'rejected') throw r.reason;
        return disks;
      } catch (err) {
        // Best effort: the original error is the one worth reporting.
        await Promise.all([rm(disks.scratch, { force: true }), rm(disks.config, { force: true })]).catch(() => undefined);
        if (isFlintError(err)) throw err;
        // The message names files and causes; config values never reach it.
        const why = err instanceof Error ? err.message : String(err);
        throw new FlintError('FLINT_ERR_DISK_PREPARE_FAILED', `VM ${vmId}: could not create its disks in ${workDir}: ${why}`, { cause: err, details: { vmId } });
      }
    },

    async remove(_vmId, workDir) {
      await Promise.all([SCRATCH_FILE, CONFIG_FILE].map((f) => rm(join(workDir, f), { force: true }).catch((err: unknown) => {
        // A work directory that is not a directory holds no disks either.
        if (!(err instanceof Error && 'code' in err && err.code === 'ENOTDIR')) throw err;
      })));
    },

    async warm(sizeBytes) {
      if (strategy === 'clone') await templates.get(sizeBytes);
    },
  };
}
