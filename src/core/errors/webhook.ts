import type { CatalogueEntry } from './entry.ts';

/** Error codes of the webhook area (intake and Flint's HTTP listener). Keys are stable; never rename or reuse one. */
export const webhookErrors = {
  FLINT_ERR_WEBHOOK_MISSING_HEADER: {
    title: 'A webhook delivery lacks a header GitHub always sends (X-GitHub-Event or X-GitHub-Delivery)',
    hint: 'Point only GitHub (or the simulator) at /webhook; a proxy in front of Flint must pass the X-GitHub-* and X-Hub-Signature-256 headers through unchanged.',
  },
  FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE: {
    title: 'A webhook delivery is neither application/json nor form-encoded',
    hint: 'GitHub sends application/json (or application/x-www-form-urlencoded where the webhook offers the choice); something between GitHub and Flint changed the Content-Type. Check any proxy in front of Flint.',
  },
  FLINT_ERR_WEBHOOK_BODY_TOO_LARGE: {
    title: 'A webhook delivery is larger than the configured body limit',
    hint: 'workflow_job deliveries are a few KB; a larger body is not from GitHub\'s workflow_job hook. If it is legitimate, raise the limit with `flint serve --webhook-body-limit BYTES`.',
  },
  FLINT_ERR_WEBHOOK_BAD_SIGNATURE: {
    title: 'A webhook delivery\'s X-Hub-Signature-256 does not match the webhook secret',
    hint: 'Make the App\'s webhook secret and Flint\'s github.webhookSecret the same; during a rotation put the old one in github.previousWebhookSecret until GitHub uses the new one.',
  },
  FLINT_ERR_WEBHOOK_MALFORMED_JSON: {
    title: 'A signed webhook delivery\'s body is not valid JSON',
    hint: 'The delivery was signed with the webhook secret, so it was kept as unparsable (docs/webhooks.md); no job changed. Check any proxy between GitHub and Flint for altered bodies, then replay kept deliveries with replayUnparsable.',
  },
  FLINT_ERR_WEBHOOK_INVALID_PAYLOAD: {
    title: 'A signed workflow_job delivery lacks a field Flint needs, or has it in another type',
    hint: 'The delivery was kept as unparsable with its raw body (docs/webhooks.md) and no job changed; the message names the first field that is wrong. Report it with the delivery id; once Flint is fixed, replay the kept deliveries. Meanwhile the missed-webhooks loop still finds queued jobs.',
  },
  FLINT_ERR_ACME_FAILED: {
    title: 'Flint could not obtain or renew the HTTPS certificate from the ACME server',
    hint: 'Check that the host name in `address` resolves (public DNS) to this host, that port 80 reaches Flint from the internet (the CA validates HTTP-01 there; no proxy or firewall in between), that `email` is a real address, and for a private CA `acme.directoryUrl` and `acme.caFile`. Flint retries with back-off (5 min doubling to 6 h) and keeps serving the current certificate meanwhile; `flint serve` logs each attempt.',
  },
  FLINT_ERR_TLS_FILES: {
    title: 'The certificate or key named in `tls:` cannot be used',
    hint: 'tls.certFile must hold a PEM certificate (with its chain) and tls.keyFile the matching PEM private key, both readable by Flint. A changed pair is picked up within a minute without a restart; until then the previous pair stays in service.',
  },
  FLINT_ERR_LISTEN_FAILED: {
    title: 'Flint could not listen on the configured address',
    hint: 'Check that the address is host:port, that no other program uses the port (ss -ltnp), and that ports below 1024 are run as root.',
  },
} as const satisfies Record<string, CatalogueEntry>;
