/**
 * The CA set the TLS stage trusts: Node's bundled roots (tls.rootCertificates)
 * plus every certificate in the extra CA files (`--ca-file`, `tls.caFiles`).
 * Passing `ca` to tls.connect replaces the default roots, so both go in.
 */
import { X509Certificate } from 'node:crypto';
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
