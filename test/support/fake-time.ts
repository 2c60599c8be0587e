/**
 * Test time: one fake monotonic clock and the timers that run on it, so a
 * test advances time instead of sleeping and asserts exact durations. Pass
 * the same FakeTime as `clock` and `timers` (probeTarget, stages, queryDns,
 * the kube client). Real sockets keep running on the real event loop; only
 * the code's own timeouts wait for advance().
 */
import type { Clock } from '../../src/model/types.js';
import type { Timers } from '../../src/shared/timers.js';

interface Pending { at: number; seq: number; fn: () => void }

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
