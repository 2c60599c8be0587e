/**
 * Go's time.ParseDuration, as containerd reads hosts.toml `dial_timeout`: an optional
 * sign, then "0" alone or one or more <number><unit> (number: digits, digits "." digits,
 * ". digits"; unit: ns us µs μs ms s m h), at most 2^63-1 ns. One pass over the text,
 * numbers capped as Go caps them, so a long string costs linear time.
 */

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX = (1n << 63n) - 1n;
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Nanoseconds, or null when Go would return an error. */
export function parseGoDuration(text: string): bigint | null {
  let s = text;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return null;
  let total = 0n;
  let i = 0;
  while (i < s.length) {
    if (!(s[i] === '.' || isDigit(s[i]))) return null;
    // Integer part: Go's leadingInt fails past 2^63.
    const intStart = i;
    let v = 0n;
    for (; isDigit(s[i]); i++) {
      v = v * 10n + BigInt(Number(s[i]));
      if (v > 1n << 63n) return null;
    }
    const pre = i > intStart;
    // Fraction: Go's leadingFraction stops adding digits once they no longer fit.
    let f = 0n;
    let scale = 1n;
    let post = false;
    if (s[i] === '.') {
      i++;
      const fracStart = i;
      let overflow = false;
      for (; isDigit(s[i]); i++) {
        if (overflow) continue;
        if (f > MAX / 10n) {
          overflow = true;
          continue;
        }
        f = f * 10n + BigInt(Number(s[i]));
        scale *= 10n;
      }
      post = i > fracStart;
    }
    if (!pre && !post) return null;
    const unitStart = i;
    while (i < s.length && s[i] !== '.' && !isDigit(s[i])) i++;
    const unit = UNIT_NS[s.slice(unitStart, i)];
    if (unit === undefined) return null; // missing or unknown unit
    if (v > (1n << 63n) / unit) return null;
    v *= unit;
    if (f > 0n) {
      v += BigInt(Math.floor(Number(f) * (Number(unit) / Number(scale))));
      if (v > 1n << 63n) return null;
    }
    total += v;
    if (total > 1n << 63n) return null;
  }
  if (neg) return -total;
  return total > MAX ? null : total;
}
