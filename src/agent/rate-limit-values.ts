/**
 * The registry's rate-limit headroom as a periodic result reports it: the
 * manifest step's `detail.ratelimit` (Docker Hub's `ratelimit-limit` /
 * `ratelimit-remaining` headers, pull-path-facts §1.6). Pure.
 */
import type { StepResult } from '../model/types.js';

export interface RateLimitValues {
  limit?: number;
  remaining?: number;
}

/**
 * Limit and remaining from the last manifest step that reported each (a
 * probe may read an index and then a platform manifest: the later answer is
 * the fresher count). Empty when the registry sent no rate-limit headers.
 */
export function rateLimitValues(steps: readonly StepResult[]): RateLimitValues {
  const out: RateLimitValues = {};
  for (const step of steps) {
    if (step.stage !== 'manifest' || step.detail === undefined || !('ratelimit' in step.detail)) continue;
    const rl = step.detail.ratelimit; // present means set (exactOptionalPropertyTypes)
    if (rl.limit !== undefined && Number.isFinite(rl.limit)) out.limit = rl.limit;
    if (rl.remaining !== undefined && Number.isFinite(rl.remaining)) out.remaining = rl.remaining;
  }
  return out;
}
