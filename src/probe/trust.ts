/**
 * The CA set the TLS stage trusts: Node's bundled roots (tls.rootCertificates)
 * plus every certificate in the extra CA files (`--ca-file`, `tls.caFiles`).
 * Passing `ca` to tls.connect replaces the default roots, so both go in.
 */
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';

export interface Trust {
  /** PEM certificates: system roots first, then each file's certificates. */
  ca: string[];
  /** Where they came from: "system", then each file path. */
  sources: string[];
}

export type ReadTextFile = (path: string, encoding: 'utf8') => string;

export class TrustError extends Error {
  override readonly name = 'TrustError';
  readonly code = 'PULLPROBE_CONFIG' as const;
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.path = path;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** PEM certificate blocks in a text (pure). */
export function pemCertificates(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

export function loadTrust(caFiles: string[], readFile: ReadTextFile = fs.readFileSync): Trust {
  const ca = [...tls.rootCertificates];
  const sources = ['system'];
  for (const path of caFiles) {
    let text: string;
    try {
      text = readFile(path, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new TrustError(path, `cannot read CA file${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
    }
    const certs = pemCertificates(text);
    if (certs.length === 0) throw new TrustError(path, 'no PEM certificate in CA file');
    certs.forEach((pem, i) => {
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new TrustError(path, `certificate ${i + 1} in CA file is not valid`, { cause: err });
      }
    });
    ca.push(...certs);
    sources.push(path);
  }
  return { ca, sources };
}

const byArray = new WeakMap<string[], tls.SecureContext>();
const byContent = new Map<string, tls.SecureContext>();
const MAX_CONTEXTS = 8;

/**
 * One SecureContext per trust set, shared by the TLS stage and the HTTP
 * client: building one from ~150 roots costs tens of milliseconds of CPU,
 * which per connection made the agent CPU-bound (found by npm run bench).
 * Keyed by content, since the agent re-reads the CA files on every probe.
 */
export function secureContextFor(ca: string[]): tls.SecureContext {
  const hit = byArray.get(ca);
  if (hit) return hit;
  const key = createHash('sha256').update(ca.join('\n')).digest('hex');
  let sc = byContent.get(key);
  if (!sc) {
    sc = tls.createSecureContext({ ca });
    byContent.set(key, sc);
    if (byContent.size > MAX_CONTEXTS) byContent.delete(byContent.keys().next().value as string);
  }
  byArray.set(ca, sc);
  return sc;
}
