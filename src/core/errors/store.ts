import type { CatalogueEntry } from './entry.ts';

/** Error codes of the store area. Keys are stable; never rename or reuse one. */
export const storeErrors = {
  FLINT_ERR_STORE_OPEN_FAILED: {
    title: 'Flint could not open its state database',
    hint: 'Check that stateDir exists or can be created, is writable by the user running Flint, and is on a local disk (not NFS); the message names the file.',
  },
  FLINT_ERR_STORE_SCHEMA: {
    title: 'Flint could not create or read its tables in the state database',
    hint: 'The file may belong to a newer Flint or be damaged. Stop Flint, keep a copy of the file, and check it with `sqlite3 FILE "PRAGMA integrity_check"`.',
  },
  FLINT_ERR_STORE_UNREACHABLE: {
    title: 'Flint could not reach its PostgreSQL store',
    hint: 'Check store.postgres.url (host, port or ?host=SOCKET_DIR, database, user), the password (passwordFile or passwordEnv), and that the server accepts this host (pg_hba.conf); `psql URL` from this host should connect.',
  },
  FLINT_ERR_STORE_SCHEMA_NEWER: {
    title: 'The PostgreSQL store\'s schema is newer than this Flint',
    hint: 'Another host of the fleet runs a newer Flint and has migrated the store; upgrade Flint on this host too (schemas only move forward).',
  },
  FLINT_ERR_STORE_WRITE_FAILED: {
    title: 'Flint could not write to its state database',
    hint: 'Check free disk space and the disk\'s health; nothing of the failed write was kept, and GitHub redelivers webhooks that were not answered with 2xx.',
  },
} as const satisfies Record<string, CatalogueEntry>;
