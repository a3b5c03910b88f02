import type { CatalogueEntry } from './entry.ts';

/** Error codes of the github area. Keys are stable; never rename or reuse one. */
export const githubErrors = {
  FLINT_ERR_GITHUB_APP_NOT_INSTALLED: {
    title: 'The GitHub App is not installed on the configured organization',
    hint: 'Install the App on the organization named in `github.organization` (GitHub: Organization settings → GitHub Apps, or the App\'s public page → Install); a running Flint picks the installation up on its next attempt.',
  },
  FLINT_ERR_GITHUB_INSTALLATION_SUSPENDED: {
    title: 'The GitHub App\'s installation on the organization is suspended',
    hint: 'An organization owner must unsuspend the App (Organization settings → GitHub Apps → Configure → Unsuspend); Flint cannot act for the organization until then.',
  },
  FLINT_ERR_GITHUB_APP_MANIFEST_FAILED: {
    title: 'GitHub did not hand over the App registered from the manifest',
    hint: 'The code GitHub sends back works once and for one hour. Run `flint app create` again; if GitHub registered an App whose key Flint did not receive, delete it (the App\'s settings → Advanced → Delete GitHub App).',
  },
  FLINT_ERR_GITHUB_AUTH_FAILED: {
    title: 'GitHub rejected the App\'s credentials',
    hint: 'Check that `github.appID` and the private key belong to the same App, that the key has not been revoked, and that this host\'s clock is correct (App tokens are time-limited).',
  },
  FLINT_ERR_GITHUB_PRIVATE_KEY_INVALID: {
    title: 'The GitHub App private key cannot be used to sign a token',
    hint: 'Set `github.privateKey` (or `github.privateKeyFile`) to the complete PEM file downloaded from the App\'s settings page, including the BEGIN/END lines and line breaks.',
  },
  FLINT_ERR_GITHUB_PERMISSION_DENIED: {
    title: 'The GitHub App lacks a permission Flint needs',
    hint: 'Grant the permissions listed in docs/github-app.md (organization "Self-hosted runners: read & write", repository "Actions: read", "Administration: read & write" for repository runners) and have an owner accept the new permissions.',
  },
  FLINT_ERR_GITHUB_RUNNER_GROUP_NOT_FOUND: {
    title: 'The runner group named in the configuration does not exist in the organization',
    hint: 'Create the runner group in the organization (Settings → Actions → Runner groups) or change the runner\'s `group` to one of the names listed in the message.',
  },
  FLINT_ERR_GITHUB_RUNNER_NAME_TAKEN: {
    title: 'GitHub already has a runner with this name',
    hint: 'A runner of an earlier VM with the same name is still registered; Flint removes stale runners of its own on the next reconcile. If it persists, delete the runner in the organization\'s Actions settings.',
  },
  FLINT_ERR_GITHUB_RUNNER_BUSY: {
    title: 'GitHub refused to remove a runner because it is running a job',
    hint: 'Wait for the job to finish (or cancel it in GitHub); Flint retries the removal when the runner is idle.',
  },
  FLINT_ERR_GITHUB_RATE_LIMITED: {
    title: 'GitHub\'s API rate limit was reached and the wait would be too long',
    hint: 'Flint waits out short rate limits itself; for a longer one it sends nothing to GitHub until the time in the message (details.retryAt) and its loops resume then on their own. If it recurs, lower `github.scanBudget` (the missed-jobs scan\'s share), reduce the Flint instances sharing this App, or check which other tools use the same App.',
  },
  FLINT_ERR_GITHUB_UNAVAILABLE: {
    title: 'GitHub could not be reached or kept answering with server errors',
    hint: 'Check the host\'s network path to `github.apiUrl` and GitHub\'s status page; Flint retried with backoff and will try again on its next loop.',
  },
  FLINT_ERR_GITHUB_REQUEST_FAILED: {
    title: 'GitHub answered a request with an unexpected error',
    hint: 'The message names the request and GitHub\'s answer. If `github.apiUrl` points at GitHub Enterprise Server, check that its version supports the endpoint.',
  },
} as const satisfies Record<string, CatalogueEntry>;
