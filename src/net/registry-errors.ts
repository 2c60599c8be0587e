/**
 * Pure readers for what a registry says besides the status code: the
 * distribution error body `{"errors":[{code,message,detail}]}`, Docker Hub's
 * `ratelimit-*` headers, `Retry-After`, and header-value normalisation.
 */

/** Response headers as undici gives them (lowercased names). */
export type HeaderMap = Record<string, string | string[] | undefined>;

export interface RegistryError {
  code: string;
  message: string;
}

/** Every value of a header (undici joins nothing for set-cookie-like repeats; arrays pass through). */
export function headerValues(headers: HeaderMap, name: string): string[] {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function firstHeader(headers: HeaderMap, name: string): string | undefined {
  return headerValues(headers, name)[0];
}

/** At most this many entries are read from an error body, */
export const MAX_REGISTRY_ERRORS = 16;
/** each code and message cut to these lengths (a registry's text goes into messages: keep it short). */
const MAX_CODE = 64;
const MAX_MESSAGE = 1024;

/**
 * Error entries of a registry error body. Tolerant: junk, HTML, a body
 * without `errors`, or entries without a string `code` yield [] / are skipped.
 * Bounded: the body is already capped by the request (send's maxBody); at
 * most MAX_REGISTRY_ERRORS entries, codes and messages cut short. Messages
 * are the registry's raw words: scrub and escape them (scrub.ts
 * cleanRegistryText) before they reach a message.
 */
export function parseRegistryErrors(body: string): RegistryError[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (!parsed || typeof parsed !== 'object') return [];
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  const out: RegistryError[] = [];
  for (const e of errors) {
    if (out.length >= MAX_REGISTRY_ERRORS) break;
    if (!e || typeof e !== 'object') continue;
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (typeof code !== 'string' || code === '') continue;
    out.push({ code: code.slice(0, MAX_CODE).toUpperCase(), message: typeof message === 'string' ? message.slice(0, MAX_MESSAGE) : '' });
  }
  return out;
}

export interface RateLimit {
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
  /** docker-ratelimit-source: the address being limited. */
  source?: string;
}

/** `100;w=21600` → {value: 100, window: 21600}. */
function parseRateValue(v: string | undefined): { value?: number; window?: number } {
  if (v === undefined) return {};
  const [head, ...params] = v.split(';');
  const out: { value?: number; window?: number } = {};
  const n = Number.parseInt((head ?? '').trim(), 10);
  if (Number.isFinite(n) && /^\s*\d+\s*$/.test(head ?? '')) out.value = n;
  for (const p of params) {
    const m = /^\s*w\s*=\s*(\d+)\s*$/i.exec(p);
    if (m) out.window = Number(m[1]);
  }
  return out;
}

/**
 * Docker Hub's rate-limit headers (pull-path-facts §1.6). No headers → {}
 * (unlimited, or a registry that does not say).
 */
export function ratelimitFromHeaders(headers: HeaderMap): RateLimit {
  const limit = parseRateValue(firstHeader(headers, 'ratelimit-limit'));
  const remaining = parseRateValue(firstHeader(headers, 'ratelimit-remaining'));
  const out: RateLimit = {};
  if (limit.value !== undefined) out.limit = limit.value;
  if (remaining.value !== undefined) out.remaining = remaining.value;
  const w = limit.window ?? remaining.window;
  if (w !== undefined) out.windowSeconds = w;
  const source = firstHeader(headers, 'docker-ratelimit-source');
  if (source) out.source = source.trim();
  return out;
}

/** Retry-After as seconds from now: delta-seconds or an HTTP-date. */
export function retryAfterSeconds(headers: HeaderMap, wallNowMs: number): number | undefined {
  const v = firstHeader(headers, 'retry-after')?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - wallNowMs) / 1000));
}
