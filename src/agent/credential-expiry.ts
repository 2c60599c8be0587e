/**
 * `pullprobe_credential_expiry_timestamp_seconds{registry,source}` values from
 * one result, where the expiry is knowable: the credentials' own (a provider's
 * cacheDuration, an ECR token's `expiration`) under their source, and the
 * registry token the probe holds (`expires_in`) under source "token" — renewed
 * on every probe, which the expiry alert tells apart from a static credential.
 */
import type { ProbeResult } from '../model/types.js';

/** source → Unix seconds. */
export function credentialExpiries(result: ProbeResult, wallNowSeconds: number): Map<string, number> {
  const out = new Map<string, number>();
  const c = result.credentials;
  if (c?.expiresAt) {
    const ms = Date.parse(c.expiresAt);
    if (Number.isFinite(ms)) out.set(c.source, ms / 1000);
  }
  const auth = result.steps.findLast((s) => s.stage === 'auth');
  const detail = auth?.detail;
  const left = detail && 'tokenExpiresIn' in detail ? detail.tokenExpiresIn : undefined;
  if (typeof left === 'number' && Number.isFinite(left) && left >= 0) out.set('token', Math.round(wallNowSeconds + left));
  return out;
}
