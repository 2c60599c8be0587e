/**
 * Bearer token cache, keyed by realm + service + scope + credential identity
 * (a hash of the username; never the password). Holds secrets: in memory
 * only, never serialised (toJSON and inspect show the size, not the tokens).
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';

export interface TokenKeyParts {
  realm: string;
  service?: string | undefined;
  scope?: string | undefined;
  /** The credential's username; undefined for anonymous. */
  username?: string | undefined;
}

/** Stable cache key; the username enters only as a SHA-256 prefix. */
export function tokenCacheKey(parts: TokenKeyParts): string {
  const who = parts.username === undefined ? 'anonymous' : `user:${createHash('sha256').update(parts.username).digest('hex').slice(0, 16)}`;
  return [parts.realm, parts.service ?? '', parts.scope ?? '', who].join('\n');
}

export interface CachedToken {
  token: string;
  /** Wall-clock epoch ms at which the token expires. */
  expiresAt: number;
  /** Seconds of life left (from the cache's clock). */
  expiresInSeconds: number;
  /** When the token service said the token expires (epoch ms; `expires_in` uncapped), for the expiry metric. */
  tokenExpiresAt: number;
}

export interface TokenCacheOptions {
  /** Wall clock, epoch ms (Date.now by default). */
  wallNow?: () => number;
  /** A token this close to expiry is treated as expired. Default 5 s. */
  marginSeconds?: number;
  /** Most tokens kept; the oldest stored is dropped first. Default 1024. */
  maxEntries?: number;
}

/** Token spec: expires_in defaults to 60 s when absent (pull-path-facts §1.4). */
export const DEFAULT_EXPIRES_IN = 60;

/**
 * Longest a token is kept, whatever `expires_in` says (1e308 would otherwise
 * cache it for ever): a revoked or rotated credential is noticed within an hour.
 */
export const MAX_EXPIRES_IN = 3600;

/**
 * When a token expires by what its token service said (epoch ms): issued_at (or now) plus
 * `expires_in` (60 s when absent or not a positive number), never later than now + expires_in.
 */
export function tokenExpiry(nowMs: number, expiresInSeconds: unknown, issuedAt?: string | number): number {
  const life =
    typeof expiresInSeconds === 'number' && Number.isFinite(expiresInSeconds) && expiresInSeconds > 0
      ? expiresInSeconds
      : DEFAULT_EXPIRES_IN;
  const issued = typeof issuedAt === 'number' ? issuedAt : issuedAt ? Date.parse(issuedAt) : Number.NaN;
  const at = nowMs + life * 1000;
  return Number.isFinite(issued) ? Math.min(at, issued + life * 1000) : at;
}

/** The lifetime a token is kept for: `expires_in` when it is a positive finite number, capped; else the default. */
export function tokenLifetime(expiresInSeconds: unknown): number {
  return typeof expiresInSeconds === 'number' && Number.isFinite(expiresInSeconds) && expiresInSeconds > 0
    ? Math.min(expiresInSeconds, MAX_EXPIRES_IN)
    : DEFAULT_EXPIRES_IN;
}

export class TokenCache {
  readonly #entries = new Map<string, { token: string; expiresAt: number; tokenExpiresAt: number }>();
  readonly #wallNow: () => number;
  readonly #marginMs: number;
  readonly #maxEntries: number;

  constructor(opts: TokenCacheOptions = {}) {
    this.#wallNow = opts.wallNow ?? Date.now;
    this.#marginMs = (opts.marginSeconds ?? 5) * 1000;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 1024);
  }

  get(key: string): CachedToken | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    const now = this.#wallNow();
    if (e.expiresAt - this.#marginMs <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return {
      token: e.token,
      expiresAt: e.expiresAt,
      expiresInSeconds: Math.floor((e.expiresAt - now) / 1000),
      tokenExpiresAt: e.tokenExpiresAt,
    };
  }

  /**
   * Store a token. `issuedAt` (RFC 3339 string or epoch ms) is honoured to
   * shorten the lifetime of a token issued a while ago, never to lengthen it
   * past now + expiresIn (a token server clock running ahead of ours).
   */
  set(key: string, token: string, expiresInSeconds?: number, issuedAt?: string | number, tokenExpiresAt?: number): void {
    const ttl = tokenLifetime(expiresInSeconds);
    const now = this.#wallNow();
    let expiresAt = now + ttl * 1000;
    const issued = typeof issuedAt === 'number' ? issuedAt : issuedAt ? Date.parse(issuedAt) : Number.NaN;
    if (Number.isFinite(issued)) expiresAt = Math.min(expiresAt, issued + ttl * 1000);
    if (expiresAt - this.#marginMs <= now) return; // already (nearly) expired: not worth keeping
    this.#entries.delete(key); // re-stored: now the newest
    this.#entries.set(key, { token, expiresAt, tokenExpiresAt: tokenExpiresAt ?? expiresAt });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  toJSON(): { size: number } {
    return { size: this.#entries.size };
  }

  [inspect.custom](): string {
    return `TokenCache { size: ${this.#entries.size} }`;
  }
}
