/**
 * Keeping the probe's own credentials out of what a registry says back.
 *
 * A registry (or its token service, or a proxy in front) may echo the
 * request's Authorization into an error message, a header or a challenge.
 * Every string a registry supplies is passed through `Secrets.scrub` where it
 * enters a stage outcome, and `scrubResult` is a last pass over the whole
 * ProbeResult before it leaves the probe (CLI, logs, status page, /probe).
 *
 * `Secrets` collects every credential the probe sent during one probe: the
 * password (or identity token), `user:password`, its base64 (padded,
 * unpadded, URL-safe), whole Authorization values, and Bearer tokens. It
 * holds secrets, so it never serialises them (toJSON and inspect show a count).
 */
import { inspect } from 'node:util';
import type { Credential, ProbeResult } from '../model/types.js';

export const REDACTED = '[redacted]';

/** Longest registry-supplied text kept in a message or detail field. */
export const MAX_REGISTRY_TEXT = 512;

function base64Forms(text: string): string[] {
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  const unpadded = b64.replace(/=+$/, '');
  const url = unpadded.replace(/\+/g, '-').replace(/\//g, '_');
  return [b64, unpadded, url];
}

export class Secrets {
  readonly #values = new Set<string>();
  /** Longest first, so "user:pass" goes before "pass"; rebuilt lazily. */
  #sorted: string[] | null = null;

  /** Add raw secret strings (empty ones are ignored). Also their JSON- and URL-escaped forms. */
  add(...values: (string | undefined)[]): this {
    for (const v of values) {
      if (v === undefined || v === '') continue;
      this.#values.add(v);
      const json = JSON.stringify(v).slice(1, -1);
      if (json !== v) this.#values.add(json);
      const uri = encodeURIComponent(v);
      if (uri !== v) this.#values.add(uri);
    }
    this.#sorted = null;
    return this;
  }

  /** A docker-config credential: password or identity token, user:password and its base64 forms. */
  addCredential(c: Credential | undefined): this {
    if (!c) return this;
    const pair = `${c.username}:${c.password}`;
    return this.add(c.password, pair, ...base64Forms(pair));
  }

  /** An Authorization header value the probe sent ("Basic …", "Bearer …"): the value and its credential part. */
  addAuthorization(value: string | undefined): this {
    if (!value) return this;
    const space = value.indexOf(' ');
    return this.add(value, space > 0 ? value.slice(space + 1).trim() : undefined);
  }

  get size(): number {
    return this.#values.size;
  }

  /** `text` with every secret replaced by [redacted]. Linear in text length per secret. */
  scrub(text: string): string {
    if (this.#values.size === 0 || text === '') return text;
    this.#sorted ??= [...this.#values].sort((a, b) => b.length - a.length);
    let out = text;
    for (const s of this.#sorted) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  toJSON(): { secrets: number } {
    return { secrets: this.#values.size };
  }

  [inspect.custom](): string {
    return `Secrets { ${this.#values.size} }`;
  }
}

/**
 * Registry-supplied text made safe to show: secrets removed, control
 * characters (ANSI escapes, line breaks) written as \xNN / \uNNNN, cut to
 * `max` characters. Secrets go first, so an escape cannot split one.
 */
export function cleanRegistryText(text: string, secrets?: Secrets, max = MAX_REGISTRY_TEXT): string {
  const scrubbed = secrets ? secrets.scrub(text) : text;
  // eslint-disable-next-line no-control-regex
  const escaped = scrubbed.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => {
    const code = ch.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** Every string in a JSON-like value, scrubbed (a new value; the input is not changed). */
export function scrubValue<T>(value: T, secrets: Secrets): T {
  if (secrets.size === 0) return value;
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return secrets.scrub(v);
    if (v === null || typeof v !== 'object' || depth > 64) return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[secrets.scrub(k)] = walk(x, depth + 1);
    return out;
  };
  return walk(value, 0) as T;
}

/**
 * The whole ProbeResult with every credential the probe sent removed from
 * every string (messages, hints, hosts, step details). The last pass before a
 * result leaves the probe.
 */
export function scrubResult(result: ProbeResult, secrets: Secrets): ProbeResult {
  return scrubValue(result, secrets);
}
