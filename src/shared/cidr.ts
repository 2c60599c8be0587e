/**
 * Address and subnet math, through ipaddr.js (IPv4 and IPv6, RFC 5952
 * output). Input is strict: IPv4 in four-part decimal only (ipaddr.js's
 * loose parse would take "10" or "0x0a.1"); an IPv6 zone ("%eth0") is dropped.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An IP address, or null when the text is not one. */
export function parseAddress(text: string): Address | null {
  const s = text.trim().replace(/%.*$/, '');
  if (s.includes(':')) return ipaddr.IPv6.isValid(s) ? ipaddr.IPv6.parse(s) : null;
  return ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s) : null;
}

/** True when both texts are the same address (same family, same bits). */
export function sameAddress(a: string, b: string): boolean {
  const x = parseAddress(a);
  const y = parseAddress(b);
  return x !== null && y !== null && x.kind() === y.kind() && x.toNormalizedString() === y.toNormalizedString();
}

/** "10.231.1.10/24" → "10.231.1.0/24"; "fd00:1::5/64" → "fd00:1::/64"; null when malformed. */
export function networkOf(cidr: string): string | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m?.[1] || !m[2]) return null;
  const ip = parseAddress(m[1]);
  const prefix = Number(m[2]);
  if (!ip || prefix > (ip.kind() === 'ipv4' ? 32 : 128)) return null;
  const net =
    ip.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${ip.toString()}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/${prefix}`);
  return `${net.toString()}/${prefix}`;
}

/** Prefix length of a netmask ("255.255.255.192" → 26), null when not a contiguous mask. */
export function prefixOfMask(mask: string): number | null {
  return parseAddress(mask)?.prefixLengthFromSubnetMask() ?? null;
}
