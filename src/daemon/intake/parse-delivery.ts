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
import type { JobCommand, JobFacts } from '../../core/jobs.ts';
import { JOB_ACTIONS } from '../../core/jobs.ts';

export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The GitHub headers of a delivery, checked. */
export interface DeliveryHeaders {
  /** `X-GitHub-Event`, e.g. "workflow_job". */
  readonly event: string;
  /** `X-GitHub-Delivery`: GitHub's unique id of this delivery (kept on redelivery). */
  readonly deliveryId: string;
  /** `X-Hub-Signature-256`, unchecked; undefined when absent. */
  readonly signature: string | undefined;
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
const EVENT = /^[a-z_]{1,64}$/;

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
  if (mediaType !== 'application/json') {
    const got = contentType === undefined ? 'no Content-Type' : `Content-Type ${JSON.stringify(contentType.slice(0, 80))}`;
    const form = mediaType === 'application/x-www-form-urlencoded' ? ' (form-encoded deliveries are not taken)' : '';
    throw new FlintError('FLINT_ERR_WEBHOOK_UNSUPPORTED_CONTENT_TYPE', `the delivery has ${got}, expected application/json${form}`);
  }
  return { event, deliveryId, signature: single(headers, 'x-hub-signature-256') };
}

const nullableString = z.string().nullish().transform((v) => v ?? null);
const runnerFields = { runner_id: z.number().int().nullish(), runner_name: z.string().nullish() };
const workflowJob = z.object({
  id: z.number().int().positive(),
  run_id: z.number().int().positive(),
  run_attempt: z.number().int().positive(),
  name: z.string(),
  workflow_name: nullableString,
  head_branch: nullableString,
  labels: z.array(z.string()),
  created_at: z.string(),
  ...runnerFields,
});
const conclusion = z.enum(['success', 'failure', 'skipped', 'cancelled', 'action_required', 'neutral', 'timed_out']);
const repository = z.object({ full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/) });
const payload = z.discriminatedUnion('action', [
  z.object({ action: z.literal(['queued', 'waiting']), repository, workflow_job: workflowJob }),
  z.object({ action: z.literal('in_progress'), repository, workflow_job: workflowJob }),
  z.object({ action: z.literal('completed'), repository, workflow_job: workflowJob.extend({ conclusion }) }),
]);
const ping = z.object({ zen: z.string().optional(), hook_id: z.number().int().optional() });

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
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
  const json = parseJson(body);
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
  const runner = wj.runner_id == null || wj.runner_name == null ? null : { id: wj.runner_id, name: wj.runner_name };
  switch (p.action) {
    case 'queued': return { action: 'queued', job };
    case 'waiting': return { action: 'waiting', job };
    case 'in_progress': return { action: 'in_progress', job, runner };
    case 'completed': return { action: 'completed', job, runner, conclusion: p.workflow_job.conclusion };
  }
}
