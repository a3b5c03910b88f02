/**
 * `promise`, or after `ms` whatever `onTimeout` returns (or throws) —
 * whichever comes first. Unlike a bare `Promise.race` with a `setTimeout`,
 * the timer is cleared as soon as the race is decided: a timer left armed
 * keeps a process alive (a test file, a CLI command) until it fires.
 */
export async function raceTimeout<T, U>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err as Error);
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
