/** Webhook payloads the simulator sends: `workflow_job` (queued/in_progress/completed) and `ping`. */
import * as render from './render.ts';
import type { JobRec, RenderCtx } from './render.ts';
import type { WebhookSender } from './webhook-sender.ts';
import type { World } from './world.ts';

export interface WebhookEvents {
  /** Sends `workflow_job` with the job's current status as the action; resolves when attempted. */
  jobChanged(j: JobRec): Promise<void>;
  ping(): Promise<void>;
}

export function webhookEvents(d: { world: World; webhooks: WebhookSender; ctx: () => RenderCtx }): WebhookEvents {
  const installation = (c: RenderCtx): Record<string, unknown> => ({
    id: c.installationId, node_id: Buffer.from(`0:Installation${c.installationId}`).toString('base64').replace(/=+$/, ''),
  });
  return {
    jobChanged: (j) => {
      const c = d.ctx();
      const payload = {
        action: j.status, workflow_job: render.job(c, j), repository: render.repository(c, j.run.repo),
        organization: render.organizationWebhook(c), sender: render.account(c), installation: installation(c),
      };
      return d.webhooks.send('workflow_job', j.status, payload, j.run.repo.id);
    },
    ping: () => {
      const c = d.ctx();
      const hookId = d.webhooks.hookId;
      const payload = {
        zen: 'Keep it logically awesome.', hook_id: hookId,
        hook: {
          type: 'App', id: hookId, name: 'web', active: true, events: ['workflow_job'],
          config: { content_type: 'json', insecure_ssl: '0', url: d.webhooks.target?.url ?? '' },
          updated_at: c.createdAt, created_at: c.createdAt, app_id: c.appId,
          deliveries_url: `${c.api}/app/hook/deliveries`,
        },
      };
      return d.webhooks.send('ping', null, payload, null);
    },
  };
}
