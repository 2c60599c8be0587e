/**
 * Test time: one fake monotonic clock and the timers that run on it, so a
 * test advances time instead of sleeping and asserts exact durations. Pass
 * the same FakeTime as `clock` and `timers` (probeTarget, stages, queryDns,
 * the kube client). Real sockets keep running on the real event loop; only
 * the code's own timeouts wait for advance().
 */
import type { Clock } from '../../src/model/types.js';
import type { Timers } from '../../src/shared/timers.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeTime implements Clock, Timers {
  #now: number;
  #seq = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(start = 1_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.#pending.set(seq, { at: this.#now + Math.max(0, ms), seq, fn });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#pending.delete(handle);
  }

  /** Timers not yet fired or cleared. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Move the clock forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.#pending.values()) {
        if (p.at <= end && (next === undefined || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      }
      if (next === undefined) break;
      this.#pending.delete(next.seq);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
  }
}

/**
 * Await `p` while firing the timers already due on `time` (0 ms waits, a next
 * address started at the deadline), without moving the clock; bounded by
 * `ms` of real time.
 */
export async function settle<T>(time: FakeTime, p: Promise<T>, what: string, ms = 5000): Promise<T> {
  const done = new AbortController();
  const tracked = p.finally(() => {
    done.abort();
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
  });
  const pump = (async (): Promise<void> => {
    while (!done.signal.aborted) {
      time.advance(0);
      await new Promise((r) => setImmediate(r));
    }
  })();
  try {
    return await Promise.race([tracked, bound]);
  } finally {
    done.abort();
    clearTimeout(timer);
    await pump;
  }
}

/** Tracks whether a promise has settled, so a test can assert it is still waiting. */
export function track<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  void p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  return { p, settled: () => done };
}
