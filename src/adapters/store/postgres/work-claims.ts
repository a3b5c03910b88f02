/**
 * The WorkClaims port on PostgreSQL: the columns `jobs.claimed_by` and
 * `jobs.claim_expires_at` (migration 4), shared by every host of the fleet.
 *
 * A host's claim pass is one statement (a second only when it gives claims
 * up), and it waits for no row lock (`SKIP LOCKED` throughout): a webhook
 * batch moving those jobs holds their rows, and a claim pass that waited
 * for them while holding others could deadlock with it. A row skipped now
 * — its job is most likely leaving `queued` — is seen again at the next
 * tick. The statement, on one snapshot:
 *   1. renews every claim it holds on a queued job that is past half its
 *      life, and hands back the jobs it holds so it knows what it holds;
 *   2. per definition still short, takes unclaimed or expired queued jobs
 *      (not its own: those it renews), oldest first, `FOR UPDATE SKIP
 *      LOCKED`: rows another host is claiming at this instant are passed
 *      over rather than waited for, and the UPDATE re-checks the condition
 *      on the locked row, so no job is held by two hosts.
 * Then, if it holds more than it wants now, it gives up the newest.
 * When claims are given up, or a queued job is stored (intake-store.ts),
 * `NOTIFY flint_work` wakes the other hosts' schedulers (`subscribe`).
 */
import type pg from 'pg';
import type { WorkClaims } from '../../../daemon/ports/work-claims.ts';
import { writeFailed } from './pool.ts';

/** The channel hosts LISTEN on for work that may be theirs to claim. */
export const WORK_CHANNEL = 'flint_work';

/** How long `subscribe` waits before listening again after its connection broke. */
const RELISTEN_MS = 1000;

export function createPostgresWorkClaims(pool: pg.Pool): WorkClaims {
  return {
    async claim(host, wanted, now, ttlMs) {
      const expires = now + ttlMs;
      try {
        // One statement, one round trip: the claims this host holds (renewed once
        // past half their life, not at every tick: a busy fleet ticks often, and each
        // renewal is a new row version for the database to vacuum), and, per
        // definition, as many more as it is short of, taken from rows that are
        // unclaimed or whose claim expired (not its own: those are renewed). Every
        // part reads the statement's one snapshot, so what is held is counted
        // before anything is taken.
        const definitions = [...wanted.keys()];
        const { rows } = await pool.query<{ id: number | null; definition: string; first_seen_at: number | null }>(
          `WITH held AS (
             SELECT id, definition, first_seen_at FROM jobs WHERE claimed_by = $1 AND status = 'queued'),
           due AS (
             SELECT id FROM jobs WHERE claimed_by = $1 AND status = 'queued' AND claim_expires_at < $3 FOR UPDATE SKIP LOCKED),
           renewed AS (UPDATE jobs SET claim_expires_at = $2 FROM due WHERE jobs.id = due.id),
           picked AS (
             SELECT p.id FROM unnest($5::text[], $6::int[]) AS w(definition, want) CROSS JOIN LATERAL (
               SELECT id FROM jobs
               WHERE status = 'queued' AND definition = w.definition AND (claimed_by IS NULL OR claim_expires_at <= $4) AND claimed_by IS DISTINCT FROM $1
               ORDER BY first_seen_at, id
               LIMIT greatest(0, w.want - (SELECT count(*) FROM held WHERE held.definition = w.definition))
               FOR UPDATE SKIP LOCKED) AS p),
           taken AS (UPDATE jobs SET claimed_by = $1, claim_expires_at = $2 FROM picked WHERE jobs.id = picked.id RETURNING jobs.definition)
           SELECT id, definition, first_seen_at FROM held
           UNION ALL SELECT NULL, definition, NULL FROM taken`,
          [host, expires, now + ttlMs / 2, now, definitions, definitions.map((d) => Math.max(0, Math.floor(wanted.get(d) ?? 0)))]);
        const byDefinition = new Map<string, { id: number; firstSeenAt: number }[]>();
        const taken = new Map<string, number>();
        for (const r of rows) {
          if (r.id === null) {
            taken.set(r.definition, (taken.get(r.definition) ?? 0) + 1);
            continue;
          }
          const list = byDefinition.get(r.definition) ?? [];
          list.push({ id: r.id, firstSeenAt: r.first_seen_at ?? 0 });
          byDefinition.set(r.definition, list);
        }
        // Held beyond what is wanted now (its capacity shrank): the newest are given up.
        const counts = new Map<string, number>();
        const giveUp: number[] = [];
        for (const [definition, jobs] of byDefinition) {
          jobs.sort((a, b) => a.firstSeenAt - b.firstSeenAt || a.id - b.id);
          const keep = Math.min(jobs.length, Math.max(0, wanted.get(definition) ?? 0));
          giveUp.push(...jobs.slice(keep).map((j) => j.id));
          if (keep > 0) counts.set(definition, keep);
        }
        if (giveUp.length > 0) await giveUpClaims(pool, 'id = ANY($2::bigint[])', [host, giveUp]);
        for (const [definition, n] of taken) counts.set(definition, (counts.get(definition) ?? 0) + n);
        return counts;
      } catch (err) {
        throw writeFailed(`the work claims of host ${host}`, err);
      }
    },
    async releaseAll(host) {
      try {
        await giveUpClaims(pool, 'true', [host]);
      } catch (err) {
        throw writeFailed(`the release of host ${host}'s work claims`, err);
      }
    },
    async claimsByHost(now) {
      const { rows } = await pool.query<{ host: string; n: number }>(
        `SELECT claimed_by AS host, count(*)::int AS n FROM jobs
         WHERE status = 'queued' AND claimed_by IS NOT NULL AND claim_expires_at > $1 GROUP BY claimed_by ORDER BY claimed_by`, [now]);
      return new Map(rows.map((r) => [r.host, r.n]));
    },
    subscribe: (onWork) => listen(pool, onWork),
  };
}

/** Clears `host`'s claims matching `where` ($1 is the host) and, when there were any, tells the other hosts. */
async function giveUpClaims(pool: pg.Pool, where: string, params: unknown[]): Promise<void> {
  await pool.query(
    `WITH mine AS (SELECT id FROM jobs WHERE claimed_by = $1 AND ${where} FOR UPDATE SKIP LOCKED),
     freed AS (UPDATE jobs SET claimed_by = NULL, claim_expires_at = NULL FROM mine WHERE jobs.id = mine.id RETURNING jobs.id)
     SELECT pg_notify('${WORK_CHANNEL}', '') FROM (SELECT 1 FROM freed LIMIT 1) AS any_freed`, params);
}

/**
 * LISTENs on one connection of its own, taken from the pool for as long as
 * it listens; a broken connection is replaced after RELISTEN_MS (meanwhile
 * the scheduler's own ticks still find the work).
 */
async function listen(pool: pg.Pool, onWork: () => void): Promise<() => Promise<void>> {
  let stopped = false;
  let client: pg.PoolClient | undefined;
  let retry: NodeJS.Timeout | undefined;
  const notified = (msg: pg.Notification): void => {
    if (msg.channel === WORK_CHANNEL) onWork();
  };
  const relisten = (): void => {
    if (stopped) return;
    // Work may have been announced while nobody listened: the scheduler is woken once it listens again.
    retry = setTimeout(() => { retry = undefined; connect().then(onWork, relisten); }, RELISTEN_MS);
  };
  const connect = async (): Promise<void> => {
    const c = await pool.connect();
    c.on('notification', notified);
    c.once('error', () => {
      // The server went away: this client is done; listen again on a fresh one.
      c.removeListener('notification', notified);
      c.release(true);
      if (client === c) client = undefined;
      relisten();
    });
    try {
      await c.query(`LISTEN ${WORK_CHANNEL}`);
    } catch (err) {
      c.removeListener('notification', notified);
      c.release(true);
      throw err;
    }
    if (stopped) {
      c.release(true);
      return;
    }
    client = c;
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry !== undefined) clearTimeout(retry);
    const c = client;
    client = undefined;
    if (c === undefined) return;
    c.removeListener('notification', notified);
    // Destroyed rather than returned: a pooled connection must not keep listening.
    c.release(true);
  };
}
