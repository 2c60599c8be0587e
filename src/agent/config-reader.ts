/**
 * The config validator's error collector: reads values by path, records an
 * error naming the path for every bad one, and keeps going so every error is
 * reported at once.
 */
import { editDistance } from '../shared/edit-distance.js';
import { isPlainObject } from '../shared/guards.js';
import { formatDuration, parseDurationDetailed } from '../shared/duration.js';

export type Obj = Record<string, unknown>;

export const isObj: (v: unknown) => v is Obj = isPlainObject;

/** A value echoed in a message: JSON-quoted and cut at 80 characters (a 1 MiB value is not repeated back). */
export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${quote(v)}`;
  if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'bigint') return typeof v;
  const s = String(v);
  return `${typeof v} ${s.length > 80 ? `${s.slice(0, 80)}…` : s}`;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** Unknown keys past this many errors get no "did you mean" (the list is cut at 20 anyway). */
const SUGGEST_LIMIT = 50;

function squash(s: string): string {
  return s.toLowerCase().replace(/[-_]/g, '');
}

function suggest(key: string, allowed: readonly string[]): string {
  if (key.length > 64) return '';
  const k = squash(key);
  const hit = allowed.find((a) => squash(a) === k) ?? allowed.find((a) => editDistance(squash(a), k) <= 2);
  return hit ? ` (did you mean "${hit}"?)` : '';
}

/** Collects errors; each reader returns undefined when the key is absent or null, NaN-ish when bad. */
export class Reader {
  readonly errors: string[] = [];

  err(path: string, msg: string): void {
    this.errors.push(`${path}: ${msg}`);
  }

  /** A mapping's keys must all be known. Returns the mapping ({} when absent). */
  section(v: unknown, path: string, allowed: readonly string[]): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) {
      this.err(path, `expected a mapping, got ${describe(v)}`);
      return {};
    }
    for (const k of Object.keys(v)) {
      if (allowed.includes(k)) continue;
      // Suggestions cost an edit distance per known key: only for errors that will be shown.
      const hint = this.errors.length < SUGGEST_LIMIT ? suggest(k, allowed) : '';
      this.err(join(path, k), `unknown key${hint}`);
    }
    return v;
  }

  str(obj: Obj, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.err(join(path, key), `expected a string, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  bool(obj: Obj, key: string, path: string, dflt: boolean): boolean {
    const v = obj[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.err(join(path, key), `expected true or false, got ${describe(v)}`);
    return v === true;
  }

  /** Duration in ms; NaN when present but invalid (so cross-checks stay quiet). */
  duration(obj: Obj, key: string, path: string, dflt: number, minMs: number): number {
    const v = obj[key];
    const p = join(path, key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string') {
      this.err(p, `expected a duration with a unit like "60s", got ${describe(v)}`);
      return NaN;
    }
    const r = parseDurationDetailed(v);
    if (!r.ok) {
      this.err(p, `bad duration ${quote(v)}: ${r.message}`);
      return NaN;
    }
    if (r.ms < minMs || r.ms <= 0) {
      this.err(p, `must be at least ${formatDuration(Math.max(minMs, 1))}, got ${quote(v)}`);
      return NaN;
    }
    return r.ms;
  }

  jitter(obj: Obj, key: string, path: string, dflt: number): number {
    const v = obj[key];
    const p = join(path, key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.err(p, `expected a number between 0 and 1, got ${describe(v)}`);
      return NaN;
    }
    if (v < 0 || v > 1) {
      this.err(p, `must be between 0 and 1 (a fraction of the interval), got ${v}`);
      return NaN;
    }
    return v;
  }
}
