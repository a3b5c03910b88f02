/** The real DoctorProbes: this host's files, programs, /proc, /sys, KVM, clock and GitHub. */
import { statSync, statfsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { nodeHostProbe } from '../../config/host-probe.ts';
import type { FlintConfig } from '../../config/types.ts';
import { systemCommandRunner } from '../../adapters/network/command.ts';
import { createGitHubClient } from '../../adapters/github/client.ts';
import { kvmDeviceUsable, probeKvm } from '../../adapters/hypervisor/qemu-host.ts';
import { openPostgresPool } from '../../adapters/store/postgres/pool.ts';
import { createPostgresFleet } from '../../adapters/store/postgres/fleet.ts';
import type { PostgresStoreConfig } from '../../config/types.ts';
import type { DoctorProbes, PostgresFacts } from './checks.ts';

/**
 * Logs in to the store as `flint serve` would (same pool settings, the
 * password apart from the URL) on one connection, reads the server's
 * version, the schema's version and the fleet's hosts, and disconnects.
 * Reads only: doctor never migrates.
 */
export async function readPostgresFacts(store: PostgresStoreConfig, connectTimeoutMs = 10_000): Promise<PostgresFacts> {
  const pool = openPostgresPool({ url: store.url, ...(store.password === undefined ? {} : { password: store.password }), maxConnections: 1, connectTimeoutMs });
  try {
    const version = await pool.query<{ server_version: string }>('SHOW server_version');
    // to_regclass follows the connection's search_path, as Flint's own queries do.
    const tables = await pool.query<{ migrations: boolean; hosts: boolean }>(
      "SELECT to_regclass('schema_migrations') IS NOT NULL AS migrations, to_regclass('fleet_hosts') IS NOT NULL AS hosts");
    const has = tables.rows[0];
    const schema = has?.migrations === true ? (await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? undefined : undefined;
    return {
      serverVersion: version.rows[0]?.server_version ?? 'of unknown version',
      schemaVersion: schema ?? undefined,
      hosts: has?.hosts === true ? await createPostgresFleet(pool).hosts() : undefined,
    };
  } finally {
    await pool.end();
  }
}

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
    postgres: (store) => readPostgresFacts(store),
  };
}
