/**
 * Levenshtein distance: nearest tags in hints, "did you mean" for config keys.
 * With `max`, only distances up to `max` are computed exactly: the work is
 * banded to |i - j| <= max and stops as soon as a whole row exceeds `max`,
 * so comparing against thousands of long registry-supplied strings stays
 * cheap. Anything farther comes back as `max + 1`.
 */
export function editDistance(a: string, b: string, max = Number.POSITIVE_INFINITY): number {
  const limit = Math.max(0, max);
  if (Math.abs(a.length - b.length) > limit) return Math.floor(limit) + 1;
  if (!Number.isFinite(limit)) return fullDistance(a, b);
  const k = Math.floor(limit);
  const over = k + 1;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j <= k ? j : over;
  for (let i = 1; i <= a.length; i++) {
    const lo = Math.max(1, i - k);
    const hi = Math.min(b.length, i + k);
    // Cells just outside the band read as "too far"; cells inside are all written below.
    cur[lo - 1] = lo === 1 ? (i <= k ? i : over) : over;
    let rowMin = lo === 1 ? (cur[0] as number) : over;
    for (let j = lo; j <= hi; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const v = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost, over);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (hi < b.length) cur[hi + 1] = over;
    if (rowMin > k) return over;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[b.length] as number, over);
}

function fullDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}
