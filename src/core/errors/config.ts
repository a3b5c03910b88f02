import type { CatalogueEntry } from './entry.ts';

/**
 * Error codes of the config area. Keys are stable; never rename or reuse one.
 *
 * Two families: "the file is not a valid Flint configuration" (syntax, keys,
 * types, values, cross-field rules, environment variables, secret files) and
 * "the configuration is valid but not usable on this host yet" (placeholder
 * key, missing kernel or image files). `flint config check` reports both,
 * each problem with its own code.
 */
export const configErrors = {
  FLINT_ERR_CONFIG_INVALID: {
    title: 'The configuration file is not valid',
    hint: 'Fix every problem listed above (each names file:line:column and the key), then run `flint config check FILE` again.',
  },
  FLINT_ERR_CONFIG_UNREADABLE: {
    title: 'The configuration file cannot be read',
    hint: 'Check the path and that the user running Flint may read the file (`ls -l FILE`).',
  },
  FLINT_ERR_CONFIG_WRITE_FAILED: {
    title: 'The configuration file cannot be written',
    hint: 'Run the command as a user that may write the file and create files in its directory (e.g. with sudo for /etc/flint), or pick another file with --config.',
  },
  FLINT_ERR_CONFIG_SYNTAX: {
    title: 'The configuration file is not valid YAML',
    hint: 'Fix the YAML at the given line and column: check indentation, quotes and that each key appears once.',
  },
  FLINT_ERR_CONFIG_UNKNOWN_KEY: {
    title: 'The configuration has a key Flint does not know',
    hint: 'Remove the key or correct its spelling; docs/config.md lists every key. Unknown keys are errors so that a typo never silently falls back to a default.',
  },
  FLINT_ERR_CONFIG_MISSING_KEY: {
    title: 'A required configuration key is missing',
    hint: 'Add the key; docs/config.md shows its meaning and an example.',
  },
  FLINT_ERR_CONFIG_VALUE: {
    title: 'A configuration value has the wrong type or is out of range',
    hint: 'Correct the value as the message says; docs/config.md gives the type and allowed range of every key.',
  },
  FLINT_ERR_CONFIG_CONFLICT: {
    title: 'Configuration values contradict each other',
    hint: 'Change one of the named keys so that they agree (for example, point `network:` at a network that exists).',
  },
  FLINT_ERR_CONFIG_ENV_MISSING: {
    title: 'The configuration names an environment variable that is not set',
    hint: 'Set the variable in the environment Flint runs in (for systemd: `Environment=` or `EnvironmentFile=`), or put the value in the file.',
  },
  FLINT_ERR_CONFIG_SECRET_FILE: {
    title: 'A file the configuration names for a secret cannot be read',
    hint: 'Check the path in `privateKeyFile` and that the user running Flint may read it (mode 0600, owned by that user).',
  },
  FLINT_ERR_CONFIG_UNUSABLE: {
    title: 'The configuration is valid but not usable on this host yet',
    hint: 'Replace the placeholders and provide the files listed above, then run `flint config check FILE` again. `--no-host-checks` checks the structure only (for a file meant for another host).',
  },
  FLINT_ERR_CONFIG_PRIVATE_KEY_UNUSABLE: {
    title: 'The GitHub App private key is not a usable PEM private key',
    hint: 'Download a private key from the GitHub App settings page ("Generate a private key") and put the whole PEM file in `privateKeyFile` (or inline in `privateKey`).',
  },
  FLINT_ERR_CONFIG_APP_ID_UNUSABLE: {
    title: 'The GitHub App id is a placeholder',
    hint: 'Put the numeric "App ID" from the GitHub App settings page in `github.appID`.',
  },
  FLINT_ERR_CONFIG_READABLE_BY_OTHERS: {
    title: 'The configuration file, or a key file it names, holds secrets and other users of the host may read it',
    hint: 'Run `chmod 600` on the file (owned by the user Flint runs as); for the configuration file you may instead keep the secrets out of it: `privateKeyFile:` (mode 0600) for the key, `{env: VARIABLE}` for the webhook secret. A warning: Flint still starts.',
  },
  FLINT_ERR_CONFIG_PATH_UNUSABLE: {
    title: 'A file the configuration names does not exist or cannot be used',
    hint: 'Build or download the file (kernels and root filesystems: `flint image build`), or correct the path; programs must be executable, and kernels and images readable by the runner definition\'s uid/gid (`chmod o+r FILE`).',
  },
} as const satisfies Record<string, CatalogueEntry>;
