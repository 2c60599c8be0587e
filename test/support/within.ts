/**
 * Bounds for every wait on a socket, server or child-process event, so a
 * broken test fails with a message naming what it waited for instead of
 * hanging the suite. The bound is a real timer (unref'd): a test's own time
 * stays fake, only a hang is cut off.
 */

/** `promise`, or a rejection naming `what` when it has not settled within `ms` (real time). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** Resolves once `cond()` is true, polling every few ms; rejects naming `what` after `ms` (real time). */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const stop = new AbortController();
  const poll = (async (): Promise<void> => {
    while (!stop.signal.aborted && !cond()) await new Promise((r) => setTimeout(r, 5));
  })();
  try {
    await within(poll, ms, what);
  } finally {
    stop.abort();
  }
}

/** A one-shot event of `emitter` as a promise, bounded by `ms`. */
export function once(
  emitter: { once(event: string, fn: (...args: unknown[]) => void): unknown },
  event: string,
  ms: number,
  what: string,
): Promise<unknown[]> {
  return within(
    new Promise<unknown[]>((resolve) => {
      emitter.once(event, (...args) => resolve(args));
    }),
    ms,
    what,
  );
}
