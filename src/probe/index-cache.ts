/**
 * Image indexes already read, by digest — only their platform summary
 * (platform.ts IndexSummary), bounded by entry count and by an estimate of
 * the bytes held, oldest dropped first. A digest names immutable content, so
 * an index never needs a second GET: on Docker Hub a manifest GET counts as
 * a pull against the rate limit (HEAD does not), and the agent probes every
 * interval. A registry that answers a new digest on every probe can then
 * cost at most `maxBytes`, never more.
 */
import type { IndexEntry, IndexSummary } from '../model/platform.js';

export interface IndexCacheLimits {
  maxEntries: number;
  maxBytes: number;
}

/** Rough heap cost of a summary: UTF-16 strings plus per-object overhead. */
export function summaryBytes(key: string, s: IndexSummary): number {
  let n = 64 + key.length * 2;
  const entry = (e: IndexEntry): number =>
    96 +
    2 *
      (e.digest.length +
        (e.mediaType?.length ?? 0) +
        e.platform.os.length +
        e.platform.architecture.length +
        (e.platform.variant?.length ?? 0));
  for (const e of s.entries) n += entry(e);
  for (const [k, e] of s.matched) n += 64 + 2 * k.length + (e ? entry(e) : 0);
  return n;
}

export class IndexCache {
  readonly #map = new Map<string, { summary: IndexSummary; bytes: number }>();
  readonly #limits: IndexCacheLimits;
  #bytes = 0;

  constructor(limits: IndexCacheLimits = { maxEntries: 256, maxBytes: 1024 * 1024 }) {
    this.#limits = limits;
  }

  get(digest: string): IndexSummary | undefined {
    return this.#map.get(digest)?.summary;
  }

  set(digest: string, summary: IndexSummary): void {
    this.delete(digest);
    const bytes = summaryBytes(digest, summary);
    if (bytes > this.#limits.maxBytes) return;
    this.#map.set(digest, { summary, bytes });
    this.#bytes += bytes;
    while (this.#map.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#map.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  delete(digest: string): void {
    const had = this.#map.get(digest);
    if (!had) return;
    this.#bytes -= had.bytes;
    this.#map.delete(digest);
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  get size(): number {
    return this.#map.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  #turn: Promise<unknown> = Promise.resolve();

  /**
   * Run `read` when no other index read of this owner is running. Reading an
   * index holds its body (up to 4 MiB), its text and the parsed tree at once:
   * one at a time keeps a CLI run or the agent to one index in memory however
   * many targets are probed together.
   */
  exclusive<T>(read: () => Promise<T>): Promise<T> {
    const mine = this.#turn.then(read, read);
    this.#turn = mine.then(
      () => undefined,
      () => undefined,
    );
    return mine;
  }
}
