/**
 * A small deterministic fuzzer for the pure parsers: a seeded PRNG
 * (mulberry32), mutators over realistic starting texts (byte flips, splices,
 * repetitions, control characters, huge numbers, parser-specific tokens),
 * plain random bytes, and a runner that times every call in CPU time
 * (process.cpuUsage, so other processes' load does not count) and keeps
 * every unexpected exception with the input index and an excerpt.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeSync } from 'node:fs';

/** FUZZ_TRACE=1 writes every input before its call (to find an input that never returns). */
const TRACE = process.env['FUZZ_TRACE'] === '1';

export type Rng = () => number;

/** mulberry32: fast, 32-bit state, good enough for input generation. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)] as T;

/** Tokens that trip parsers of any kind. */
export const COMMON_TOKENS: readonly string[] = [
  '\0',
  '\x1b[31m',
  '\x1b]0;x\x07',
  '\r',
  '\n',
  '\r\n',
  '\t',
  '\u2028',
  '\ufeff',
  '\ud800',
  '\udfff',
  '\u00e9',
  '\u{1F600}',
  '"',
  "'",
  '\\',
  '\\"',
  '`',
  '=',
  ',',
  ';',
  ':',
  '::',
  '/',
  '//',
  '@',
  '#',
  '%',
  '%00',
  '*',
  '?',
  '[',
  ']',
  '{',
  '}',
  '(',
  ')',
  '1e308',
  '-1e308',
  '9'.repeat(40),
  '-0',
  'NaN',
  'Infinity',
  '0x10',
  '1_000',
  '4294967296',
  '18446744073709551616',
  '.',
  '..',
  '-',
  '_',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  ' ',
  '  ',
];

/** Every string value anywhere in a JSON document (conformance tables hold inputs as strings). */
export function jsonStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) jsonStrings(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) jsonStrings(v, out);
  return out;
}

/** Text of every regular file under `dir` (recursively) whose name passes `keep`. */
export function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p, keep));
    else if (st.isFile() && keep(name) && st.size < 1_000_000) out.push(readFileSync(p, 'utf8'));
  }
  return out;
}

export interface Corpus {
  seeds: readonly string[];
  /** Parser-specific tokens (keywords, separators) spliced in by the mutators. */
  tokens: readonly string[];
  /** Structure-aware generators for tricks a byte mutator rarely finds (deep nesting, aliases, long repetitions). */
  tricks?: readonly ((rng: Rng) => string)[];
  /** Cap on the length of ordinary mutated inputs (tricks may be longer). */
  maxLen: number;
}

function randomBytes(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng();
    // mostly ASCII, some control chars, some wider code points
    s +=
      r < 0.7
        ? String.fromCharCode(32 + int(rng, 95))
        : r < 0.85
          ? String.fromCharCode(int(rng, 32))
          : String.fromCharCode(int(rng, 0x3000));
  }
  return s;
}

function mutateOnce(rng: Rng, s: string, c: Corpus): string {
  const at = int(rng, s.length + 1);
  const end = Math.min(s.length, at + int(rng, 16));
  switch (int(rng, 10)) {
    case 0:
      return s.slice(0, at) + String.fromCharCode(int(rng, 256)) + s.slice(at + 1); // replace a char
    case 1:
      return s.slice(0, at) + s.slice(end); // delete a range
    case 2:
      return s.slice(0, at) + pick(rng, c.tokens) + s.slice(at); // parser token
    case 3:
      return s.slice(0, at) + pick(rng, COMMON_TOKENS) + s.slice(at); // hostile token
    case 4:
      return s.slice(0, at) + s.slice(at, end).repeat(2 + int(rng, 20)) + s.slice(end); // repeat a range
    case 5: {
      // splice from another seed
      const o = pick(rng, c.seeds);
      const oa = int(rng, o.length + 1);
      return s.slice(0, at) + o.slice(oa, oa + int(rng, 64)) + s.slice(at);
    }
    case 6:
      return s.slice(0, at) + randomBytes(rng, 1 + int(rng, 8)) + s.slice(at);
    case 7:
      return s.slice(0, at) + s.slice(at, end).toUpperCase() + s.slice(end);
    case 8: {
      // swap two lines
      const lines = s.split('\n');
      const i = int(rng, lines.length);
      const j = int(rng, lines.length);
      [lines[i], lines[j]] = [lines[j] as string, lines[i] as string];
      return lines.join('\n');
    }
    default:
      return s.slice(0, at) + pick(rng, ['0', '9', '-1', '1e308', '99999999999999999999', '0.0000001', '1.5']) + s.slice(end);
  }
}

/** One input: a mutated seed (most), random bytes, a long repetition, or a structure-aware trick. */
export function nextInput(rng: Rng, c: Corpus): string {
  const r = rng();
  if (c.tricks?.length && r < 0.01) return pick(rng, c.tricks)(rng);
  if (r < 0.04) return randomBytes(rng, int(rng, c.maxLen));
  if (r < 0.045) {
    // long repetition of a token or a slice of a seed
    const seed = pick(rng, c.seeds);
    const a = int(rng, seed.length);
    const unit = rng() < 0.5 ? pick(rng, c.tokens) : seed.slice(a, a + 1 + int(rng, 24));
    return unit.repeat(Math.max(1, Math.floor((200 + int(rng, 5000)) / Math.max(1, unit.length))));
  }
  let s = c.seeds.length ? pick(rng, c.seeds) : '';
  const n = 1 + int(rng, 6);
  for (let i = 0; i < n; i++) s = mutateOnce(rng, s, c);
  return s.length > c.maxLen && rng() < 0.9 ? s.slice(0, c.maxLen) : s;
}

export interface FuzzFailure {
  index: number;
  error: string;
  excerpt: string;
}

export interface FuzzReport {
  runs: number;
  failures: FuzzFailure[];
  /** Calls over the CPU limit. */
  slow: { index: number; ms: number; length: number; excerpt: string }[];
  slowest: { index: number; ms: number; length: number; excerpt: string };
  wallMs: number;
  /** CPU time of the whole run (this process, all threads: includes GC). */
  cpuMs: number;
  /** True when the wall budget ran out before `runs` inputs were tried. */
  outOfTime: boolean;
}

export const excerpt = (s: string, n = 160): string => JSON.stringify(s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

export interface FuzzOptions {
  seed: number;
  runs: number;
  corpus: Corpus;
  /** Call the parser; throw to report. */
  call: (input: string, rng: Rng) => void;
  /** An exception the parser is documented to throw (its named error). */
  allowed: (err: unknown) => boolean;
  limitMs: number;
  /** Stop early past this much CPU time (a super-linear parser must not hang the suite). */
  budgetMs: number;
  /** Extra fixed inputs tried first (regressions and tricks at their largest). */
  fixed?: readonly string[];
}

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

export function fuzz(o: FuzzOptions): FuzzReport {
  const rng = prng(o.seed);
  const failures: FuzzFailure[] = [];
  const slow: FuzzReport['slow'] = [];
  let slowest = { index: -1, ms: 0, length: 0, excerpt: '""' };
  const fixed = o.fixed ?? [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let i = 0;
  let outOfTime = false;
  for (; i < o.runs + fixed.length; i++) {
    if (i < o.runs && (i & 255) === 0 && cpuMs(process.cpuUsage(cpu0)) > o.budgetMs) {
      outOfTime = true;
      break;
    }
    // Fixed inputs run after the generated ones: measured cold, before the JIT has warmed up,
    // a first parse costs several times what the same input costs a moment later.
    const input = i >= o.runs ? (fixed[i - o.runs] as string) : nextInput(rng, o.corpus);
    if (TRACE) writeSync(2, `${i} ${excerpt(input, 200)}\n`);
    const callRng = prng(o.seed ^ i);
    const before = process.cpuUsage();
    try {
      o.call(input, callRng);
    } catch (err) {
      if (!o.allowed(err) && failures.length < 20) {
        const e = err as { name?: unknown; message?: unknown; stack?: unknown };
        failures.push({
          index: i,
          error: `${String(e.name)}: ${String(e.message).slice(0, 200)} @ ${String(e.stack).split('\n')[1]?.trim() ?? ''}`,
          excerpt: excerpt(input),
        });
      }
    }
    let ms = cpuMs(process.cpuUsage(before));
    // Over the limit once may be a garbage collection or a deoptimisation landing on this
    // input; a really super-linear input is slow every time. Measure it twice more, keep the best.
    for (let again = 0; again < 2 && ms > o.limitMs; again++) {
      const t = process.cpuUsage();
      try {
        o.call(input, prng(o.seed ^ i));
      } catch {
        /* judged on the first call */
      }
      ms = Math.min(ms, cpuMs(process.cpuUsage(t)));
    }
    if (ms > slowest.ms) slowest = { index: i, ms, length: input.length, excerpt: excerpt(input, 80) };
    if (ms > o.limitMs) {
      slow.push({ index: i, ms, length: input.length, excerpt: excerpt(input, 1000) });
      if (slow.length >= 5) {
        // enough to show the problem; the rest would only burn time
        i++;
        break;
      }
    }
  }
  return { runs: i, failures, slow, slowest, wallMs: performance.now() - t0, cpuMs: cpuMs(process.cpuUsage(cpu0)), outOfTime };
}

/** The project's named errors: a class name ending in "Error" that is not a JS built-in, with a PULLPROBE_ code. */
export function isNamedError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const builtins = [
    'Error',
    'TypeError',
    'RangeError',
    'SyntaxError',
    'ReferenceError',
    'EvalError',
    'URIError',
    'AggregateError',
    'InternalError',
  ];
  const code = (err as { code?: unknown }).code;
  return !builtins.includes(err.name) && typeof code === 'string' && code.startsWith('PULLPROBE_');
}
