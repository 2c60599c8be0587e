/**
 * Where a registry's Bearer challenge may send the node (issue 6: "the token
 * realm is an open door"). The realm URL comes from the registry, so it is
 * checked before any connection (DNS, TCP, TLS, HTTP) is made for it:
 *
 * - only `https:` and `http:` realms are followed (file:, ftp:, data: … are
 *   refused as token_error, naming the scheme);
 * - never a link-local or cloud metadata address (169.254.0.0/16, fe80::/10,
 *   the metadata services' well-known names and addresses), by name, by IP
 *   literal, or by what the name resolved to;
 * - credentials only over https: an `http:` realm gets an anonymous request;
 * - userinfo in the realm is dropped, and what is shown of the realm is
 *   scheme://host/path (never the query string, which may carry secrets).
 *
 * Pure: tested on strings.
 */
import { isIP } from 'node:net';

/** Well-known cloud metadata host names (GCE, AWS, Tencent, Oracle, DigitalOcean via 169.254 anyway). */
const METADATA_NAMES: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.oraclecloud.com',
]);

/** Metadata services outside link-local ranges: AWS IMDS over IPv6, Alibaba Cloud. */
const METADATA_ADDRESSES: ReadonlySet<string> = new Set(['fd00:ec2::254', '100.100.100.200']);

function ipv4Octets(a: string): number[] | null {
  if (isIP(a) !== 4) return null;
  return a.split('.').map(Number);
}

/** 16-bit groups of an IPv6 address (handles "::" and an embedded IPv4 tail). */
function ipv6Groups(a: string): number[] | null {
  if (isIP(a) !== 6) return null;
  let s = a.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const o = ipv4Octets(v4[1]);
    if (!o) return null;
    s = s.slice(0, -v4[1].length) + `${((o[0] ?? 0) * 256 + (o[1] ?? 0)).toString(16)}:${((o[2] ?? 0) * 256 + (o[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(Math.max(0, fill)).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

function canonicalV6(groups: number[]): string {
  return groups.map((g) => g.toString(16)).join(':');
}

/**
 * True for an address or host name the probe never contacts for a realm:
 * IPv4 169.254.0.0/16, IPv6 fe80::/10, IPv4-mapped forms of those, the
 * metadata names and addresses above. Host names are compared lowercased,
 * without a trailing dot and without brackets.
 */
export function isLinkLocalOrMetadata(hostOrAddress: string): boolean {
  const h = hostOrAddress
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  if (METADATA_NAMES.has(h) || METADATA_ADDRESSES.has(h)) return true;
  const v4 = ipv4Octets(h);
  if (v4) return v4[0] === 169 && v4[1] === 254;
  const g = ipv6Groups(h);
  if (!g) return false;
  if (((g[0] ?? 0) & 0xffc0) === 0xfe80) return true;
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  if (mapped && (g[6] ?? 0) >> 8 === 169 && ((g[6] ?? 0) & 0xff) === 254) return true;
  return [...METADATA_ADDRESSES].some((m) => {
    const mg = ipv6Groups(m);
    return mg !== null && canonicalV6(mg) === canonicalV6(g);
  });
}

/** What may be shown of a realm: scheme://host/path, no userinfo, no query, no fragment. */
export function realmForDisplay(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export interface RealmAllowed {
  ok: true;
  /** The realm with userinfo removed (query kept: it is sent, just never shown). */
  url: URL;
  /** host[:port] as in the URL. */
  host: string;
  /** Host name without brackets, as the DNS stage and the pinned map use it. */
  hostname: string;
  port: number;
  tls: boolean;
  /** false for an http: realm: the token request goes out anonymous. */
  credentialsAllowed: boolean;
  display: string;
}

export interface RealmRefused {
  ok: false;
  reason: 'token_error';
  message: string;
  /** The realm host when there is one, else the registry endpoint. */
  host: string;
  display?: string;
}

export type RealmCheck = RealmAllowed | RealmRefused;

/** Safe to print: URL-normalised scheme, cut short. */
function shortScheme(url: URL): string {
  return url.protocol.slice(0, 32);
}

/**
 * Decide, before any connection, whether the realm of `endpoint`'s Bearer
 * challenge is followed. Never throws.
 */
export function checkRealm(realm: string | undefined, endpoint: string): RealmCheck {
  const refuse = (message: string, host = endpoint, display?: string): RealmRefused =>
    display ? { ok: false, reason: 'token_error', message, host, display } : { ok: false, reason: 'token_error', message, host };
  if (!realm) return refuse('no realm specified for token auth challenge');
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    return refuse(`invalid realm URL in the token auth challenge of ${endpoint}`);
  }
  url.username = '';
  url.password = '';
  url.hash = '';
  const scheme = shortScheme(url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    const where = url.host ? ` (host ${url.host.slice(0, 255)})` : '';
    return refuse(
      `unsupported realm scheme ${scheme}${where} in the token auth challenge of ${endpoint}: only https and http token services are contacted`,
      url.host || endpoint,
    );
  }
  const display = realmForDisplay(url);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (hostname === '') return refuse(`invalid realm URL in the token auth challenge of ${endpoint}: no host`);
  if (isLinkLocalOrMetadata(hostname)) {
    return refuse(
      `refused the token service ${url.host} named by ${endpoint}: a link-local or cloud metadata address is never contacted`,
      url.host,
      display,
    );
  }
  const tls = url.protocol === 'https:';
  return {
    ok: true,
    url,
    host: url.host,
    hostname,
    port: url.port ? Number(url.port) : tls ? 443 : 80,
    tls,
    credentialsAllowed: tls,
    display,
  };
}

/** After DNS: the realm host's addresses that are link-local or metadata (empty when all are fine). */
export function forbiddenRealmAddresses(addresses: readonly string[]): string[] {
  return addresses.filter((a) => isLinkLocalOrMetadata(a));
}

/** The refusal for a realm host that resolved to forbidden addresses. */
export function refuseResolvedRealm(realm: RealmAllowed, endpoint: string, bad: readonly string[]): RealmRefused {
  return {
    ok: false,
    reason: 'token_error',
    host: realm.host,
    display: realm.display,
    message: `refused the token service ${realm.host} named by ${endpoint}: it resolves to a link-local or cloud metadata address (${bad.slice(0, 4).join(', ')}), which is never contacted`,
  };
}
