import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTail, isSameLiveProcess, procStat, signalIfSame, watchProcess } from './vmm-process.ts';
import type { PollTimers } from './vmm-process.ts';

/** Timers the test fires by hand: nothing waits on the wall clock. */
function manualTimers(): PollTimers & { fire(): void; pending(): number } {
  let queue: Array<() => void> = [];
  return {
    setTimeout: (fn) => { queue.push(fn); return fn; },
    clearTimeout: (h) => { queue = queue.filter((f) => f !== h); },
    fire() { const q = queue; queue = []; for (const f of q) f(); },
    pending: () => queue.length,
  };
}

const turn = async (): Promise<void> => { for (let i = 0; i < 20; i += 1) await new Promise((r) => setImmediate(r)); };

/** Fires the due poll and waits until it has run (it schedules the next one when done). */
async function poll(timers: ReturnType<typeof manualTimers>): Promise<void> {
  timers.fire();
  while (timers.pending() === 0) await new Promise((r) => setImmediate(r));
  await turn();
}

test('FileTail: what is appended to the console file arrives in order from the given offset, and finish() reads the rest and ends', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-tail-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'console.out');
  writeFileSync(file, 'old line\n');
  const timers = manualTimers();
  const tail = new FileTail(file, { offset: 'old line\n'.length, intervalMs: 100, timers });
  let got = '';
  let ended = false;
  tail.on('data', (b: Buffer) => { got += b.toString(); });
  tail.on('end', () => { ended = true; });
  appendFileSync(file, 'FLINT-MARKER booted\n');
  await poll(timers);
  assert.equal(got, 'FLINT-MARKER booted\n', 'bytes before the offset (read by a previous Flint) are not repeated');
  appendFileSync(file, 'last words');
  await tail.finish();
  await turn();
  assert.equal(got, 'FLINT-MARKER booted\nlast words');
  assert.ok(ended);
  assert.equal(tail.position, 'old line\nFLINT-MARKER booted\nlast words'.length);
  assert.equal(timers.pending(), 0, 'no poll is left scheduled');
});

test('FileTail: a console file that does not exist yet is waited for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-tail-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const timers = manualTimers();
  const tail = new FileTail(join(dir, 'console.out'), { intervalMs: 100, timers });
  let got = '';
  tail.on('data', (b: Buffer) => { got += b.toString(); });
  await poll(timers);
  writeFileSync(join(dir, 'console.out'), 'hello');
  await poll(timers);
  assert.equal(got, 'hello');
  tail.destroy();
  assert.equal(timers.pending(), 0);
});

test('a process is named by pid and start time: another start time is another process, and no signal reaches it', async (t) => {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid ?? 0;
  const st = await procStat(pid);
  assert.ok(st !== undefined);
  assert.equal(await isSameLiveProcess(pid, st.startTime), true);
  assert.equal(await isSameLiveProcess(pid, `${st.startTime}0`), false);
  assert.equal(await signalIfSame(pid, `${st.startTime}0`, 'SIGKILL'), false);
  assert.equal(await isSameLiveProcess(pid, st.startTime), true, 'the process with another start time was not signalled');

  const timers = manualTimers();
  const watch = watchProcess(pid, st.startTime, 100, timers);
  let gone = false;
  void watch.gone.then(() => { gone = true; });
  await turn();
  assert.equal(gone, false);
  const exited = new Promise((r) => child.once('exit', r));
  assert.equal(await signalIfSame(pid, st.startTime, 'SIGTERM'), true);
  await exited;
  timers.fire();
  await watch.gone;
  assert.equal(gone, true, 'the next poll after its end settles `gone`');
  assert.equal(timers.pending(), 0);
});
