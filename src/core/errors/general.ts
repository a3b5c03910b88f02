import type { CatalogueEntry } from './entry.ts';

/** Error codes not owned by one area. Keys are stable; never rename or reuse one. */
export const generalErrors = {
  FLINT_ERR_INTERNAL: {
    title: 'Flint hit an unexpected internal error',
    hint: 'This is a bug in Flint. Keep the log lines around it and report them.',
  },
  FLINT_ERR_USAGE: {
    title: 'The command line is not valid',
    hint: 'Run `flint --help` for the commands and their options.',
  },
  FLINT_ERR_PREREQUISITE_MISSING: {
    title: 'A program or device Flint needs is missing on this host',
    hint: 'Install the named program (the message says which Debian package provides it) and try again.',
  },
  FLINT_ERR_SERVICE_INSTALL: {
    title: 'The systemd unit could not be written or does not verify',
    hint: 'Run `flint service install` as root (it writes to /etc/systemd/system), or choose another directory with `--unit-dir`; `--dry-run` prints the unit instead.',
  },
} as const satisfies Record<string, CatalogueEntry>;
