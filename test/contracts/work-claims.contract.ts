/** The contract every WorkClaims keeps (memory, PostgreSQL), over the IntakeStore that holds the jobs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IntakeStore } from '../../src/daemon/ports/store.ts';
import type { WorkClaims } from '../../src/daemon/ports/work-claims.ts';
import { delivery } from '../../src/adapters/store/intake-store.contract.ts';

export interface ClaimsUnderTest {
  readonly intake: IntakeStore;
  readonly claims: WorkClaims;
  /** The claims as another host sees them (another connection); the same object where there is one process. */
  readonly other: () => WorkClaims | Promise<WorkClaims>;
  readonly dispose: () => void | Promise<void>;
}

const TTL = 30_000;
const want = (entries: Record<string, number>): ReadonlyMap<string, number> => new Map(Object.entries(entries));
const plain = (m: ReadonlyMap<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));

/** Queues jobs `ids` of `definition`, in that order (older first). */
async function queue(intake: IntakeStore, ids: readonly number[], definition = 'default', at = 1000): Promise<void> {
  for (const [i, id] of ids.entries()) await intake.ingest([delivery(id, 'queued', { definition, at: at + i })]);
}

export function workClaimsContract(name: string, make: () => ClaimsUnderTest | Promise<ClaimsUnderTest>): void {
  test(`${name}: two hosts claim disjoint queued jobs, each up to what it wants, oldest first`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const b = await s.other();
    await queue(s.intake, [1, 2, 3, 4, 5]);
    await queue(s.intake, [9], 'large', 5000);
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2, large: 1 }), 10_000, TTL)), { default: 2, large: 1 });
    assert.deepEqual(plain(await b.claim('b2', want({ default: 9, large: 4 }), 10_000, TTL)), { default: 3 }, 'only the rest is left');
    assert.deepEqual(plain(await s.claims.claimsByHost(10_000)), { a1: 3, b2: 3 });
    // The oldest went to whoever asked first: a1 holds jobs 1 and 2. When a1 gives one up it is its newest (2), and b2 may take it.
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 1, large: 1 }), 11_000, TTL)), { default: 1, large: 1 });
    assert.deepEqual(plain(await b.claim('b2', want({ default: 4 }), 11_000, TTL)), { default: 4 });
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2, large: 1 }), 12_000, TTL)), { default: 1, large: 1 }, 'nothing left for a1');
    assert.deepEqual(plain(await s.claims.claimsByHost(12_000)), { a1: 2, b2: 4 });
  });

  test(`${name}: claims are renewed by their holder and expire without it; a dead host's jobs go to another`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const b = await s.other();
    await queue(s.intake, [1, 2]);
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2 }), 10_000, TTL)), { default: 2 });
    assert.deepEqual(plain(await b.claim('b2', want({ default: 2 }), 10_000 + TTL - 1, TTL)), {}, 'still held');
    // Past half its life a claim is renewed for a whole ttl from then.
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2 }), 30_000, TTL)), { default: 2 }, 'renewed');
    assert.deepEqual(plain(await b.claim('b2', want({ default: 2 }), 10_000 + TTL, TTL)), {}, 'the renewal moved the expiry');
    assert.deepEqual(plain(await s.claims.claimsByHost(30_000 + TTL)), {}, 'expired claims are counted for nobody');
    assert.deepEqual(plain(await b.claim('b2', want({ default: 2 }), 30_000 + TTL, TTL)), { default: 2 }, 'a1 stopped renewing: b2 takes its jobs');
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2 }), 30_000 + TTL + 1, TTL)), {}, 'a1 comes back too late');
  });

  test(`${name}: a holder back after its claims expired, before anyone took them, renews them and counts them once`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const b = await s.other();
    await queue(s.intake, [1, 2, 3]);
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 2 }), 10_000, TTL)), { default: 2 });
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 3 }), 10_000 + TTL + 5, TTL)), { default: 3 }, 'its two renewed, one more taken');
    assert.deepEqual(plain(await b.claim('b2', want({ default: 3 }), 10_000 + TTL + 6, TTL)), {}, 'all three held again');
    assert.deepEqual(plain(await s.claims.claimsByHost(10_000 + TTL + 6)), { a1: 3 });
  });

  test(`${name}: a job that leaves queued is nobody's claim; wanting none gives every claim up; releaseAll frees them at once`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const b = await s.other();
    await queue(s.intake, [1, 2, 3]);
    await queue(s.intake, [7], 'large', 5000);
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 3, large: 1 }), 10_000, TTL)), { default: 3, large: 1 });
    await s.intake.ingest([delivery(1, 'in_progress', { runner: 'someone-else' })]);
    await s.intake.ingest([delivery(2, 'completed')]);
    assert.deepEqual(plain(await s.claims.claimsByHost(10_001)), { a1: 2 });
    assert.deepEqual(plain(await s.claims.claim('a1', want({ default: 3 }), 10_002, TTL)), { default: 1 }, 'large is not wanted: given up');
    assert.deepEqual(plain(await b.claim('b2', want({ large: 1 }), 10_003, TTL)), { large: 1 }, 'and another host takes it at once');
    await s.claims.releaseAll('a1');
    assert.deepEqual(plain(await b.claim('b2', want({ default: 5, large: 1 }), 10_004, TTL)), { default: 1, large: 1 }, 'released: taken at once');
    assert.deepEqual(plain(await s.claims.claimsByHost(10_005)), { b2: 2 });
  });

  test(`${name}: three hosts claiming at once never hold one job twice and leave none unclaimed that they wanted`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const hosts = [s.claims, await s.other(), await s.other()];
    await queue(s.intake, Array.from({ length: 30 }, (_, i) => i + 1));
    for (let round = 0; round < 5; round++) {
      const now = 10_000 + round;
      const got = await Promise.all(hosts.map((h, i) => h.claim(`h${i}`, want({ default: 8 + round }), now, TTL)));
      const total = got.reduce((sum, m) => sum + (m.get('default') ?? 0), 0);
      assert.equal(total, Math.min(30, 3 * (8 + round)), `round ${round}: ${JSON.stringify(got.map(plain))}`);
      const byHost = await s.claims.claimsByHost(now);
      assert.equal([...byHost.values()].reduce((a, n) => a + n, 0), total, 'what the hosts were told is what is recorded');
      for (const [i, m] of got.entries()) assert.equal(byHost.get(`h${i}`) ?? 0, m.get('default') ?? 0);
    }
  });

  test(`${name}: subscribers hear of queued jobs and of claims given up`, async (t) => {
    const s = await make();
    t.after(() => s.dispose());
    const b = await s.other();
    if (b.subscribe === undefined) return;
    let heard = 0;
    const stop = await b.subscribe(() => { heard += 1; });
    // Stopped before the store closes: a listening connection would hold its pool open.
    try {
      await queue(s.intake, [1]);
      await until(() => heard >= 1, 'a queued job was announced');
      const before = heard;
      await s.claims.claim('a1', want({ default: 1 }), 10_000, TTL);
      await s.claims.releaseAll('a1');
      await until(() => heard > before, 'given-up claims were announced');
    } finally {
      await stop();
    }
  });
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
