/**
 * Go-style durations ("60s", "1m30s", "500ms", "1.5h"), as in Go's
 * time.ParseDuration: one or more <decimal><unit> pairs, units ns, us (µs),
 * ms, s, m, h, an optional leading sign. Unlike Go, a bare number — even
 * "0" — is refused: in a config file "60" is ambiguous, so we ask for a unit.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const PAIR = /(\d+(?:\.\d*)?|\.\d+)([a-zµμ]+)/y;

const SHAPE = 'expected <number><unit> pairs like "60s", "1m30s" or "500ms"';

/** On failure, `message` is the reason only; callers add the input and its path. */
export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

/** No real duration is longer; refusing longer input keeps every message and every step small. */
export const MAX_DURATION_CHARS = 100;

/**
 * One left-to-right pass (each regex is anchored or sticky and cannot
 * backtrack across pairs), so the cost is linear in the input.
 */
export function parseDurationDetailed(input: string): DurationResult {
  const s = input.trim();
  if (s === '') return { ok: false, message: 'empty' };
  if (s.length > MAX_DURATION_CHARS) return { ok: false, message: `too long (at most ${MAX_DURATION_CHARS} characters)` };
  if (/^[-+]?(\d+(\.\d*)?|\.\d+)$/.test(s)) {
    return { ok: false, message: `a bare number needs a unit (write e.g. "${s}s")` };
  }
  let i = 0;
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    if (s[0] === '-') sign = -1;
    i = 1;
  }
  if (i === s.length) return { ok: false, message: SHAPE };
  let total = 0;
  while (i < s.length) {
    PAIR.lastIndex = i;
    const m = PAIR.exec(s);
    if (!m) return { ok: false, message: SHAPE };
    const [, num = '', unit = ''] = m;
    const factor = UNIT_MS[unit];
    if (factor === undefined) {
      return { ok: false, message: `unknown unit "${unit}" (use ms, s, m or h)` };
    }
    total += Number(num) * factor;
    i = PAIR.lastIndex;
  }
  if (!Number.isFinite(total)) return { ok: false, message: 'out of range' };
  return { ok: true, ms: sign * total };
}

/** Milliseconds, or null when `s` is not a Go-style duration with units. */
export function parseDuration(s: string): number | null {
  const r = parseDurationDetailed(s);
  return r.ok ? r.ms : null;
}

/** Render milliseconds back in Go style ("1m30s", "500ms"), for messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out = '';
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1_000);
  rest -= s * 1_000;
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (s) out += `${s}s`;
  if (rest) out += `${Number(rest.toFixed(3))}ms`;
  return (neg ? '-' : '') + out;
}
