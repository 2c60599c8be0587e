/**
 * The CA set the TLS stage trusts: Node's bundled roots (tls.rootCertificates)
 * plus every certificate in the extra CA files (`--ca-file`, `tls.caFiles`).
 * Passing `ca` to tls.connect replaces the default roots, so both go in.
 *
 * loadNodeTrust adds what containerd on the node trusts: the node's system
 * bundle (first of SYSTEM_BUNDLES found under the host root) and the file in
 * NODE_EXTRA_CA_CERTS (which tls.rootCertificates does not include). The
 * result is cached by file content, so the agent re-reading the files every
 * probe gets the same array back and the shared SecureContext is not rebuilt
 * or re-hashed.
 */
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { cannotRead, readNodeFile, realHostFs, type HostFs } from './host-root.js';
import { TrustError } from '../shared/errors.js';

export interface Trust {
  /** PEM certificates: system roots first, then each file's certificates. */
  ca: string[];
  /** Where they came from: "system", then each file path. */
  sources: string[];
}

export type ReadTextFile = (path: string, encoding: 'utf8') => string;

export { TrustError };

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

/**
 * One SecureContext per trust set, shared by the TLS stage and the HTTP
 * client: building one from ~150 roots costs tens of milliseconds of CPU,
 * which per connection made the agent CPU-bound (found by npm run bench).
 * Keyed by content, since the agent re-reads the CA files on every probe;
 * at most `maxEntries` trust sets are kept, the oldest dropped first. The
 * owner (the agent, one CLI run, a test) decides its lifetime.
 */
export class SecureContextCache {
  readonly #byArray = new WeakMap<string[], tls.SecureContext>();
  readonly #byContent = new Map<string, tls.SecureContext>();
  readonly #maxEntries: number;

  constructor(opts: { maxEntries?: number } = {}) {
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 8);
  }

  get(ca: string[]): tls.SecureContext {
    const hit = this.#byArray.get(ca);
    if (hit) return hit;
    const key = createHash('sha256').update(ca.join('\n')).digest('hex');
    let sc = this.#byContent.get(key);
    if (!sc) {
      sc = tls.createSecureContext({ ca });
      this.#byContent.set(key, sc);
      if (this.#byContent.size > this.#maxEntries) this.#byContent.delete(this.#byContent.keys().next().value as string);
    }
    this.#byArray.set(ca, sc);
    return sc;
  }

  /** Trust sets held (by content). */
  get size(): number {
    return this.#byContent.size;
  }
}

/** Where Debian/Ubuntu, RHEL/Fedora, SUSE and Alpine keep the system CA bundle; the first found is used. */
export const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
] as const;

export interface NodeTrustOptions {
  caFiles: string[];
  hostRoot?: string;
  /** The NODE_EXTRA_CA_CERTS file (default: this process's environment). */
  extraCaCerts?: string | undefined;
  /** Unreadable or invalid caFiles throw TrustError (CLI) instead of being reported (agent). */
  strict?: boolean;
  fs?: HostFs;
}

export interface NodeTrust extends Trust {
  problems: string[];
}

interface CacheEntry {
  texts: string[];
  ca: string[];
  invalid: Array<{ index: number; count: number }>;
}
const trustCache: CacheEntry[] = [];
const MAX_TRUST_SETS = 4;

function sameTexts(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/** Valid PEM certificates of a text; invalid blocks are counted, not thrown. */
function validCertificates(text: string): { certs: string[]; invalid: number } {
  const certs: string[] = [];
  let invalid = 0;
  for (const pem of pemCertificates(text)) {
    try {
      new X509Certificate(pem);
      certs.push(pem);
    } catch {
      invalid++;
    }
  }
  return { certs, invalid };
}

export function loadNodeTrust(opts: NodeTrustOptions): NodeTrust {
  const hfs = opts.fs ?? realHostFs;
  const problems: string[] = [];
  const sources: string[] = ['system'];
  const texts: string[] = [];
  for (const bundle of SYSTEM_BUNDLES) {
    const r = readNodeFile(`${opts.hostRoot ?? ''}${bundle}`, opts.hostRoot, hfs);
    if (!r.ok) continue;
    sources.push(r.path);
    texts.push(r.text);
    break;
  }
  const extra = opts.extraCaCerts === undefined ? process.env['NODE_EXTRA_CA_CERTS'] : opts.extraCaCerts;
  if (extra) {
    const r = readNodeFile(extra, undefined, hfs);
    if (r.ok) {
      sources.push(extra);
      texts.push(r.text);
    } else {
      problems.push(`NODE_EXTRA_CA_CERTS ${cannotRead(extra, r)}`);
    }
  }
  for (const path of opts.caFiles) {
    const r = readNodeFile(path, opts.hostRoot, hfs);
    if (!r.ok) {
      if (opts.strict) throw new TrustError(path, `cannot read CA file (${r.code})`);
      problems.push(`CA file ${cannotRead(path, r)}`);
      continue;
    }
    if (pemCertificates(r.text).length === 0) {
      if (opts.strict) throw new TrustError(path, 'no PEM certificate in CA file');
      problems.push(`CA file ${path}: no PEM certificate`);
      continue;
    }
    sources.push(path);
    texts.push(r.text);
  }
  let entry = trustCache.find((e) => sameTexts(e.texts, texts));
  if (!entry) {
    const ca = [...tls.rootCertificates];
    const invalid: Array<{ index: number; count: number }> = [];
    texts.forEach((text, index) => {
      const v = validCertificates(text);
      if (v.invalid > 0) invalid.push({ index, count: v.invalid });
      ca.push(...v.certs);
    });
    entry = { texts, ca: [...new Set(ca)], invalid };
    trustCache.unshift(entry);
    if (trustCache.length > MAX_TRUST_SETS) trustCache.pop();
  }
  for (const { index, count } of entry.invalid) {
    const source = sources[index + 1] ?? '';
    if (!opts.caFiles.includes(source)) continue; // a system bundle's odd entry is not the user's problem
    if (opts.strict) throw new TrustError(source, `${count} certificate(s) in CA file are not valid`);
    problems.push(`CA file ${source}: ${count} certificate(s) not valid, skipped`);
  }
  return { ca: entry.ca, sources, problems };
}
