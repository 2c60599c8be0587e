/**
 * The SecureContext a connection to one endpoint uses: the trust set's shared
 * context (SecureContextCache), or, when hosts.toml gives the endpoint a
 * client certificate, a context holding that trust set and the certificate
 * (Node ignores `cert`/`key` next to a `secureContext`). Those are kept per
 * SecureContextCache (its owner's lifetime), a few at most.
 */
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { SecureContextCache } from '../node-config/trust.js';

export interface ClientCert {
  /** PEM text. */
  cert: string;
  /** PEM text (a secret: never logged). */
  key: string;
}

const MAX_CLIENT_CONTEXTS = 8;
const clientContexts = new WeakMap<SecureContextCache, Map<string, tls.SecureContext>>();

export function secureContextFor(cache: SecureContextCache | undefined, ca: string[], clientCert?: ClientCert): tls.SecureContext {
  const owner = cache ?? new SecureContextCache();
  if (!clientCert) return owner.get(ca);
  const key = createHash('sha256')
    .update(ca.join('\n'))
    .update('\0')
    .update(clientCert.cert)
    .update('\0')
    .update(clientCert.key)
    .digest('hex');
  let byKey = clientContexts.get(owner);
  if (!byKey) clientContexts.set(owner, (byKey = new Map<string, tls.SecureContext>()));
  let sc = byKey.get(key);
  if (!sc) {
    sc = tls.createSecureContext({ ca, cert: clientCert.cert, key: clientCert.key });
    byKey.set(key, sc);
    if (byKey.size > MAX_CLIENT_CONTEXTS) byKey.delete(byKey.keys().next().value as string);
  }
  return sc;
}
