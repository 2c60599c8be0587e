/**
 * Go's `filepath.Match` for one host label, as the kubelet keyring applies it to each
 * `.`-separated label of a credential key or `matchImages` entry: `*` (any run of
 * characters), `?` (one character), `[…]` classes with ranges and `^` negation, `\`
 * escapes. A malformed pattern (unclosed `[`, trailing `\`) matches nothing, as the
 * kubelet treats Go's ErrBadPattern.
 *
 * No regular expression is built from the pattern: the pattern is split at its stars and
 * each piece is found leftmost in turn, which is O(label × pattern) in the worst case
 * (a backtracking `.*a.*a…b` regex is exponential in the number of stars).
 */

/** A string as Go's runes: one number per code point (not per UTF-16 unit, not per grapheme). */
const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0) ?? 0);

type Single = { any: true } | { any: false; ranges: Array<[number, number]>; negated: boolean };

/** Pieces between stars; null for a malformed pattern. */
function compile(glob: string): Single[][] | null {
  const pieces: Single[][] = [[]];
  const cp = codePoints(glob);
  let i = 0;
  /** Go's getEsc inside a class: "-" or "]" here is malformed; "\" escapes; the class must go on. */
  const classChar = (): number | null => {
    if (i >= cp.length || cp[i] === 0x2d /* - */ || cp[i] === 0x5d /* ] */) return null;
    if (cp[i] === 0x5c /* \ */ && ++i >= cp.length) return null;
    const r = cp[i++] ?? null;
    return i >= cp.length ? null : r;
  };
  while (i < cp.length) {
    const c = cp[i] ?? 0;
    const piece = pieces[pieces.length - 1] ?? [];
    if (c === 0x2a /* * */) {
      while (cp[i] === 0x2a) i++;
      pieces.push([]);
    } else if (c === 0x3f /* ? */) {
      piece.push({ any: true });
      i++;
    } else if (c === 0x5b /* [ */) {
      i++;
      const negated = cp[i] === 0x5e; /* ^ */
      if (negated) i++;
      const ranges: Array<[number, number]> = [];
      for (;;) {
        if (cp[i] === 0x5d /* ] */ && ranges.length > 0) {
          i++;
          break;
        }
        const lo = classChar();
        if (lo === null) return null;
        let hi = lo;
        if (cp[i] === 0x2d /* - */) {
          i++;
          const h = classChar();
          if (h === null) return null;
          hi = h;
        }
        ranges.push([lo, hi]);
      }
      piece.push({ any: false, ranges, negated });
    } else {
      if (c === 0x5c /* \ */ && ++i >= cp.length) return null; // trailing "\"
      const lit = cp[i++] ?? 0;
      piece.push({ any: false, ranges: [[lit, lit]], negated: false });
    }
  }
  return pieces;
}

const matchOne = (m: Single, c: number): boolean => m.any || m.ranges.some(([lo, hi]) => lo <= c && c <= hi) !== m.negated;

/** Does piece p match text at position at? */
function pieceAt(p: Single[], text: number[], at: number): boolean {
  if (at + p.length > text.length) return false;
  for (let k = 0; k < p.length; k++) if (!matchOne(p[k] as Single, text[at + k] ?? -1)) return false;
  return true;
}

export function labelMatch(glob: string, label: string): boolean {
  if (!/[*?[\\]/.test(glob)) return glob === label;
  const pieces = compile(glob);
  if (pieces === null) return false;
  const text = codePoints(label);
  const head = pieces[0] ?? [];
  if (pieces.length === 1) return head.length === text.length && pieceAt(head, text, 0);
  const tail = pieces[pieces.length - 1] ?? [];
  if (head.length + tail.length > text.length) return false;
  if (!pieceAt(head, text, 0) || !pieceAt(tail, text, text.length - tail.length)) return false;
  // Middle pieces, each at its leftmost place after the previous one, inside [head, text - tail).
  let at = head.length;
  const end = text.length - tail.length;
  for (const p of pieces.slice(1, -1)) {
    let found = -1;
    for (let s = at; s + p.length <= end; s++) {
      if (pieceAt(p, text, s)) {
        found = s;
        break;
      }
    }
    if (found === -1) return false;
    at = found + p.length;
  }
  return true;
}
