/**
 * Joins concurrent calls for the same key onto one promise (Go's
 * singleflight), and keeps a fulfilled value for a short while so a burst of
 * /probe requests costs the registry one probe. Rejections are shared with
 * the callers already waiting but never cached. The cache is bounded: expired
 * entries are swept on insert and the oldest is evicted past `maxEntries`.
 */
import { realClock, type Clock } from '../model/types.js';

export interface SingleFlightOptions {
  /** How long a fulfilled value is served from cache (0 = no cache). */
  cacheMs?: number;
  /** Most cached values kept (default 256). */
  maxEntries?: number;
  clock?: Clock;
}

export interface Flight<V> {
  value: V;
  /** Joined a call already in flight for this key. */
  shared: boolean;
  /** Served from the result cache; fn was not called. */
  cached: boolean;
}

interface CacheEntry<V> {
  value: V;
  at: number;
}

export class SingleFlight<V> {
  readonly #inflight = new Map<string, Promise<V>>();
  /** Insertion order = completion order, so the first entries are the oldest. */
  readonly #cache = new Map<string, CacheEntry<V>>();
  readonly #cacheMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;

  constructor(opts: SingleFlightOptions = {}) {
    this.#cacheMs = Math.max(0, opts.cacheMs ?? 0);
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 256);
    this.#clock = opts.clock ?? realClock;
  }

  async do(key: string, fn: () => Promise<V>): Promise<Flight<V>> {
    const hit = this.#cache.get(key);
    if (hit) {
      if (this.#clock.now() - hit.at < this.#cacheMs) return { value: hit.value, shared: false, cached: true };
      this.#cache.delete(key);
    }
    const running = this.#inflight.get(key);
    if (running) return { value: await running, shared: true, cached: false };

    const p = (async () => fn())();
    this.#inflight.set(key, p);
    p.then(
      (value) => {
        this.#inflight.delete(key);
        this.#remember(key, value);
      },
      () => {
        this.#inflight.delete(key);
      },
    );
    return { value: await p, shared: false, cached: false };
  }

  /** Drop the cached value for key (a config reload, a forced fresh probe). */
  forget(key: string): void {
    this.#cache.delete(key);
  }

  /** Sizes of the internal maps (for tests and debug output). */
  sizes(): { inflight: number; cached: number } {
    return { inflight: this.#inflight.size, cached: this.#cache.size };
  }

  #remember(key: string, value: V): void {
    if (this.#cacheMs === 0) return;
    const now = this.#clock.now();
    this.#cache.delete(key);
    this.#cache.set(key, { value, at: now });
    for (const [k, e] of this.#cache) {
      if (this.#cache.size <= this.#maxEntries && now - e.at < this.#cacheMs) break;
      this.#cache.delete(k);
    }
  }
}
