import type { CatalogueEntry } from './entry.ts';

/** The operator's admin socket (entrypoints/http/admin.ts) and the CLI commands that use it. */
export const adminErrors = {
  FLINT_ERR_ADMIN_SOCKET_IN_USE: {
    title: 'another running Flint already answers on the admin socket',
    hint: 'Stop the other Flint first, or give this one its own socket with admin.socket (every Flint on a host shares runDir, so two Flints need two sockets).',
  },
  FLINT_ERR_ADMIN_SOCKET_FAILED: {
    title: 'Flint could not create its admin socket',
    hint: 'Check that runDir (or the directory of admin.socket) exists or can be created, that Flint runs as root, and that admin.group names a group of this host.',
  },
  FLINT_ERR_ADMIN_UNREACHABLE: {
    title: 'no running Flint answers on the admin socket',
    hint: 'Start Flint (flint serve, or systemctl start flint), or point the command at the right socket with --socket PATH or FLINT_ADMIN_SOCKET (the daemon logs its socket path at start).',
  },
  FLINT_ERR_ADMIN_DENIED: {
    title: 'not allowed to use the admin socket',
    hint: 'Run the command as root, or as a member of the group named by admin.group in the configuration (log in again after being added to it).',
  },
  FLINT_ERR_ADMIN_REQUEST: {
    title: 'the running Flint refused the request',
    hint: 'Read the message: it names what was wrong (an unknown runner definition or VM id, for example); `flint status` lists the definitions and VMs.',
  },
} as const satisfies Record<string, CatalogueEntry>;
