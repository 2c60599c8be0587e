/**
 * An ECR password's own expiry (pull-path-facts §6.1, observed, undocumented format): the
 * password `aws ecr get-login-password` prints base64-decodes to JSON whose `expiration`
 * is Unix seconds. Anything else (or a decoding failure) gives null: the format is not
 * relied on, only used when it is there.
 */
import { isPlainObject } from '../shared/guards.js';

/** Epoch ms, or null when the password is not an ECR token carrying its expiry. */
export function ecrTokenExpiry(password: string): number | null {
  if (!/^[A-Za-z0-9+/=_-]{16,}$/.test(password)) return null;
  try {
    const doc: unknown = JSON.parse(Buffer.from(password, 'base64').toString('utf8'));
    const exp = isPlainObject(doc) ? doc['expiration'] : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) && exp > 0 ? exp * 1000 : null;
  } catch {
    return null;
  }
}
