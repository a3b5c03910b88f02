/**
 * Signed webhook deliveries, GitHub style: one POST per event with
 * `X-GitHub-Event`, `X-GitHub-Delivery` (a GUID shared by redeliveries),
 * `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the webhook
 * secret), recorded for the App's deliveries API with status, duration and
 * the redelivery flag. Deliveries go out one at a time in event order —
 * unless a webhook fault reorders, duplicates or drops them. Rate faults
 * draw from a seeded source in delivery order, so a seed replays the same
 * drops, duplicates and reorders for the same sequence of events.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Faults, SimDelivery } from './types.ts';
import { seededRandom } from './random.ts';

export interface WebhookTarget { readonly url: string; readonly secret: string }

interface Pending {
  readonly guid: string;
  readonly event: string;
  readonly action: string | null;
  readonly payload: Record<string, unknown>;
  readonly repositoryId: number | null;
  readonly redelivery: boolean;
}

/** GitHub waits 10 s for the receiver, then records the delivery as timed out. */
const RECEIVER_TIMEOUT_MS = 10_000;

export class WebhookSender {
  #target: WebhookTarget | undefined;
  #faults: NonNullable<Faults['webhooks']> = {};
  /** Deliveries each count fault still applies to. */
  readonly #left = { drop: 0, duplicate: 0, reorder: 0 };
  #random: () => number = seededRandom(1);
  readonly #stats = { dropped: 0, duplicated: 0, reordered: 0 };
  #nextId = 1_000_000_001;
  readonly #records: SimDelivery[] = [];
  #chain: Promise<void> = Promise.resolve();
  readonly #held: Pending[] = [];
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #hookId: number;
  #appId: number;

  readonly #timeoutMs: number;

  constructor(opts: { hookId: number; appId: number; target: WebhookTarget | undefined; timeoutMs?: number }) {
    this.#timeoutMs = opts.timeoutMs ?? RECEIVER_TIMEOUT_MS;
    this.#hookId = opts.hookId;
    this.#appId = opts.appId;
    this.#target = opts.target;
  }

  get hookId(): number { return this.#hookId; }
  get target(): WebhookTarget | undefined { return this.#target; }
  setTarget(t: WebhookTarget | undefined): void { this.#target = t; }
  /** The App whose hook this is (an App registered from a manifest takes over). */
  setAppId(id: number): void { this.#appId = id; }

  setFaults(f: Faults['webhooks'], seed = 1): void {
    this.#faults = f ?? {};
    this.#left.drop = f?.drop ?? 0;
    this.#left.duplicate = f?.duplicate ?? 0;
    this.#left.reorder = f?.reorder ?? 0;
    // Its own stream (the seed turned), so REST traffic does not shift the webhook faults.
    this.#random = seededRandom(seed ^ 0x5eed);
  }

  stats(): { readonly dropped: number; readonly duplicated: number; readonly reordered: number } { return { ...this.#stats }; }

  /** Whether the count `key` still has some (it is then spent), else a draw against `rate`. */
  #fires(key: 'drop' | 'duplicate' | 'reorder', rate: number | undefined): boolean {
    if (this.#left[key] > 0) {
      this.#left[key]--;
      return true;
    }
    return rate !== undefined && rate > 0 && this.#random() < rate;
  }

  records(): readonly SimDelivery[] { return this.#records; }
  find(id: number): SimDelivery | undefined { return this.#records.find((r) => r.id === id); }

  /** Queues one event; resolves once it was attempted (or held back by a reorder fault). */
  send(event: string, action: string | null, payload: Record<string, unknown>, repositoryId: number | null): Promise<void> {
    if (this.#target === undefined) return Promise.resolve(); // no webhook configured: GitHub sends nothing
    return this.#enqueue({ guid: randomUUID(), event, action, payload, repositoryId, redelivery: false });
  }

  /** Redelivers a recorded delivery (same GUID, new id, `redelivery: true`); false when unknown. */
  redeliver(id: number): boolean {
    const r = this.find(id);
    if (r === undefined || this.#target === undefined) return false;
    void this.#enqueue({ guid: r.guid, event: r.event, action: r.action, payload: { ...r.payload }, repositoryId: r.repositoryId, redelivery: true });
    return true;
  }

  /** Resolves when everything queued so far, held-back deliveries included, has been attempted. */
  async settled(): Promise<void> {
    while (this.#held.length > 0) this.#flushHeld();
    let seen: Promise<void>;
    do {
      seen = this.#chain;
      await seen;
    } while (seen !== this.#chain);
  }

  close(): void {
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
  }

  #enqueue(p: Pending): Promise<void> {
    if (this.#fires('reorder', this.#faults.reorderRate)) {
      this.#stats.reordered++;
      this.#held.push(p);
      if (this.#holdTimer === undefined) {
        this.#holdTimer = setTimeout(() => this.#flushHeld(), this.#faults.holdMs ?? 1000);
      }
      return Promise.resolve();
    }
    const done = this.#chain.then(async () => {
      await this.#attempt(p);
      // The delivery that overtook the held ones is out: now release them, late.
      if (this.#held.length > 0) this.#flushHeld();
    });
    this.#chain = done;
    return done;
  }

  #flushHeld(): void {
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    const held = this.#held.splice(0);
    for (const p of held) this.#chain = this.#chain.then(() => this.#attempt(p));
  }

  async #attempt(p: Pending): Promise<void> {
    const copies = this.#fires('duplicate', this.#faults.duplicateRate) ? 2 : 1;
    if (copies === 2) this.#stats.duplicated++;
    for (let i = 0; i < copies; i++) await this.#post(p);
  }

  async #post(p: Pending): Promise<void> {
    const target = this.#target;
    if (target === undefined) return;
    const body = JSON.stringify(p.payload);
    const headers: Record<string, string> = {
      'Accept': '*/*',
      'Content-Type': 'application/json',
      'User-Agent': 'GitHub-Hookshot/f1e7a5e',
      'X-GitHub-Delivery': p.guid,
      'X-GitHub-Event': p.event,
      'X-GitHub-Hook-ID': String(this.#hookId),
      'X-GitHub-Hook-Installation-Target-ID': String(this.#appId),
      'X-GitHub-Hook-Installation-Target-Type': 'integration',
      'X-Hub-Signature': `sha1=${createHmac('sha1', target.secret).update(body).digest('hex')}`,
      'X-Hub-Signature-256': `sha256=${createHmac('sha256', target.secret).update(body).digest('hex')}`,
    };
    const started = performance.now();
    let statusCode = 0;
    let status: string;
    let responseBody = '';
    if (this.#fires('drop', this.#faults.dropRate)) {
      this.#stats.dropped++;
      status = 'failed to connect to host';
    } else {
      try {
        const res = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.#timeoutMs) });
        statusCode = res.status;
        responseBody = (await res.text()).slice(0, 4096);
        status = res.ok ? 'OK' : `Invalid HTTP Response: ${res.status}`;
      } catch (err) {
        status = (err as { name?: unknown }).name === 'TimeoutError' ? 'timed out' : 'failed to connect to host'; // fetch rejects with DOMException/TypeError objects
      }
    }
    this.#records.push({
      id: this.#nextId++, guid: p.guid, event: p.event, action: p.action, redelivery: p.redelivery,
      deliveredAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), durationMs: performance.now() - started,
      statusCode, status, payload: p.payload, requestHeaders: headers, responseBody, repositoryId: p.repositoryId,
    });
  }
}
