import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { stopOnSignals, type SignalSource, type Stoppable } from './serve.ts';
import { MemoryLogger } from '../../../test/fakes/rig.ts';

/** A Flint whose drain waits until the test ends it (or a close cuts it short), recording what was asked. */
function fakeFlint(withDrain = true) {
  const asked: string[] = [];
  let endDrain: () => void = () => undefined;
  const drained = new Promise<void>((r) => { endDrain = r; });
  const serving: Stoppable = {
    async close() { asked.push('close'); endDrain(); },
    ...(withDrain ? { async drain() { asked.push('drain'); await drained; } } : {}),
  };
  return { serving, asked, endDrain };
}

const signals = (): EventEmitter & SignalSource => new EventEmitter() as EventEmitter & SignalSource; // emits the two events the type names

test('the first SIGTERM drains; the stop resolves when the drain has closed Flint', async () => {
  const { serving, asked, endDrain } = fakeFlint();
  const source = signals();
  const logger = new MemoryLogger();
  const stopped = stopOnSignals(serving, source, { now: false, logger });
  source.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(asked, ['drain']);
  endDrain();
  await stopped;
  assert.equal(source.listenerCount('SIGTERM') + source.listenerCount('SIGINT'), 0, 'the handlers are removed once stopped');
  assert.match(logger.text(), /draining/);
});

test('a second signal during the drain stops at once', async () => {
  const { serving, asked } = fakeFlint();
  const source = signals();
  const logger = new MemoryLogger();
  const stopped = stopOnSignals(serving, source, { now: false, logger });
  source.emit('SIGTERM', 'SIGTERM');
  source.emit('SIGINT', 'SIGINT');
  source.emit('SIGTERM', 'SIGTERM');
  await stopped;
  assert.deepEqual(asked, ['drain', 'close'], 'a third signal asks nothing more');
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg === 'flint serve: stopping at once'));
});

test('--now: the first signal stops at once', async () => {
  const { serving, asked } = fakeFlint();
  const source = signals();
  const stopped = stopOnSignals(serving, source, { now: true, logger: new MemoryLogger() });
  source.emit('SIGINT', 'SIGINT');
  await stopped;
  assert.deepEqual(asked, ['close']);
});

test('--webhooks-only has nothing to drain: the first signal closes', async () => {
  const { serving, asked } = fakeFlint(false);
  const source = signals();
  const stopped = stopOnSignals(serving, source, { now: false, logger: new MemoryLogger() });
  source.emit('SIGTERM', 'SIGTERM');
  await stopped;
  assert.deepEqual(asked, ['close']);
});
