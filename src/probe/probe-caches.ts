/**
 * What a probe remembers between probes, owned by whoever runs them: the
 * agent keeps one set for its whole life, one CLI run keeps one, a test makes
 * its own. Each cache is bounded. Never module-level: two owners never share.
 */
import { SecureContextCache } from '../node-config/trust.js';
import { IndexCache } from './index-cache.js';
import { TokenCache, type TokenCacheOptions } from './token-cache.js';

export interface ProbeCaches {
  /** Bearer tokens by realm/service/scope/identity (secrets: memory only). */
  tokens: TokenCache;
  /** Platform summaries of image indexes, by digest (saves counted GETs on Docker Hub). */
  indexes: IndexCache;
  /** One TLS SecureContext per trust set (building one costs tens of ms of CPU). */
  tlsContexts: SecureContextCache;
}

export interface ProbeCacheOptions {
  tokens?: TokenCacheOptions;
  indexes?: { maxEntries: number; maxBytes: number };
  tlsContexts?: { maxEntries?: number };
}

export function createProbeCaches(opts: ProbeCacheOptions = {}): ProbeCaches {
  return {
    tokens: new TokenCache(opts.tokens),
    indexes: new IndexCache(opts.indexes),
    tlsContexts: new SecureContextCache(opts.tlsContexts),
  };
}
