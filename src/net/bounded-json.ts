/**
 * JSON from a registry, read with bounds: a size limit, a nesting limit
 * checked by a linear scan before JSON.parse (a 4 MB "[[[[…" would
 * otherwise build millions of arrays), and an object at the top. Pure.
 */

export type BoundedJson = { ok: true; value: Record<string, unknown> } | { ok: false; problem: string };

export interface JsonBounds {
  /** Longest text accepted, in UTF-16 code units (the caller caps bytes on the wire). */
  maxLength: number;
  /** Deepest nesting of objects/arrays accepted. */
  maxDepth: number;
}

/** Deepest nesting of `[`/`{` outside strings, stopping early once past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
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
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

export function parseBoundedJson(text: string, bounds: JsonBounds): BoundedJson {
  if (text.length > bounds.maxLength) return { ok: false, problem: `${text.length} characters, over the ${bounds.maxLength} limit` };
  const start = /^\s*(.)/.exec(text.slice(0, 64))?.[1];
  if (start !== '{') return { ok: false, problem: start === undefined ? 'an empty body' : 'not a JSON object' };
  if (jsonDepth(text, bounds.maxDepth) > bounds.maxDepth)
    return { ok: false, problem: `JSON nested more than ${bounds.maxDepth} levels deep` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problem: 'not a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}
