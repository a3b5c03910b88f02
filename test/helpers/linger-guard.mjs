// Loaded into every test process by scripts/test.mjs (`--import`): fails a
// test file whose process outlives its tests. After the file's last test
// (when the root test's after-hooks run) a timer that does not itself keep
// the process alive is armed; if the process is still there when it fires,
// something the tests left — a timer, a server, a child process, a socket —
// is keeping it alive. The file then fails, naming what is left, instead of
// silently holding up the whole run.
//
// FLINT_TEST_LINGER_TRACE=1 also prints where each timer still armed was
// created (async_hooks; slower, so only on demand).
import { createHook } from 'node:async_hooks';
import { after } from 'node:test';

const limitMs = Number(process.env.FLINT_TEST_LINGER_MS ?? 10_000);

/** asyncId → creation stack of the timers alive, when tracing. */
const timers = new Map();
if (process.env.FLINT_TEST_LINGER_TRACE === '1') {
  createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout') timers.set(id, { resource, stack: new Error('timer created').stack ?? '' });
    },
    destroy(id) { timers.delete(id); },
  }).enable();
}

/** Where the timers that keep the process alive (not unref'd) were made. */
function trace() {
  if (process.env.FLINT_TEST_LINGER_TRACE !== '1') return ' (FLINT_TEST_LINGER_TRACE=1 shows where its timers were made)';
  const held = [...timers.values()].filter((t) => typeof t.resource?.hasRef !== 'function' || t.resource.hasRef());
  return `; timers keeping it alive were created at:\n${held.map((t) => t.stack).join('\n---\n')}`;
}

after(() => {
  const timer = setTimeout(() => {
    // Pipes to the test runner (stdout, stderr, IPC) are the runner's own.
    const left = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
    process.stderr.write(`linger-guard: this test file's process is still alive ${limitMs / 1000} s after its tests ended; `
      + `left behind: ${left.join(', ') || 'nothing visible (a handle of a native module?)'}. `
      + 'Clear every timer, close every server and socket, and end every child process the tests start'
      + `${trace()}.\n`);
    process.exit(1);
  }, limitMs);
  timer.unref();
});
