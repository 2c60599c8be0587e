/**
 * NO_PROXY as Go reads it (golang.org/x/net/http/httpproxy, used by
 * net/http's ProxyFromEnvironment and so by containerd's registry client):
 *
 * - comma-separated entries, trimmed and lower-cased, empty ones skipped;
 * - `*` alone: nothing is proxied (entries after it do not matter);
 * - an IP CIDR (`10.0.0.0/8`, `2002:db8:a::45/64`): addresses inside it;
 * - an IP, optionally with a port (`192.168.1.1`, `192.168.1.3:80`,
 *   `[2001:db8::52:0:3]:80`): that address (on that port only);
 * - a name, optionally with a port: `foo.com` matches foo.com and every name
 *   under it, `.foo.com` and `*.foo.com` only the names under it; a name is
 *   compared as a suffix, so `foo.com` never matches `barfoo.com`;
 * - malformed entries (`:1`) are ignored, never an error.
 *
 * `localhost` and loopback addresses are never proxied, whatever NO_PROXY says.
 * Pure: no I/O.
 */
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An IP literal as Go's net.ParseIP takes it (no zone, IPv4 in dotted decimal), or null. */
export function parseIp(text: string): Address | null {
  if (text.includes(':')) return ipaddr.IPv6.isValid(text) && !text.includes('%') ? ipaddr.IPv6.parse(text) : null;
  return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : null;
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (Go's To4), else the address itself. */
function unmap(ip: Address): Address {
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

function sameIp(a: Address, b: Address): boolean {
  const x = unmap(a);
  const y = unmap(b);
  return x.kind() === y.kind() && x.toNormalizedString() === y.toNormalizedString();
}

/** Go's IP.IsLoopback: 127.0.0.0/8 (also IPv4-mapped) or ::1. */
export function isLoopback(ip: Address): boolean {
  const x = unmap(ip);
  return x.range() === 'loopback';
}

type Matcher =
  | { kind: 'all' }
  | { kind: 'cidr'; net: Address; prefix: number }
  | { kind: 'ip'; ip: Address; port: string }
  | { kind: 'domain'; suffix: string; port: string; matchHost: boolean };

export interface NoProxy {
  readonly matchers: readonly Matcher[];
}

/** Go's net.ParseCIDR, or null. An IPv4-mapped IPv6 network with prefix ≥ 96 is an IPv4 network, as Go treats it. */
function parseCidr(entry: string): { net: Address; prefix: number } | null {
  const slash = entry.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIp(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  if (ip === null || !/^\d{1,3}$/.test(bits)) return null;
  const prefix = Number(bits);
  const max = ip.kind() === 'ipv4' ? 32 : 128;
  if (prefix > max) return null;
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
    return prefix >= 96 ? { net: (ip as ipaddr.IPv6).toIPv4Address(), prefix: prefix - 96 } : { net: ip, prefix };
  }
  return { net: ip, prefix };
}

/**
 * Go's net.SplitHostPort: "[v6]:port", "host:port" (one colon); null when
 * it fails (no colon, too many colons, stray brackets).
 */
export function goSplitHostPort(s: string): { host: string; port: string } | null {
  const colon = s.lastIndexOf(':');
  if (colon < 0) return null;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || end + 1 !== colon) return null;
    const host = s.slice(1, end);
    if (host.includes('[') || host.includes(']') || s.slice(end + 1).includes('[')) return null;
    return { host, port: s.slice(colon + 1) };
  }
  const host = s.slice(0, colon);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return null;
  if (s.slice(colon + 1).includes('[') || s.slice(colon + 1).includes(']')) return null;
  return { host, port: s.slice(colon + 1) };
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex -- the ASCII range is the point
  return /^[\x00-\x7f]*$/.test(s);
}

/** Go's idnaASCII: ASCII stays as it is; other names become punycode (kept as they are when that fails). */
export function idnaAscii(name: string): string {
  if (isAscii(name)) return name;
  const ascii = domainToASCII(name);
  return ascii === '' ? name : ascii;
}

/** Parse a NO_PROXY value (best effort, never throws). */
export function parseNoProxy(value: string): NoProxy {
  const matchers: Matcher[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return { matchers: [{ kind: 'all' }] };
    const cidr = parseCidr(entry);
    if (cidr !== null) {
      matchers.push({ kind: 'cidr', ...cidr });
      continue;
    }
    const split = goSplitHostPort(entry);
    let host = entry;
    let port = '';
    if (split !== null) {
      if (split.host === '') continue;
      host = split.host;
      port = split.port;
    }
    const ip = parseIp(host);
    if (ip !== null) {
      matchers.push({ kind: 'ip', ip, port });
      continue;
    }
    if (host.startsWith('*.')) host = host.slice(1);
    const matchHost = !host.startsWith('.');
    if (matchHost) host = `.${host}`;
    matchers.push({ kind: 'domain', suffix: idnaAscii(host), port, matchHost });
  }
  return { matchers };
}

function matches(m: Matcher, host: string, port: string, ip: Address | null): boolean {
  switch (m.kind) {
    case 'all':
      return true;
    case 'cidr': {
      if (ip === null) return false;
      const x = unmap(ip);
      return x.kind() === m.net.kind() && x.match(m.net, m.prefix);
    }
    case 'ip':
      return ip !== null && sameIp(m.ip, ip) && (m.port === '' || m.port === port);
    case 'domain':
      return (host.endsWith(m.suffix) || (m.matchHost && host === m.suffix.slice(1))) && (m.port === '' || m.port === port);
  }
}

/**
 * Go's useProxy: whether a request to host:port goes through the proxy.
 * `host` is a name or an IP literal (IPv6 with or without brackets; an IPv6
 * zone is dropped, so "fe80::1%.corp.example" is never taken for a name
 * under corp.example).
 */
export function useProxy(noProxy: NoProxy, hostIn: string, port: number | string): boolean {
  let host = hostIn.startsWith('[') && hostIn.endsWith(']') ? hostIn.slice(1, -1) : hostIn;
  const zone = host.indexOf('%');
  if (zone > 0 && host.includes(':')) host = host.slice(0, zone);
  host = idnaAscii(host);
  if (host === 'localhost') return false;
  const ip = parseIp(host);
  if (ip !== null && isLoopback(ip)) return false;
  const name = host.trim().toLowerCase();
  const p = String(port);
  for (const m of noProxy.matchers) {
    if (m.kind === 'domain' || m.kind === 'all') continue;
    if (ip !== null && matches(m, name, p, ip)) return false;
  }
  for (const m of noProxy.matchers) {
    if (m.kind !== 'domain' && m.kind !== 'all') continue;
    if (matches(m, name, p, ip)) return false;
  }
  return true;
}
