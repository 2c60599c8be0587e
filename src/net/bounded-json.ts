/**
 * JSON from a registry, read with bounds: a size limit, a nesting limit and
 * a limit on the number of objects and arrays, checked by one linear scan before
 * JSON.parse (a 4 MB "[[[[…" would otherwise build millions of arrays, and
 * 4 MB of "{},{},…" 1.4 million objects: more than a capped agent's heap),
 * and an object at the top. Pure.
 */

export type BoundedJson = { ok: true; value: Record<string, unknown> } | { ok: false; problem: string };

export interface JsonBounds {
  /** Longest text accepted, in UTF-16 code units (the caller caps bytes on the wire). */
  maxLength: number;
  /** Deepest nesting of objects/arrays accepted. */
  maxDepth: number;
  /** Most objects and arrays accepted; DEFAULT_MAX_CONTAINERS when left out. */
  maxContainers?: number;
}

/**
 * A real image index of 10,000 manifests (3 MB) has about 25,000 objects and arrays (an entry,
 * its platform, maybe annotations or os.features); the leanest valid 4 MB index (75,000
 * `{"digest":…,"platform":{…}}` entries) 150,000. 200,000 of the costliest kind (one-member
 * objects, each with a key of its own) take ~28 MB of heap, under the agent's 64 MB cap;
 * 4 MB of `{},` would be 1.4 million objects, beyond it.
 */
export const DEFAULT_MAX_CONTAINERS = 200_000;

export interface JsonShape {
  /** Deepest nesting of `[`/`{` seen (the scan stops once past the depth limit). */
  depth: number;
  /** `[` and `{` outside strings seen (the scan stops once past the container limit). */
  containers: number;
}

/** One pass over the text outside strings: nesting depth and objects/arrays count, stopping early once past either limit. */
export function jsonShape(text: string, maxDepth: number, maxContainers: number): JsonShape {
  let depth = 0;
  let deepest = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++containers > maxContainers) break;
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > maxDepth) break;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return { depth: deepest, containers };
}

/** Deepest nesting of `[`/`{` outside strings, stopping early once past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  return jsonShape(text, limit, Number.POSITIVE_INFINITY).depth;
}

export function parseBoundedJson(text: string, bounds: JsonBounds): BoundedJson {
  if (text.length > bounds.maxLength) return { ok: false, problem: `${text.length} characters, over the ${bounds.maxLength} limit` };
  const start = /^\s*(.)/.exec(text.slice(0, 64))?.[1];
  if (start !== '{') return { ok: false, problem: start === undefined ? 'an empty body' : 'not a JSON object' };
  const maxContainers = bounds.maxContainers ?? DEFAULT_MAX_CONTAINERS;
  const shape = jsonShape(text, bounds.maxDepth, maxContainers);
  if (shape.depth > bounds.maxDepth) return { ok: false, problem: `JSON nested more than ${bounds.maxDepth} levels deep` };
  if (shape.containers > maxContainers) return { ok: false, problem: `JSON with more than ${maxContainers} objects and arrays` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problem: 'not a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}
