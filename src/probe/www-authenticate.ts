/**
 * WWW-Authenticate parsing (RFC 7235 / RFC 6750), the way containerd reads it
 * (remotes/docker/auth/parse.go): every header, several challenges per
 * header, schemes case-insensitive and limited to bearer/digest/basic, param
 * keys lowercased, values token or quoted-string, sorted bearer > digest >
 * basic. Pure: tested on fixture strings.
 */

export type ChallengeScheme = 'bearer' | 'basic' | 'digest';

export interface Challenge {
  scheme: ChallengeScheme;
  params: Record<string, string>;
}

const PRIORITY: Record<ChallengeScheme, number> = { bearer: 0, digest: 1, basic: 2 };

function isScheme(s: string): s is ChallengeScheme {
  return s === 'bearer' || s === 'basic' || s === 'digest';
}

const SEPARATORS = new Set([' ', '\t', ',', '=', '"']);

interface Cursor {
  s: string;
  i: number;
}

function skip(c: Cursor, chars: string): void {
  while (c.i < c.s.length && chars.includes(c.s[c.i] as string)) c.i++;
}

function readToken(c: Cursor): string {
  const start = c.i;
  while (c.i < c.s.length && !SEPARATORS.has(c.s[c.i] as string)) c.i++;
  return c.s.slice(start, c.i);
}

/**
 * Reads a quoted-string starting at the opening quote; `\x` yields `x`.
 * Unterminated (no closing quote before the end of the header): containerd's
 * expectTokenOrQuoted returns ("", "") — the value is empty and nothing after
 * it is read — so null here, and the caller stops reading this header.
 * Linear: slices between escapes, no per-character concatenation.
 */
function readQuoted(c: Cursor): string | null {
  const parts: string[] = [];
  let from = ++c.i; // past the opening quote
  while (c.i < c.s.length) {
    const ch = c.s.charCodeAt(c.i);
    if (ch === 0x5c /* \\ */) {
      if (c.i + 1 >= c.s.length) break;
      parts.push(c.s.slice(from, c.i), c.s[c.i + 1] as string);
      c.i += 2;
      from = c.i;
    } else if (ch === 0x22 /* " */) {
      parts.push(c.s.slice(from, c.i));
      c.i++;
      return parts.join('');
    } else {
      c.i++;
    }
  }
  c.i = c.s.length;
  return null;
}

function parseOne(header: string, out: Challenge[]): void {
  const c: Cursor = { s: header, i: 0 };
  // params of an unsupported scheme are read but dropped
  let current: { scheme: string; params: Record<string, string> } | null = null;
  while (c.i < c.s.length) {
    skip(c, ' \t,');
    if (c.i >= c.s.length) break;
    if (c.s[c.i] === '"') {
      if (readQuoted(c) === null) return; // stray quoted string: junk
      continue;
    }
    if (c.s[c.i] === '=') {
      c.i++; // stray '=' (e.g. token68 padding): junk
      continue;
    }
    const tok = readToken(c);
    if (tok === '') {
      c.i++;
      continue;
    }
    skip(c, ' \t');
    if (c.s[c.i] === '=' && current) {
      c.i++;
      skip(c, ' \t');
      const value = c.s[c.i] === '"' ? readQuoted(c) : readToken(c);
      const key = tok.toLowerCase();
      if (value === null) {
        current.params[key] = ''; // unterminated quote: containerd sets the key to "" and reads no further
        return;
      }
      if (!Object.hasOwn(current.params, key)) current.params[key] = value;
      continue;
    }
    if (c.s[c.i] === '=') {
      // a param before any scheme: junk
      c.i++;
      skip(c, ' \t');
      if (c.s[c.i] === '"') {
        if (readQuoted(c) === null) return;
      } else readToken(c);
      continue;
    }
    current = { scheme: tok.toLowerCase(), params: {} };
    if (isScheme(current.scheme)) out.push(current as Challenge);
  }
}

/** All supported challenges from every WWW-Authenticate header, best first. */
export function parseWwwAuthenticate(headerValues: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const h of headerValues) parseOne(h, out);
  // Array.prototype.sort is stable: header order kept within a scheme.
  return out.sort((a, b) => PRIORITY[a.scheme] - PRIORITY[b.scheme]);
}

export interface ResourceScope {
  /** "repository", "registry", or "repository(plugin)". */
  type: string;
  /** May contain a host:port ("localhost:5000/foo/bar"). */
  name: string;
  actions: string[];
}

/**
 * `scope := resourcescope [' ' resourcescope]*`,
 * `resourcescope := type ':' name ':' action[,action]*`. The name may hold one
 * `:` (a port), so type ends at the first `:` and actions start after the last.
 * Malformed entries are dropped.
 */
export function parseScope(scope: string): ResourceScope[] {
  const out: ResourceScope[] = [];
  for (const part of scope.split(/\s+/)) {
    if (part === '') continue;
    const first = part.indexOf(':');
    const last = part.lastIndexOf(':');
    if (first <= 0 || last === first) continue;
    const name = part.slice(first + 1, last);
    if (name === '') continue;
    const actions = part
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== '');
    out.push({ type: part.slice(0, first), name, actions });
  }
  return out;
}
