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
  FLINT_ERR_HTTPS_NOT_SUPPORTED: {
    title: 'The listen address uses port 443, which means automatic HTTPS (ACME), and Flint does not do ACME yet',
    hint: 'Listen on plain HTTP on another port (e.g. address: 127.0.0.1:8080) and put a TLS-terminating reverse proxy (Caddy, nginx) on port 443 in front of it.',
  },
  FLINT_ERR_LISTEN_FAILED: {
    title: 'Flint could not listen on the configured address',
    hint: 'Check that the address is host:port, that no other program uses the port (ss -ltnp), and that ports below 1024 are run as root.',
  },
} as const satisfies Record<string, CatalogueEntry>;
