import { createMemoryIntakeStore } from '../../src/adapters/store/memory-intake-store.ts';
import type { IntakeStore } from '../../src/daemon/ports/store.ts';
import { workClaimsContract } from '../contracts/work-claims.contract.ts';
import { MemoryWorkClaims } from './memory-work-claims.ts';

workClaimsContract('memory', () => {
  const store = createMemoryIntakeStore();
  const claims = new MemoryWorkClaims(store);
  // What PostgreSQL's intake does at commit: a stored queued job wakes the subscribers.
  const intake: IntakeStore = Object.assign(Object.create(store) as IntakeStore, {
    async ingest(batch: Parameters<IntakeStore['ingest']>[0]) {
      const outcomes = await store.ingest(batch);
      if (batch.some((d, i) => d.command.action === 'queued' && outcomes[i] === 'accepted')) claims.notify();
      return outcomes;
    },
  });
  return { intake, claims, other: () => claims, dispose: () => undefined };
});
