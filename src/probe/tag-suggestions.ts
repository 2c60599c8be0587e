/**
 * "Nearest existing tags" for a missing tag, with bounded work whatever the
 * registry's tags/list holds: at most MAX_TAGS_CONSIDERED distinct tags, none
 * longer than a valid tag (128 characters), and a banded edit distance that
 * gives up past MAX_TAG_DISTANCE or past the current third-best.
 */
import { editDistance } from '../shared/edit-distance.js';

export const MAX_TAGS_CONSIDERED = 5000;
/** distribution/reference: a tag is at most 128 characters. */
export const MAX_TAG_LENGTH = 128;
/** Farther than this, a tag is no useful suggestion. */
export const MAX_TAG_DISTANCE = 8;

/** Up to `max` existing tags closest to `wanted` (edit distance, then name). */
export function nearestTags(wanted: string, tags: readonly unknown[], max = 3): string[] {
  if (wanted.length > MAX_TAG_LENGTH || max <= 0) return [];
  const best: Array<{ t: string; d: number }> = [];
  const seen = new Set<string>();
  for (const t of tags) {
    if (seen.size >= MAX_TAGS_CONSIDERED) break;
    if (typeof t !== 'string' || t.length === 0 || t.length > MAX_TAG_LENGTH || seen.has(t)) continue;
    seen.add(t);
    const limit = best.length < max ? MAX_TAG_DISTANCE : (best[best.length - 1] as { d: number }).d;
    const d = editDistance(wanted, t, limit);
    if (d > limit) continue;
    best.push({ t, d });
    best.sort((x, y) => x.d - y.d || x.t.localeCompare(y.t));
    if (best.length > max) best.pop();
  }
  return best.map((x) => x.t);
}
