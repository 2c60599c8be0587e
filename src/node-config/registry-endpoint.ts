/**
 * One registry endpoint as containerd's docker resolver sees it (docker.RegistryHost):
 * scheme, host as written, API path, capabilities, TLS files, headers. Both roads that
 * produce endpoints build them here: certs.d hosts.toml (hosts-toml.ts) and the
 * deprecated CRI `registry.mirrors` / `registry.configs` of config.toml
 * (containerd-legacy.ts).
 *
 * `headers` holds the values to send, and a header can carry a secret (a mirror token):
 * never log or report an endpoint whole; `headerNames` is what may be shown.
 */
import { posix } from 'node:path';
import { DOCKER_HUB, DOCKER_HUB_ENDPOINT } from '../model/reference.js';

/** Capabilities containerd knows; `referrers` since 2.2 (1.x-2.1 reject a file listing it). */
export const CAPABILITIES = ['pull', 'resolve', 'push', 'referrers'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface ClientCert {
  /** PEM file with the certificate. */
  cert: string;
  /** PEM file with the private key; the same path as `cert` when the key is in the certificate file. */
  key: string;
}

export interface RegistryEndpoint {
  /** scheme://authority + path, e.g. "https://mirror.example/v2" (override_path: the URL's own path). */
  url: string;
  scheme: string;
  /** The URL's host[:port] as written (Go url.URL.Host): the key of `registry.configs."<host>"` and of the `ns` decision. */
  authority: string;
  /** hostname:port to dial, default port filled in: "mirror.example:443". */
  host: string;
  /** API root requests go under: "/v2" normally; with override_path (or a legacy mirror URL with a path) the URL's own path; "" is the host root. */
  path: string;
  /** The registry namespace this endpoint serves (the image's registry host), sent as `?ns=` when `isMirror`. */
  namespace: string;
  /** containerd's isProxy: the host differs from the namespace (docker.io → registry-1.docker.io is not a mirror); requests carry `?ns=<namespace>`. */
  isMirror: boolean;
  /** True for the registry itself: the root `server` (or the namespace host when omitted), or the legacy default endpoint. */
  isServer: boolean;
  capabilities: Capability[];
  /** CA files added to the system pool for this endpoint. */
  caFiles: string[];
  /** Client certificates offered in the TLS handshake. */
  clientCerts: ClientCert[];
  skipVerify: boolean;
  overridePath: boolean;
  /** Headers sent on every request to this endpoint (values may be secrets). */
  headers: Record<string, string[]>;
  /** Header names only, for messages. */
  headerNames: string[];
  /** hosts.toml `dial_timeout` (containerd 2.1+; 1.x dials with 30 s whatever the file says). */
  dialTimeoutMs?: number;
  /** Index of an earlier endpoint with the same URL: containerd tries it again (lab-notes gotcha 2). */
  duplicateOf: number | null;
  /** containerd 1.7.8+ for localhost:PORT (PORT not 80/443): `scheme` is https, and when the server answers without TLS the same request is retried over plain HTTP. */
  httpFallback?: boolean;
}

/** Everything of an endpoint apart from what its URL and namespace decide. */
export interface EndpointSettings {
  capabilities: Capability[];
  caFiles: string[];
  clientCerts: ClientCert[];
  skipVerify: boolean;
  overridePath: boolean;
  headers: Record<string, string[]>;
  dialTimeoutMs?: number;
  httpFallback?: boolean;
}

export interface ParsedUrl {
  scheme: string;
  /** host[:port] as written, userinfo removed. */
  authority: string;
  /** The path as written ("" when none). */
  path: string;
}

/** scheme://[userinfo@]authority[path][?query][#fragment]; null when it is not such a URL. */
export function parseEndpointUrl(url: string): ParsedUrl | null {
  // Go: userinfo runs to the last "@" before the path.
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:[^/?#]*@)?([^@/?#]*)([^?#]*)/.exec(url);
  if (!m) return null;
  return { scheme: (m[1] ?? '').toLowerCase(), authority: m[2] ?? '', path: m[3] ?? '' };
}

/** A URL or URL-like key for messages: whatever ends in "@" before a "/" (userinfo, a password) removed, anywhere. */
export function withoutUserinfo(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/*/.exec(url)?.[0] ?? '';
  return scheme + url.slice(scheme.length).replace(/[^/?#]*@/g, '');
}

/**
 * A path written on the node (config.toml, hosts.toml) as this process must open it: under the
 * host root ("/host") unless it already is. "" (no host root) leaves it alone.
 */
export function onNode(path: string, hostRoot: string | undefined): string {
  const root = (hostRoot ?? '').replace(/\/+$/, '');
  if (root === '' || path === root || path.startsWith(`${root}/`) || !path.startsWith('/')) return path;
  return `${root}${path}`;
}

/** Go path.Clean for the absolute paths that occur here; "" stays "". */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const c = posix.normalize(p);
  return c.length > 1 && c.endsWith('/') ? c.slice(0, -1) : c;
}

/** containerd's isProxy(host, refhost): a different host than the namespace, except Docker Hub's own endpoint. */
export function isProxy(authority: string, namespace: string): boolean {
  return authority !== namespace && !(namespace === DOCKER_HUB && authority === DOCKER_HUB_ENDPOINT);
}

/** Go net.ParseIP(h).IsLoopback() or "localhost", after removing a port (containerd's isLocalHost / docker.IsLocalhost). */
export function isLocalhost(hostport: string): boolean {
  let h = hostport;
  const bracket = /^\[([^\]]+)\](?::\d*)?$/.exec(h);
  if (bracket) h = bracket[1] ?? '';
  else if (/^[^:]*:\d*$/.test(h)) h = h.slice(0, h.indexOf(':'));
  if (h === 'localhost') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return h.split('.').every((o) => Number(o) <= 255);
  return h === '::1' || /^(?:0{0,4}:){2,7}0{0,3}1$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(h);
}

/** An endpoint from a base URL (scheme://authority/path, already in containerd's form) and its settings. */
export function makeEndpoint(url: string, namespace: string, isServer: boolean, s: EndpointSettings): RegistryEndpoint {
  const u = parseEndpointUrl(url) ?? { scheme: 'https', authority: '', path: '' };
  const cleaned = cleanPath(u.path);
  const path = cleaned === '/' ? '' : cleaned; // path.Join("/", "/", repo) is "/repo" as with ""
  return {
    url: `${u.scheme}://${u.authority}${path}`,
    scheme: u.scheme,
    authority: u.authority,
    host: /:\d+$/.test(u.authority) ? u.authority : `${u.authority}:${u.scheme === 'http' ? 80 : 443}`,
    path,
    namespace,
    isMirror: isProxy(u.authority, namespace),
    isServer,
    capabilities: [...s.capabilities],
    caFiles: [...s.caFiles],
    clientCerts: s.clientCerts.map((c) => ({ ...c })),
    skipVerify: s.skipVerify,
    overridePath: s.overridePath,
    headers: Object.fromEntries(Object.entries(s.headers).map(([k, v]) => [k, [...v]])),
    headerNames: Object.keys(s.headers),
    duplicateOf: null,
    ...(s.dialTimeoutMs !== undefined ? { dialTimeoutMs: s.dialTimeoutMs } : {}),
    ...(s.httpFallback ? { httpFallback: true } : {}),
  };
}

/** Base headers first, each endpoint's own appended (docker resolver: r.header.Clone() then host.Header appended). */
export function mergeHeaders(base: Record<string, string[]>, own: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(base)) out[k] = [...v];
  for (const [k, v] of Object.entries(own)) out[k] = [...(out[k] ?? []), ...v];
  return out;
}

function sameTls(a: RegistryEndpoint | undefined, b: RegistryEndpoint): boolean {
  return (
    a !== undefined &&
    a.skipVerify === b.skipVerify &&
    JSON.stringify([a.caFiles, a.clientCerts]) === JSON.stringify([b.caFiles, b.clientCerts])
  );
}

/** Marks `duplicateOf` on endpoints whose URL came earlier; returns one plain warning per repeat. */
export function markDuplicates(endpoints: RegistryEndpoint[], fix: string): string[] {
  const warnings: string[] = [];
  for (const [i, e] of endpoints.entries()) {
    const first = endpoints.findIndex((o) => o.url === e.url);
    if (first < i) {
      e.duplicateOf = first;
      const tls = sameTls(endpoints[first], e) ? '' : ' with different TLS settings (ca/client/skip_verify)';
      warnings.push(`${withoutUserinfo(e.url)} is tried twice${tls}: a failing pull waits for it twice; ${fix}`);
    }
  }
  return warnings;
}
