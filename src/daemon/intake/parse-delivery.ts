/**
 * Parse at the edge: the raw headers and body of a webhook delivery become
 * a typed `ParsedDelivery`, or a FlintError that says what was wrong. Nothing
 * past this module sees a header map or an untyped payload.
 *
 * The payload check covers the fields Flint uses and lets everything else
 * through: GitHub adds fields to payloads without notice, and a new field
 * must never make Flint refuse deliveries. Field types come from GitHub's
 * published schema through core/jobs.ts (the parsed values are assigned to
 * those types, so a mismatch is a compile error).
 */
import { z } from 'zod';
import { FlintError } from '../../core/errors/index.ts';
import type { JobCommand, JobConclusion, JobFacts } from '../../core/jobs.ts';
import { JOB_ACTIONS } from '../../core/jobs.ts';

export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/** How the body is encoded: JSON, or a form with the JSON in its `payload` field. */
export type DeliveryEncoding = 'json' | 'form';

/** The GitHub headers of a delivery, checked. */
export interface DeliveryHeaders {
  /** `X-GitHub-Event`, e.g. "workflow_job". */
  readonly event: string;
  /** `X-GitHub-Delivery`: GitHub's unique id of this delivery (kept on redelivery). */
  readonly deliveryId: string;
  /** `X-Hub-Signature-256`, unchecked; undefined when absent. */
  readonly signature: string | undefined;
  /** From `Content-Type`; absent means JSON. */
  readonly encoding?: DeliveryEncoding;
  /**
   * The headers worth keeping with a delivery that cannot be parsed (see
   * `keptHeaders`); absent when the caller built the headers by hand.
   */
  readonly raw?: HeaderBag;
}

export type ParsedDelivery =
  | { readonly kind: 'ping'; readonly deliveryId: string; readonly zen: string | undefined; readonly hookId: number | undefined }
  | { readonly kind: 'workflow_job'; readonly deliveryId: string; readonly command: JobCommand }
  /** An event (or workflow_job action) Flint does not act on. */
  | { readonly kind: 'other'; readonly deliveryId: string; readonly event: string; readonly action: string | undefined };

// GitHub's delivery ids are GUIDs; anything printable and short is taken so
// that GitHub Enterprise Server and the simulator need not match exactly,
// but the id is stored and logged, so junk is refused.
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// Every event name GitHub documents is lower-case letters and underscores
// (`security_and_analysis`, `github_app_authorization`); digits and capitals
// are taken too, so a future name is answered 2xx rather than refused.
const EVENT = /^[A-Za-z0-9_]{1,64}$/;

function single(h: HeaderBag, name: string): string | undefined {
  const v = h[name];
  return typeof v === 'string' ? v : v?.[0];
}

/**
 * Checks the headers before the body is read: GitHub's own headers and the
 * content type. `headers` has lower-case names (as node:http gives them).
 */
export function readDeliveryHeaders(headers: HeaderBag): DeliveryHeaders {
  const event = single(headers, 'x-github-event');
  const deliveryId = single(headers, 'x-github-delivery');
  if (event === undefined || deliveryId === undefined) {
    const missing = [event === undefined ? 'X-GitHub-Event' : [], deliveryId === undefined ? 'X-GitHub-Delivery' : []].flat().join(' and ');
    throw new FlintError('FLINT_ERR_WEBHOOK_MISSING_HEADER', `the delivery has no ${missing} header`);
  }
  if (!EVENT.test(event)) throw new FlintError('FLINT_ERR_WEBHOOK_MISSING_HEADER', 'the X-GitHub-Event header is not an event name');
  if (!DELIVERY_ID.test(deliveryId)) throw new FlintError('FLINT_ERR_WEBHOOK_MISSING_HEADER', 'the X-GitHub-Delivery header is not a delivery id');
  const contentType = single(headers, 'content-type');
  // Media type only; parameters such as charset=utf-8 are fine (JSON is UTF-8).
  const mediaType = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  // GitHub sends one of these two, as the webhook's "Content type" setting says.
  const encoding = mediaType === 'application/json' ? 'json' : mediaType === 'application/x-www-form-urlencoded' ? 'form' : undefined;
  if (encoding === undefined) {
    const got = contentType === undefined ? 'no Content-Type' : `Content-Type ${JSON.stringify(contentType.slice(0, 80))}`;
    throw new FlintError('FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', `the delivery has ${got}, expected application/json (or GitHub's application/x-www-form-urlencoded)`);
  }
  return { event, deliveryId, signature: single(headers, 'x-hub-signature-256'), encoding, raw: headers };
}

const KEPT_HEADER = /^(x-github-|x-hub-signature-256$|content-type$|user-agent$)/;

/**
 * The headers kept with an unparsable delivery: GitHub's own (`X-GitHub-*`,
 * including GHES's `X-GitHub-Enterprise-Host`/`-Version`), the signature,
 * the content type and the user agent. Enough to parse it again later;
 * nothing a proxy may have added (cookies, authorization) is kept.
 */
export function keptHeaders(h: DeliveryHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = h.raw ?? {};
  for (const [name, value] of Object.entries(raw)) {
    const k = name.toLowerCase();
    const v = typeof value === 'string' ? value : value?.[0];
    if (v !== undefined && KEPT_HEADER.test(k)) out[k] = v;
  }
  // Hand-built headers (tests, replays) still carry what parsing needs.
  out['x-github-event'] ??= h.event;
  out['x-github-delivery'] ??= h.deliveryId;
  if (h.signature !== undefined) out['x-hub-signature-256'] ??= h.signature;
  out['content-type'] ??= h.encoding === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
  return out;
}

// Only what Flint uses is checked, and only `id`, `run_id`, `labels` and
// the repository's `full_name` must be there. GitHub's schema marks most
// fields required, but GitHub Enterprise Server 3.x predates some of them
// (`run_attempt`, `workflow_name`, `head_branch`, `created_at`) and several
// are null in some actions (`runner_*` before a runner took the job,
// `conclusion` until it completed). A field Flint merely records is
// defaulted rather than a reason to refuse the delivery.
const nullableString = z.string().nullish().transform((v) => v ?? null);
const workflowJob = z.object({
  id: z.number().int().positive(),
  run_id: z.number().int().positive(),
  run_attempt: z.number().int().positive().nullish().transform((v) => v ?? 1),
  name: z.string().nullish().transform((v) => v ?? ''),
  workflow_name: nullableString,
  head_branch: nullableString,
  labels: z.array(z.string()),
  created_at: nullableString,
  runner_id: z.number().int().nullish(),
  runner_name: z.string().nullish(),
  conclusion: z.string().nullish(),
});
const repository = z.object({ full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/) });
const payload = z.object({ action: z.enum(JOB_ACTIONS), repository, workflow_job: workflowJob });
const ping = z.object({ zen: z.string().optional(), hook_id: z.number().int().optional() });

const CONCLUSIONS: ReadonlySet<string> = new Set(['success', 'failure', 'skipped', 'cancelled', 'action_required', 'neutral', 'timed_out'] satisfies JobConclusion[]);
/** A conclusion GitHub's schema names, or null: an unknown one (GitHub may add some) must not keep the job from completing. */
const knownConclusion = (c: string | null | undefined): JobConclusion | null =>
  // Checked against CONCLUSIONS, which holds only JobConclusion values.
  c != null && CONCLUSIONS.has(c) ? (c as JobConclusion) : null;

/** The JSON text of the body: the body itself, or the `payload` field of a form-encoded one. */
function jsonText(body: Uint8Array, encoding: DeliveryEncoding): string {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (encoding === 'json') return text;
  const p = new URLSearchParams(text).get('payload');
  if (p === null) throw new FlintError('FLINT_ERR_WEBHOOK_MALFORMED_JSON', 'the form-encoded body has no payload field');
  return p;
}

function parseJson(body: Uint8Array, encoding: DeliveryEncoding): unknown {
  const text = jsonText(body, encoding);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FlintError('FLINT_ERR_WEBHOOK_MALFORMED_JSON', `the body is not JSON: ${(err instanceof Error ? err.message : String(err))}`);
  }
}

function invalid(error: z.ZodError): FlintError {
  const issue = error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? 'payload' : issue.path.join('.');
  return new FlintError('FLINT_ERR_WEBHOOK_INVALID_PAYLOAD', `workflow_job payload: ${where}: ${issue?.message ?? 'invalid'}`);
}

/** Parses a delivery whose signature was already verified. */
export function parseDelivery(headers: DeliveryHeaders, body: Uint8Array): ParsedDelivery {
  const { deliveryId, event } = headers;
  const json = parseJson(body, headers.encoding ?? 'json');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FlintError('FLINT_ERR_WEBHOOK_MALFORMED_JSON', 'the body is JSON but not an object');
  }
  if (event === 'ping') {
    const p = ping.safeParse(json);
    return { kind: 'ping', deliveryId, zen: p.success ? p.data.zen : undefined, hookId: p.success ? p.data.hook_id : undefined };
  }
  // `'action' in json` narrows to an object with an unknown `action`.
  const action = 'action' in json && typeof json.action === 'string' ? json.action : undefined;
  if (event !== 'workflow_job') return { kind: 'other', deliveryId, event, action };
  // A workflow_job action Flint does not know (GitHub may add one) is news
  // it cannot act on, not a malformed delivery.
  if (action !== undefined && !(JOB_ACTIONS as readonly string[]).includes(action)) return { kind: 'other', deliveryId, event, action };
  const p = payload.safeParse(json);
  if (!p.success) throw invalid(p.error);
  return { kind: 'workflow_job', deliveryId, command: toCommand(p.data) };
}

function toCommand(p: z.infer<typeof payload>): JobCommand {
  const wj = p.workflow_job;
  const job: JobFacts = {
    id: wj.id, runId: wj.run_id, runAttempt: wj.run_attempt, name: wj.name, workflowName: wj.workflow_name,
    headBranch: wj.head_branch, labels: wj.labels, repository: p.repository.full_name, createdAt: wj.created_at,
  };
  // The runner is matched by name; its id is kept when GitHub sends one.
  const runner = wj.runner_name == null || wj.runner_name === '' ? null : { id: wj.runner_id ?? null, name: wj.runner_name };
  switch (p.action) {
    case 'queued': return { action: 'queued', job };
    case 'waiting': return { action: 'waiting', job };
    case 'in_progress': return { action: 'in_progress', job, runner };
    case 'completed': return { action: 'completed', job, runner, conclusion: knownConclusion(wj.conclusion) };
  }
}
