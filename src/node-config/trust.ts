/**
 * The CA set the TLS stage trusts: Node's bundled roots (tls.rootCertificates)
 * plus every certificate in the extra CA files (`--ca-file`, `tls.caFiles`).
 * Passing `ca` to tls.connect replaces the default roots, so both go in.
 *
 * loadNodeTrust takes what containerd on the node trusts: the node's system
 * bundle (first of SYSTEM_BUNDLES found under the host root) in place of
 * Node's bundled roots (those only where the node has none), plus the file in
 * NODE_EXTRA_CA_CERTS (which tls.rootCertificates does not include). Given
 * a TrustCache (the environment cache's), unchanged texts give the same array
 * back, so the shared SecureContext is not rebuilt or re-hashed.
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
  /** Where built CA sets are kept (the environment cache's); default: built for this call only. */
  cache?: TrustCache;
}

export interface NodeTrust extends Trust {
  problems: string[];
}

interface CacheEntry {
  texts: string[];
  ca: string[];
  invalid: Array<{ index: number; count: number }>;
}

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

/**
 * CA sets already built, by the texts they were built from, so that files
 * read again unchanged give the same array back (and the SecureContextCache
 * finds its context by identity, without hashing). Owned by whoever loads the
 * environment (EnvironmentCache); at most `maxEntries` sets, the newest kept.
 */
export class TrustCache {
  readonly #sets: CacheEntry[] = [];
  readonly #withFiles = new WeakMap<string[], Map<string, { texts: string[]; ca: string[] }>>();
  readonly #max: number;

  constructor(opts: { maxEntries?: number } = {}) {
    this.#max = Math.max(1, opts.maxEntries ?? 4);
  }

  /** Trust sets held. */
  get size(): number {
    return this.#sets.length;
  }

  /** The set for these texts: found, or built by `build` and kept. */
  set(texts: string[], build: () => CacheEntry): CacheEntry {
    let entry = this.#sets.find((e) => sameTexts(e.texts, texts));
    if (!entry) {
      entry = build();
      this.#sets.unshift(entry);
      if (this.#sets.length > this.#max) this.#sets.pop();
    }
    return entry;
  }

  /**
   * `base` plus the certificates of a hosts.toml endpoint's CA files (loadTrust's
   * checks and TrustError messages), the same array while `base` and the
   * files' texts are unchanged. `read` reads a file (a FileCache re-reads only changed ones).
   */
  withFiles(base: string[], caFiles: string[], read: (path: string) => string): string[] {
    if (caFiles.length === 0) return base;
    const texts = caFiles.map((path) => {
      try {
        return read(path);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        throw new TrustError(path, `cannot read CA file${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
      }
    });
    let byFiles = this.#withFiles.get(base);
    if (!byFiles) this.#withFiles.set(base, (byFiles = new Map<string, { texts: string[]; ca: string[] }>()));
    const key = caFiles.join('\0');
    const hit = byFiles.get(key);
    if (hit && sameTexts(hit.texts, texts)) return hit.ca;
    const have = new Set(base);
    const ca = [...base];
    texts.forEach((text, i) => {
      const path = caFiles[i] ?? '';
      const certs = pemCertificates(text);
      if (certs.length === 0) throw new TrustError(path, 'no PEM certificate in CA file');
      certs.forEach((pem, n) => {
        try {
          new X509Certificate(pem);
        } catch (err) {
          throw new TrustError(path, `certificate ${n + 1} in CA file is not valid`, { cause: err });
        }
        if (!have.has(pem)) {
          have.add(pem);
          ca.push(pem);
        }
      });
    });
    byFiles.set(key, { texts, ca });
    if (byFiles.size > this.#max * 4) byFiles.delete(byFiles.keys().next().value as string);
    return ca;
  }
}

export function loadNodeTrust(opts: NodeTrustOptions): NodeTrust {
  const hfs = opts.fs ?? realHostFs;
  const problems: string[] = [];
  const sources: string[] = ['system'];
  const texts: string[] = [];
  let bundleFound = false;
  for (const bundle of SYSTEM_BUNDLES) {
    const r = readNodeFile(`${opts.hostRoot ?? ''}${bundle}`, opts.hostRoot, hfs);
    if (!r.ok) continue;
    sources.push(r.path);
    texts.push(r.text);
    bundleFound = true;
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
  const checked = (index: number): boolean => opts.caFiles.includes(sources[index + 1] ?? '');
  // The key says which texts were checked one by one, so a text trusted unchecked is not reused unchecked as a named file.
  const key = [...texts, texts.map((_, i) => (checked(i) ? '1' : '0')).join('') + (bundleFound ? 'b' : '')];
  const build = (): CacheEntry => {
    // containerd (Go's SystemCertPool) trusts the node's bundle, not a list of its own: Node's
    // bundled roots stand in only where the node has no bundle. Each certificate goes in once
    // (the same root in two files, wrapped differently, would cost OpenSSL a parse each time).
    const seen = new Set<string>();
    const ca: string[] = [];
    const add = (pem: string): void => {
      const k = pem.replace(/\s+/g, '');
      if (seen.has(k)) return;
      seen.add(k);
      ca.push(pem);
    };
    if (!bundleFound) tls.rootCertificates.forEach(add);
    const invalid: Array<{ index: number; count: number }> = [];
    texts.forEach((text, index) => {
      // Only the files the user named are checked certificate by certificate (X509 parsing of a
      // 150-root system bundle costs ~50 ms); OpenSSL skips a bad block of the others when the
      // SecureContext is built, and a system bundle's odd entry is not reported anyway.
      if (!checked(index)) {
        pemCertificates(text).forEach(add);
        return;
      }
      const v = validCertificates(text);
      if (v.invalid > 0) invalid.push({ index, count: v.invalid });
      v.certs.forEach(add);
    });
    return { texts: key, ca, invalid };
  };
  const entry = opts.cache ? opts.cache.set(key, build) : build();
  for (const { index, count } of entry.invalid) {
    const source = sources[index + 1] ?? '';
    if (!opts.caFiles.includes(source)) continue; // a system bundle's odd entry is not the user's problem
    if (opts.strict) throw new TrustError(source, `${count} certificate(s) in CA file are not valid`);
    problems.push(`CA file ${source}: ${count} certificate(s) not valid, skipped`);
  }
  return { ca: entry.ca, sources, problems };
}
